"""GridIndex agrees with ST_Covers + the lowest-code rule: random points, vertices, edges, holes."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from gis.router import GridIndex

LATTICE = 2.0**-24
BOX = (103.70, 36.02, 103.80, 36.08)
GEOD = Geod(ellps="WGS84")


def _snap(geom: BaseGeometry) -> BaseGeometry:
    return shapely.set_precision(geom, LATTICE)


@pytest.fixture(scope="module")
def tiling() -> tuple[list[str], list[BaseGeometry]]:
    """~300 Voronoi grids on the 2**-24 lattice, with a filled hole, an empty hole, a multipart
    grid, and codes shuffled so that the lowest code is not the first row."""
    rng = np.random.default_rng(7)
    box = shapely.box(*BOX)
    seeds = shapely.MultiPoint(rng.uniform(BOX[:2], BOX[2:], (300, 2)))
    cells = [
        _snap(shapely.intersection(c, box))
        for c in shapely.voronoi_polygons(seeds, extend_to=box).geoms
    ]
    cells = [c for c in cells if not c.is_empty]
    order = np.argsort([c.centroid.x for c in cells])
    cells = [cells[i] for i in order]
    # A hole filled by its own grid, and a hole left empty (points there belong to no grid).
    for idx, filled in ((10, True), (200, False)):
        c = cells[idx].centroid
        hole = _snap(shapely.box(c.x - 0.0004, c.y - 0.0003, c.x + 0.0004, c.y + 0.0003))
        assert cells[idx].contains(hole)
        cells[idx] = _snap(cells[idx].difference(hole))
        if filled:
            cells.append(hole)
    # Two far-apart cells form one multipart grid.
    cells[50] = shapely.MultiPolygon([cells[50], cells.pop(250)])
    assert all(c.is_valid for c in cells)
    codes = [f"620102001001{n:03d}" for n in rng.permutation(len(cells))]
    return codes, cells


@pytest.fixture(scope="module")
def index(tiling) -> GridIndex:
    codes, cells = tiling
    return GridIndex.build(codes, cells, version=3)


def _expected_owner(
    codes: list[str], cells: list[BaseGeometry], x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Lowest-code grid whose geometry covers each point, by shapely (GEOS), or -1."""
    tree = shapely.STRtree(cells)
    pi, gi = tree.query(shapely.points(x, y), predicate="covered_by")
    owner = np.full(len(x), -1, dtype=np.int64)
    for p, g in zip(pi.tolist(), gi.tolist(), strict=True):
        if owner[p] < 0 or codes[g] < codes[owner[p]]:
            owner[p] = g
    return owner


def _vertices_and_midpoints(cells: list[BaseGeometry]) -> tuple[np.ndarray, np.ndarray]:
    rings = [r for c in cells for p in shapely.get_parts(c) for r in [p.exterior, *p.interiors]]
    vertices = np.unique(np.vstack([np.asarray(r.coords) for r in rings]), axis=0)
    # Midpoints of lattice points are exact doubles lying exactly on the edge.
    mids = np.vstack([(np.asarray(r.coords)[:-1] + np.asarray(r.coords)[1:]) / 2 for r in rings])
    return vertices, np.unique(mids, axis=0)


def test_random_points_match_shapely_covers(tiling, index) -> None:
    codes, cells = tiling
    rng = np.random.default_rng(11)
    x = rng.uniform(BOX[0] - 0.01, BOX[2] + 0.01, 100_000)
    y = rng.uniform(BOX[1] - 0.01, BOX[3] + 0.01, 100_000)
    got = index.locate(x, y)
    expected = _expected_owner(codes, cells, x, y)
    assert int(np.sum(got != expected)) == 0
    outside = ~((x >= BOX[0]) & (x <= BOX[2]) & (y >= BOX[1]) & (y <= BOX[3]))
    assert np.all(got[outside] == -1)


def test_vertices_and_edge_midpoints_go_to_lowest_code(tiling, index) -> None:
    codes, cells = tiling
    vertices, mids = _vertices_and_midpoints(cells)
    for pts in (vertices, mids):
        got = index.locate(pts[:, 0], pts[:, 1])
        expected = _expected_owner(codes, cells, pts[:, 0], pts[:, 1])
        assert int(np.sum(got != expected)) == 0
        assert np.all(got >= 0)


def test_shared_edge_midpoint_is_covered_by_both_and_owned_by_lower(tiling, index) -> None:
    codes, cells = tiling
    a, b = 0, next(i for i in range(1, len(cells)) if cells[0].intersection(cells[i]).length > 0)
    shared = shapely.get_coordinates(cells[a].intersection(cells[b]))[:2]
    mid = (shared[0] + shared[1]) / 2
    cover = index.covering(mid[0], mid[1])
    assert sorted(cover) == sorted([a, b])
    assert cover[0] == min((a, b), key=lambda r: codes[r])
    assert index.locate_one(mid[0], mid[1]) == cover[0]


def test_holes(tiling, index) -> None:
    _, cells = tiling
    filled_hole_row = len(cells) - 1
    c = cells[filled_hole_row].centroid
    assert index.locate_one(c.x, c.y) == filled_hole_row
    assert len(cells[200].interiors) == 1  # the hole nobody fills
    hole_centre = shapely.Polygon(cells[200].interiors[0]).centroid
    assert index.locate_one(hole_centre.x, hole_centre.y) == -1
    assert index.covering(hole_centre.x, hole_centre.y) == []
    corner = cells[200].interiors[0].coords[0]
    assert index.covering(*corner) == [200]


def test_multipart_grid_owns_both_parts(tiling, index) -> None:
    _, cells = tiling
    for part in cells[50].geoms:
        p = part.representative_point()
        assert index.locate_one(p.x, p.y) == 50


def test_locate_one_equals_locate(tiling, index) -> None:
    _, cells = tiling
    vertices, mids = _vertices_and_midpoints(cells)
    rng = np.random.default_rng(3)
    pts = np.vstack([vertices[:500], mids[:500], rng.uniform(BOX[:2], BOX[2:], (1000, 2))])
    batch = index.locate(pts[:, 0], pts[:, 1])
    singles = [index.locate_one(float(x), float(y)) for x, y in pts]
    assert singles == batch.tolist()


def test_covering_lists_every_grid_lowest_code_first(tiling, index) -> None:
    codes, cells = tiling
    vertices, _ = _vertices_and_midpoints(cells)
    tree = shapely.STRtree(cells)
    for x, y in vertices[::7]:
        expected = sorted(
            tree.query(shapely.Point(x, y), predicate="covered_by").tolist(), key=lambda r: codes[r]
        )
        assert index.covering(x, y) == expected


def test_bad_points_are_never_located(index) -> None:
    got = index.locate(
        np.array([np.nan, 103.75, np.inf, -np.inf]), np.array([36.05, np.nan, 36.05, 36.05])
    )
    assert got.tolist() == [-1, -1, -1, -1]


def test_version_and_size(index) -> None:
    assert index.version == 3
    assert index.size_bytes > 0
    assert index.stats()["grids"] == len(index.codes)


# ------------------------------------------------------------------ PostGIS arithmetic


def _postgis_covers(geom: BaseGeometry, px: float, py: float) -> bool:
    """Plain transcription of PostGIS 3.3 point_in_multipolygon (doubles, no index, no FMA)."""
    xmin, ymin, xmax, ymax = (float(v) for v in shapely.bounds(geom))
    f32 = np.array([xmin, ymin, xmax, ymax], dtype=np.float32).astype(np.float64)
    lo = [
        np.nextafter(np.float32(v), np.float32(-np.inf)) if f > v else f
        for f, v in zip(f32[:2], (xmin, ymin), strict=True)
    ]
    hi = [
        np.nextafter(np.float32(v), np.float32(np.inf)) if f < v else f
        for f, v in zip(f32[2:], (xmax, ymax), strict=True)
    ]
    if px < lo[0] or px > hi[0] or py < lo[1] or py > hi[1]:
        return False

    def ring_result(coords: np.ndarray) -> int:  # -1 outside, 0 boundary, 1 inside
        wn = 0
        for (x1, y1), (x2, y2) in zip(coords[:-1].tolist(), coords[1:].tolist(), strict=True):
            if x1 == x2 and y1 == y2:
                continue
            side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
            if (
                side == 0.0
                and min(x1, x2) <= px <= max(x1, x2)
                and min(y1, y2) <= py <= max(y1, y2)
            ):
                return 0
            if y1 <= py < y2 and side > 0:
                wn += 1
            elif y2 <= py < y1 and side < 0:
                wn -= 1
        return -1 if wn == 0 else 1

    for poly in shapely.get_parts(geom):
        ext = ring_result(np.asarray(poly.exterior.coords))
        if ext == 0:
            return True
        if ext == -1:
            continue
        inside = True
        for hole in poly.interiors:
            h = ring_result(np.asarray(hole.coords))
            if h == 0:
                return True
            if h == 1:
                inside = False
                break
        if inside:
            return True
    return False


def test_points_a_hair_off_edges_follow_postgis_arithmetic(tiling, index) -> None:
    """One ulp beside a vertex or an edge midpoint, the double-precision side test decides."""
    codes, cells = tiling
    _, mids = _vertices_and_midpoints(cells)
    rng = np.random.default_rng(5)
    picks = mids[rng.choice(len(mids), 400, replace=False)]
    nudged = []
    for x, y in picks:
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)):
            nx = np.nextafter(x, np.inf * dx) if dx else x
            ny = np.nextafter(y, np.inf * dy) if dy else y
            nudged.append((float(nx), float(ny)))
    pts = np.array(nudged)
    got = index.locate(pts[:, 0], pts[:, 1])
    tree = shapely.STRtree(cells)
    for (x, y), row in zip(pts.tolist(), got.tolist(), strict=True):
        near = tree.query(shapely.Point(x, y).buffer(1e-6))
        covering = sorted(
            (int(g) for g in near if _postgis_covers(cells[g], x, y)), key=lambda r: codes[r]
        )
        assert row == (covering[0] if covering else -1)


# ------------------------------------------------------------------ distances


def test_nearest_for_outside_points(tiling, index) -> None:
    _, cells = tiling
    rng = np.random.default_rng(9)
    xs = rng.uniform(BOX[0], BOX[2], 50)
    ys = np.full(50, BOX[3] + 0.003)  # ~330 m north of the tiling
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        row, metres = index.nearest(x, y)
        k = math.cos(math.radians(y))
        scaled = [shapely.transform(c, lambda xy, k=k: xy * [k, 1.0]) for c in cells]
        brute = int(np.argmin(shapely.distance(scaled, shapely.Point(x * k, y))))
        assert row == brute
        assert 325.0 < metres < 340.0
        assert index.locate_one(x, y) == -1


def test_nearest_is_zero_inside(tiling, index) -> None:
    _, cells = tiling
    p = cells[5].representative_point()
    assert index.nearest(p.x, p.y) == (5, 0.0)


def test_distance_to_edge_of_a_square() -> None:
    square = shapely.box(103.80, 36.05, 103.81, 36.06)
    idx = GridIndex.build(["620102001001001"], [square], version=1)
    x, y = 103.8075, 36.055  # 0.0025 deg from the east side, 0.005 from the others
    expected = GEOD.inv(x, y, 103.81, y)[2]
    assert idx.distance_to_edge_m(0, x, y) == pytest.approx(expected, rel=1e-6)
    outside = idx.distance_to_edge_m(0, 103.82, 36.055)
    assert outside == pytest.approx(GEOD.inv(103.82, 36.055, 103.81, 36.055)[2], rel=1e-6)


def test_duplicate_codes_are_refused() -> None:
    square = shapely.box(0, 0, 1, 1)
    with pytest.raises(ValueError, match="unique"):
        GridIndex.build(["1", "1"], [square, square], version=1)


# ------------------------------------------------------------------ the synthetic city


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Path:
    synth = pytest.importorskip("gis.synth.build")
    out = Path("fixtures/out")
    if not (out / "grids_small.geojson").exists() or not (out / "probes.csv").exists():
        out = tmp_path_factory.mktemp("city")
        synth.make_fixtures(out)
    return out


def test_city_probes(city: Path) -> None:
    import json

    features = json.loads((city / "grids_small.geojson").read_text(encoding="utf-8"))["features"]
    codes = [f["properties"]["code"] for f in features]
    geoms = [shapely.geometry.shape(f["geometry"]) for f in features]
    idx = GridIndex.build(codes, geoms, version=1)
    with (city / "probes.csv").open(encoding="utf-8") as f:
        probes = list(csv.DictReader(f))
    lon = np.array([float(p["lon"]) for p in probes])
    lat = np.array([float(p["lat"]) for p in probes])
    rows = idx.locate(lon, lat)
    got = [codes[r] if r >= 0 else "" for r in rows.tolist()]
    wrong = [
        (p["probe_id"], p["kind"], p["expected_code"], g)
        for p, g in zip(probes, got, strict=True)
        if p["expected_code"] != g
    ]
    assert wrong == []
    for p in probes:
        if p["kind"] in ("edge", "vertex"):
            cover = [codes[r] for r in idx.covering(float(p["lon"]), float(p["lat"]))]
            assert cover == p["covering_codes"].split(";")
        if p["kind"] == "outside":
            row, metres = idx.nearest(float(p["lon"]), float(p["lat"]))
            assert codes[row] == p["nearest_code"]
            assert metres == pytest.approx(float(p["nearest_m"]), rel=0.01, abs=1.0)
