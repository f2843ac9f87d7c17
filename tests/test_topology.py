"""Topology checker: a clean lattice hierarchy passes; each injected fault is found and named."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from grid_shapes import ORIGIN, lattice_hierarchy
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Point, Polygon, box

from gis.grid_codes import LEVELS
from gis.gridfiles import read_grid_file
from gis.topology import area_m2, check_topology
from gis.topology_report import TopologyReport

UNIT = 0.005  # lattice step, degrees; each small grid is 2 x 2 steps
SIDE = 2 * UNIT
COUNTS = {"large": 2, "medium": 4, "small": 16}
GEOD = pyproj.Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def clean() -> geopandas.GeoDataFrame:
    return lattice_hierarchy(units=2, unit=UNIT)


@pytest.fixture
def grids(clean: geopandas.GeoDataFrame) -> geopandas.GeoDataFrame:
    return clean.copy()


def cell(col: int, line: int) -> Polygon:
    """The lattice square of the small grid at (column, row), counted from ORIGIN."""
    x, y = ORIGIN[0] + col * SIDE, ORIGIN[1] + line * SIDE
    return box(x, y, x + SIDE, y + SIDE)


def set_geometry(gdf: geopandas.GeoDataFrame, code: str, geometry: object) -> None:
    gdf.loc[gdf["code"] == code, "geometry"] = geopandas.GeoSeries([geometry], crs=4326).values


def multi(geometry: shapely.Geometry) -> MultiPolygon:
    return MultiPolygon(list(shapely.get_parts(geometry)))


def geodesic_area(geometry: Polygon | MultiPolygon) -> float:
    return abs(GEOD.geometry_area_perimeter(geometry)[0])


def kinds(report: TopologyReport) -> Counter[str]:
    return report.kinds()


def test_clean_hierarchy_is_ok(clean: geopandas.GeoDataFrame) -> None:
    report = check_topology(clean, expected_counts=COUNTS)
    assert report.ok
    assert report.faults == []
    assert report.counts == COUNTS
    assert report.to_text() == "topology ok: large 2, medium 4, small 16 grids, no fault above 1 m²"


def test_clean_hierarchy_layout(clean: geopandas.GeoDataFrame) -> None:
    """The fixture itself: small 620102001001001 is the square at the origin, 16 in all."""
    assert Counter(clean["level"]) == Counter(COUNTS)
    first = clean.loc[clean["code"] == "620102001001001", "geometry"].iloc[0]
    assert shapely.equals(first, cell(0, 0))


def test_gap_between_siblings(grids: geopandas.GeoDataFrame) -> None:
    quadrant = box(ORIGIN[0] + UNIT, ORIGIN[1] + UNIT, ORIGIN[0] + SIDE, ORIGIN[1] + SIDE)
    set_geometry(grids, "620102001001001", multi(cell(0, 0).difference(quadrant)))
    report = check_topology(grids)
    assert kinds(report) == Counter({"gap": 1})
    gap = report.faults[0]
    # The gap touches the shrunk grid, its east and north neighbours, and 004 at one corner.
    assert gap.codes == (
        "620102001001",
        "620102001001001",
        "620102001001002",
        "620102001001003",
        "620102001001004",
    )
    assert gap.area_m2 == pytest.approx(geodesic_area(quadrant), rel=1e-5)
    assert gap.location is not None
    assert quadrant.contains(Point(gap.location))


def test_overlap_between_siblings(grids: geopandas.GeoDataFrame) -> None:
    intrusion = box(ORIGIN[0] + SIDE, ORIGIN[1], ORIGIN[0] + SIDE + UNIT, ORIGIN[1] + SIDE)
    set_geometry(grids, "620102001001001", multi(cell(0, 0).union(intrusion)))
    report = check_topology(grids)
    assert kinds(report) == Counter({"overlap": 1})
    overlap = report.faults[0]
    assert overlap.codes == ("620102001001001", "620102001001002")
    assert overlap.area_m2 == pytest.approx(geodesic_area(intrusion), rel=1e-5)
    assert overlap.location is not None and intrusion.contains(Point(overlap.location))


def test_child_crossing_its_parent(grids: geopandas.GeoDataFrame) -> None:
    below = box(ORIGIN[0], ORIGIN[1] - UNIT, ORIGIN[0] + SIDE, ORIGIN[1])
    set_geometry(grids, "620102001001001", multi(cell(0, 0).union(below)))
    report = check_topology(grids)
    assert kinds(report) == Counter({"outside_parent": 1})
    fault = report.faults[0]
    assert fault.codes == ("620102001001001", "620102001001")
    assert fault.area_m2 == pytest.approx(geodesic_area(below), rel=1e-5)
    assert fault.location is not None and below.contains(Point(fault.location))


def test_child_crossing_into_a_cousin(grids: geopandas.GeoDataFrame) -> None:
    """A small grid pushed into the next medium grid overlaps a cousin and leaves its parent."""
    intrusion = box(ORIGIN[0] + 2 * SIDE, ORIGIN[1], ORIGIN[0] + 2 * SIDE + UNIT, ORIGIN[1] + SIDE)
    set_geometry(grids, "620102001001002", multi(cell(1, 0).union(intrusion)))
    report = check_topology(grids)
    assert kinds(report) == Counter({"overlap": 1, "outside_parent": 1})
    assert report.of_kind("overlap")[0].codes == ("620102001001002", "620102001002001")
    assert report.of_kind("outside_parent")[0].codes == ("620102001001002", "620102001001")


def test_bowtie_polygon(grids: geopandas.GeoDataFrame) -> None:
    x0, y0, x1, y1 = cell(3, 1).bounds
    bowtie = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    set_geometry(grids, "620102001002004", bowtie)
    report = check_topology(grids)
    # The repaired bowtie keeps two of the four triangles of its square: the other two are gaps.
    assert kinds(report) == Counter({"invalid_geometry": 1, "gap": 2})
    invalid = report.of_kind("invalid_geometry")[0]
    assert invalid.codes == ("620102001002004",)
    assert invalid.location == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2), abs=1e-9)
    assert "Self-intersection" in invalid.message
    assert [f.codes[0] for f in report.of_kind("gap")] == ["620102001002", "620102001002"]


def test_missing_medium_grid_orphans_its_children(grids: geopandas.GeoDataFrame) -> None:
    missing = grids["code"] == "620102001002"
    removed = grids.loc[missing, "geometry"].iloc[0]
    report = check_topology(grids[~missing], expected_counts=COUNTS)
    assert kinds(report) == Counter({"orphan": 4, "gap": 1, "count": 1})
    assert [f.codes for f in report.of_kind("orphan")] == [
        (f"620102001002{n:03d}", "620102001002") for n in range(1, 5)
    ]
    gap = report.of_kind("gap")[0]
    assert gap.codes == ("620102001", "620102001001")
    assert gap.area_m2 == pytest.approx(geodesic_area(removed), rel=1e-5)
    assert report.of_kind("count")[0].message == "3 medium grids where 4 are expected"


def test_wrong_count(grids: geopandas.GeoDataFrame) -> None:
    report = check_topology(grids, expected_counts={"large": 2, "medium": 4, "small": 17})
    assert [(f.kind, f.message) for f in report.faults] == [
        ("count", "16 small grids where 17 are expected")
    ]


def test_parent_without_children(grids: geopandas.GeoDataFrame) -> None:
    report = check_topology(grids[grids["parent_code"] != "620102002002"])
    assert [(f.kind, f.codes) for f in report.faults] == [("parent_not_covered", ("620102002002",))]


def test_code_not_starting_with_parent(grids: geopandas.GeoDataFrame) -> None:
    grids.loc[grids["code"] == "620102002002004", "code"] = "620102002009004"
    grids.loc[grids["code"] == "620102002002003", "code"] = "62010200200200"
    report = check_topology(grids)
    assert [(f.kind, f.codes) for f in report.faults] == [
        ("code", ("62010200200200",)),
        ("code", ("620102002009004",)),
    ]
    assert "does not start with its parent's code 620102002002" in report.faults[1].message
    assert "is not 15 digits" in report.faults[0].message


def test_duplicate_code(grids: geopandas.GeoDataFrame) -> None:
    grids.loc[grids["code"] == "620102002002004", "code"] = "620102002002003"
    report = check_topology(grids)
    assert [(f.kind, f.codes) for f in report.faults] == [("code", ("620102002002003",))]


def test_empty_geometry(grids: geopandas.GeoDataFrame) -> None:
    set_geometry(grids, "620102002001001", MultiPolygon())
    report = check_topology(grids)
    assert [(f.kind, f.codes) for f in report.faults] == [
        ("empty_geometry", ("620102002001001",)),
        ("gap", ("620102002001", "620102002001002", "620102002001003", "620102002001004")),
    ]


def test_overlap_below_tolerance_is_not_a_fault(grids: geopandas.GeoDataFrame) -> None:
    sliver = box(ORIGIN[0] + SIDE, ORIGIN[1], ORIGIN[0] + SIDE + 1e-6, ORIGIN[1] + 1e-5)  # ~0.1 m²
    set_geometry(grids, "620102001001001", multi(cell(0, 0).union(sliver)))
    assert check_topology(grids).ok
    strict = check_topology(grids, tolerance_m2=0.0)
    assert kinds(strict) == Counter({"overlap": 1})
    assert strict.faults[0].area_m2 == pytest.approx(geodesic_area(sliver), rel=1e-4)


def test_gaps_between_large_grids_need_a_city(grids: geopandas.GeoDataFrame) -> None:
    """The city's edge is whatever the large grids make it, unless a city outline is given."""
    east = grids["code"].str.startswith("620102002")
    grids.loc[east, "geometry"] = grids.loc[east, "geometry"].translate(xoff=UNIT)
    assert check_topology(grids).ok
    city = box(ORIGIN[0], ORIGIN[1], ORIGIN[0] + 8 * SIDE + UNIT, ORIGIN[1] + 2 * SIDE)
    report = check_topology(grids, city=city)
    assert [(f.kind, f.codes) for f in report.faults] == [("gap", ("620102001", "620102002"))]
    strait = box(ORIGIN[0] + 4 * SIDE, ORIGIN[1], ORIGIN[0] + 4 * SIDE + UNIT, ORIGIN[1] + 2 * SIDE)
    assert report.faults[0].area_m2 == pytest.approx(geodesic_area(strait), rel=1e-5)


def test_large_grid_outside_the_city(grids: geopandas.GeoDataFrame) -> None:
    city = box(ORIGIN[0], ORIGIN[1], ORIGIN[0] + 7 * SIDE, ORIGIN[1] + 2 * SIDE)
    report = check_topology(grids, city=city)
    assert [(f.kind, f.codes) for f in report.faults] == [("outside_parent", ("620102002",))]


def test_many_faults_at_once_are_all_reported(grids: geopandas.GeoDataFrame) -> None:
    x0, y0, x1, y1 = cell(3, 1).bounds
    set_geometry(grids, "620102001002004", Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)]))
    below = box(ORIGIN[0], ORIGIN[1] - UNIT, ORIGIN[0] + SIDE, ORIGIN[1])
    set_geometry(grids, "620102001001001", multi(cell(0, 0).union(below)))
    report = check_topology(grids[grids["code"] != "620102002001"], expected_counts=COUNTS)
    assert kinds(report) == Counter(
        {"invalid_geometry": 1, "gap": 3, "outside_parent": 1, "orphan": 4, "count": 1}
    )


def test_report_as_text_and_json(grids: geopandas.GeoDataFrame) -> None:
    below = box(ORIGIN[0], ORIGIN[1] - UNIT, ORIGIN[0] + SIDE, ORIGIN[1])
    set_geometry(grids, "620102001001001", multi(cell(0, 0).union(below)))
    report = check_topology(grids, expected_counts={"large": 3})
    lines = report.to_text().splitlines()
    assert lines[0] == (
        "topology: 2 fault(s) in large 2, medium 4, small 16 grids: 1 count, 1 outside_parent"
    )
    assert len(lines) == 3
    assert lines[2].startswith("outside_parent      620102001001001,620102001001  area ")
    assert "兰州001网格" in lines[2] and "at (103.80" in lines[2]
    body = json.loads(report.to_json())
    assert body["ok"] is False
    assert [f["kind"] for f in body["faults"]] == ["count", "outside_parent"]
    assert body["faults"][1]["codes"] == ["620102001001001", "620102001001"]
    assert len(body["faults"][1]["location"]) == 2


@pytest.mark.parametrize("latitude", [0.0, 36.05, 60.0])
@pytest.mark.parametrize("size", [0.0001, 0.01, 0.5])
def test_area_m2_matches_geodesic_area(latitude: float, size: float) -> None:
    square = box(103.8, latitude, 103.8 + size, latitude + size)
    assert area_m2(np.array([square]))[0] == pytest.approx(geodesic_area(square), rel=2e-5)


def test_area_m2_of_nothing_is_zero() -> None:
    assert list(area_m2(np.array([Polygon(), None], dtype=object))) == [0.0, 0.0]


def test_translated_copy_is_still_clean(clean: geopandas.GeoDataFrame) -> None:
    """Moving the whole hierarchy keeps it clean: nothing depends on where it sits."""
    moved = clean.copy()
    moved["geometry"] = [translate(g, xoff=0.3, yoff=0.7) for g in clean.geometry]
    assert check_topology(moved).ok


# --- the synthetic Lanzhou: the whole city, clean, then with the same faults injected ---

CITY_COUNTS = {"large": 110, "medium": 1086, "small": 7507}


@pytest.fixture(scope="module")
def city(fixture_dir: Path) -> geopandas.GeoDataFrame:
    """All 8703 grids of the synthetic Lanzhou, read back from its generated files."""
    out = fixture_dir
    frames: list[geopandas.GeoDataFrame] = []
    for level in LEVELS:
        known = set(frames[-1]["code"]) if frames else None
        frames.append(read_grid_file(out / f"grids_{level}.geojson", known_parents=known))
    return geopandas.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")


def geometry_of(gdf: geopandas.GeoDataFrame, code: str) -> MultiPolygon:
    geometry = gdf.loc[gdf["code"] == code, "geometry"].iloc[0]
    assert isinstance(geometry, MultiPolygon)
    return geometry


def inner_disc(geometry: MultiPolygon, share: float = 0.5) -> Polygon:
    """A disc well inside a grid: `share` of its largest inscribed circle."""
    radius_line = shapely.maximum_inscribed_circle(geometry)
    centre = Point(radius_line.coords[0])
    disc = centre.buffer(share * radius_line.length, quad_segs=16)
    assert isinstance(disc, Polygon)
    return disc


def sibling_pair(gdf: geopandas.GeoDataFrame) -> tuple[str, str]:
    """Two small grids of one medium grid that share an edge: the first such pair by code."""
    small = gdf[gdf["level"] == "small"].sort_values("code")
    for _, group in small.groupby("parent_code", sort=True):
        geoms = group.geometry.to_numpy()
        for a in range(len(group)):
            for b in range(a + 1, len(group)):
                if shapely.intersection(geoms[a], geoms[b]).length > 0:
                    return str(group["code"].iloc[a]), str(group["code"].iloc[b])
    raise AssertionError("no two small grids share an edge")


def test_city_is_clean(city: geopandas.GeoDataFrame) -> None:
    report = check_topology(city, expected_counts=CITY_COUNTS)
    assert report.faults == []
    assert report.counts == CITY_COUNTS


def test_city_gap(city: geopandas.GeoDataFrame) -> None:
    grids = city.copy()
    code = str(grids.loc[grids["level"] == "small", "code"].iloc[0])
    disc = inner_disc(geometry_of(grids, code))
    set_geometry(grids, code, multi(geometry_of(grids, code).difference(disc)))
    report = check_topology(grids)
    assert [(f.kind, f.codes) for f in report.faults] == [("gap", (code[:12], code))]
    assert report.faults[0].area_m2 == pytest.approx(geodesic_area(disc), rel=1e-4)


def test_city_overlap(city: geopandas.GeoDataFrame) -> None:
    grids = city.copy()
    first, second = sibling_pair(grids)
    disc = inner_disc(geometry_of(grids, second))
    set_geometry(grids, first, multi(geometry_of(grids, first).union(disc)))
    report = check_topology(grids)
    assert [(f.kind, f.codes) for f in report.faults] == [("overlap", (first, second))]
    assert report.faults[0].area_m2 == pytest.approx(geodesic_area(disc), rel=1e-4)


def test_city_child_crossing_its_parent(city: geopandas.GeoDataFrame) -> None:
    grids = city.copy()
    code = str(grids.loc[grids["level"] == "small", "code"].iloc[-1])
    away = Point(105.5, 38.0).buffer(0.001)  # outside the whole city
    set_geometry(grids, code, multi(geometry_of(grids, code).union(away)))
    report = check_topology(grids)
    assert [(f.kind, f.codes) for f in report.faults] == [("outside_parent", (code, code[:12]))]
    assert report.faults[0].area_m2 == pytest.approx(geodesic_area(away), rel=1e-4)


def test_city_bowtie(city: geopandas.GeoDataFrame) -> None:
    grids = city.copy()
    code = str(grids.loc[grids["level"] == "small", "code"].iloc[100])
    x0, y0, x1, y1 = inner_disc(geometry_of(grids, code), 0.6).bounds
    set_geometry(grids, code, Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)]))
    report = check_topology(grids)
    assert [(f.kind, f.codes[:1]) for f in report.faults] == [
        ("invalid_geometry", (code,)),
        ("gap", (code[:12],)),
    ]


def test_city_missing_medium_grid(city: geopandas.GeoDataFrame) -> None:
    medium = str(city.loc[city["level"] == "medium", "code"].iloc[500])
    children = sorted(city.loc[city["parent_code"] == medium, "code"])
    report = check_topology(city[city["code"] != medium], expected_counts=CITY_COUNTS)
    assert report.kinds() == Counter({"orphan": len(children), "gap": 1, "count": 1})
    assert [f.codes for f in report.of_kind("orphan")] == [(c, medium) for c in children]
    assert report.of_kind("gap")[0].codes[0] == medium[:9]
    assert report.of_kind("gap")[0].area_m2 == pytest.approx(
        geodesic_area(geometry_of(city, medium)), rel=1e-4
    )
    expected = CITY_COUNTS["medium"]
    assert report.of_kind("count")[0].message == (
        f"{expected - 1} medium grids where {expected} are expected"
    )
