"""The synthetic Lanzhou: counts, codes, exact tiling, validity, determinism, probes and events."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from gis.synth import make_fixtures
from gis.synth.catalogue import numbering_order
from gis.synth.edges import wiggle_edges
from gis.synth.geography import DISTRICTS, VALLEY_BBOX
from gis.synth.offsets import wgs84_to
from gis.synth.partition import OUTSIDE, build_partition
from gis.synth.rings import region_polygons, to_shapely
from gis.synth.seeds import sample_seeds

LEVELS = ("large", "medium", "small")
LATTICE = 2.0**24
PROPERTY_KEYS = ["code", "parent_code", "name", "level", "kind", "district_code", "district_name"]
DATA_FILES = ("grids_large.geojson", "grids_medium.geojson", "grids_small.geojson",
              "districts.csv", "gridworkers.csv", "events.csv", "probes.csv")


@dataclass
class Layer:
    features: list[dict]
    geoms: np.ndarray
    codes: list[str]

    def by_code(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}


@dataclass
class Fixtures:
    out: Path
    manifest: dict
    layers: dict[str, Layer]

    def csv(self, name: str) -> list[dict[str, str]]:
        with (self.out / name).open(encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))


def _load_layer(path: Path) -> Layer:
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    geoms = np.array([shape(f["geometry"]) for f in features], dtype=object)
    return Layer(features, geoms, [f["properties"]["code"] for f in features])


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    out = tmp_path_factory.mktemp("synth_a")
    manifest = make_fixtures(out)
    layers = {level: _load_layer(out / f"grids_{level}.geojson") for level in LEVELS}
    return Fixtures(out, manifest, layers)


def _children(fx: Fixtures, level: str) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(fx.layers[level].features):
        groups[f["properties"]["parent_code"]].append(i)
    return groups


# --- counts and codes -------------------------------------------------------------------------

def test_counts_per_level_and_kind(fx: Fixtures) -> None:
    kinds = {level: Counter(f["properties"]["kind"] for f in fx.layers[level].features)
             for level in LEVELS}
    assert kinds["large"] == {"urban": 51, "rural": 59}
    assert kinds["medium"] == {"urban": 380, "rural": 706}
    assert kinds["small"] == {"urban": 2945, "rural": 3823, "dedicated": 739}
    assert fx.manifest["counts"] == {
        "large": {"total": 110, "rural": 59, "urban": 51},
        "medium": {"total": 1086, "rural": 706, "urban": 380},
        "small": {"total": 7507, "dedicated": 739, "rural": 3823, "urban": 2945},
    }


def test_large_grids_per_district(fx: Fixtures) -> None:
    got = Counter((f["properties"]["district_code"], f["properties"]["kind"])
                  for f in fx.layers["large"].features)
    wanted = {"620102": (24, 0), "620103": (10, 4), "620104": (9, 3), "620105": (8, 0),
              "620111": (0, 7), "620121": (0, 15), "620122": (0, 7), "620123": (0, 17),
              "620171": (0, 6)}
    for code, (urban, rural) in wanted.items():
        assert got[(code, "urban")] == urban
        assert got[(code, "rural")] == rural
    assert sum(d["small"] for d in fx.manifest["districts"].values()) == 7507
    assert sum(d["medium"] for d in fx.manifest["districts"].values()) == 1086
    rows = fx.csv("districts.csv")
    assert [(r["code"], r["name"]) for r in rows] == [(d.code, d.name) for d in DISTRICTS]


def test_properties_are_exactly_the_documented_ones(fx: Fixtures) -> None:
    names = {d.code: d.name for d in DISTRICTS}
    for level in LEVELS:
        for f in fx.layers[level].features:
            p = f["properties"]
            assert list(p) == PROPERTY_KEYS
            assert p["level"] == level
            assert p["district_name"] == names[p["district_code"]]
            assert f["geometry"]["type"] == "MultiPolygon"


def test_codes_lengths_prefixes_and_ranges(fx: Fixtures) -> None:
    kind_of = {}
    for level, length in zip(LEVELS, (9, 12, 15), strict=True):
        layer = fx.layers[level]
        assert layer.codes == sorted(layer.codes)
        assert len(set(layer.codes)) == len(layer.codes)
        for f in layer.features:
            p = f["properties"]
            code, parent = p["code"], p["parent_code"]
            assert len(code) == length and code.isdigit()
            assert code.startswith(p["district_code"])
            number = int(code[-3:])
            if level == "large":
                assert parent is None
                assert 1 <= number <= 99 if p["kind"] == "urban" else 101 <= number <= 199
            else:
                assert code[:-3] == parent and parent in kind_of
            if level == "medium":
                assert 1 <= number <= 199 if p["kind"] == "urban" else 201 <= number <= 399
                assert p["kind"] == kind_of[parent]
            if level == "small":
                assert 1 <= number <= 999
                wanted = {"urban", "dedicated"} if kind_of[parent] == "urban" else {"rural"}
                assert p["kind"] in wanted
            kind_of[code] = p["kind"]


def test_codes_are_numbered_west_to_east_then_north_to_south(fx: Fixtures) -> None:
    larges = fx.layers["large"]
    by_district: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(larges.features):
        by_district[f["properties"]["district_code"]].append(i)
    for members in by_district.values():
        for kind_group in _numbering_groups(larges, members, "large"):
            order = numbering_order([larges.geoms[i] for i in kind_group])
            assert [kind_group[i] for i in order] == sorted(kind_group)
    for level in ("medium", "small"):
        layer = fx.layers[level]
        for members in _children(fx, level).values():
            for kind_group in _numbering_groups(layer, members, level):
                order = numbering_order([layer.geoms[i] for i in kind_group])
                assert [kind_group[i] for i in order] == sorted(kind_group)


def _numbering_groups(layer: Layer, members: list[int], level: str) -> list[list[int]]:
    if level == "small":
        return [members]
    by_kind: dict[str, list[int]] = defaultdict(list)
    for i in members:
        by_kind[layer.features[i]["properties"]["kind"]].append(i)
    return list(by_kind.values())


def test_names_unique_within_parent_and_shaped_by_kind(fx: Fixtures) -> None:
    suffixes = {("large", "urban"): ("街道",), ("large", "rural"): ("镇", "乡"),
                ("medium", "urban"): ("社区",), ("medium", "rural"): ("村",),
                ("small", "urban"): ("小区网格", "网格"), ("small", "rural"): ("组",),
                ("small", "dedicated"): ("专属网格",)}
    for level in LEVELS:
        seen: set[tuple[str, str]] = set()
        for f in fx.layers[level].features:
            p = f["properties"]
            assert p["name"].endswith(suffixes[(level, p["kind"])])
            scope = p["parent_code"] or p["district_code"]
            assert (scope, p["name"]) not in seen
            seen.add((scope, p["name"]))


# --- geometry -----------------------------------------------------------------------------------

def test_all_valid_and_on_the_lattice(fx: Fixtures) -> None:
    for level in LEVELS:
        geoms = fx.layers[level].geoms
        assert shapely.is_valid(geoms).all()
        xy = shapely.get_coordinates(geoms) * LATTICE
        assert np.array_equal(xy, np.round(xy))


def test_rings_have_no_repeated_points_and_follow_rfc7946(fx: Fixtures) -> None:
    for level in LEVELS:
        for f in fx.layers[level].features:
            for polygon in f["geometry"]["coordinates"]:
                for k, ring in enumerate(polygon):
                    pts = np.array(ring)
                    assert np.array_equal(pts[0], pts[-1])
                    assert np.all(np.any(pts[1:] != pts[:-1], axis=1))
                    ccw = shapely.is_ccw(shapely.linearrings(pts))
                    assert ccw == (k == 0)


def test_vertex_counts(fx: Fixtures) -> None:
    counts = {level: shapely.get_num_coordinates(fx.layers[level].geoms) for level in LEVELS}
    small = counts["small"]
    assert small.min() >= 9  # a closed ring of at least 8 distinct vertices
    assert 40 <= small.mean() <= 120
    assert small.max() <= 400
    assert counts["medium"].mean() >= 150
    assert counts["large"].mean() >= 500


def test_urban_grids_lie_in_the_valley(fx: Fixtures) -> None:
    minx, miny, maxx, maxy = VALLEY_BBOX
    layer = fx.layers["small"]
    urban = [i for i, f in enumerate(layer.features) if f["properties"]["kind"] != "rural"]
    bounds = shapely.bounds(layer.geoms[urban])
    assert bounds[:, 0].min() > minx and bounds[:, 2].max() < maxx
    assert bounds[:, 1].min() > miny and bounds[:, 3].max() < maxy
    rural = [i for i, f in enumerate(layer.features) if f["properties"]["kind"] == "rural"]
    rural_bounds = shapely.total_bounds(layer.geoms[rural])
    assert rural_bounds[0] > 102.6 and rural_bounds[2] < 104.6
    assert rural_bounds[1] > 35.6 and rural_bounds[3] < 37.1


def test_children_nest_and_areas_add_up(fx: Fixtures) -> None:
    for parent_level, level in (("large", "medium"), ("medium", "small")):
        parents = fx.layers[parent_level]
        index = parents.by_code()
        children = fx.layers[level]
        for parent_code, members in _children(fx, level).items():
            parent = parents.geoms[index[parent_code]]
            assert shapely.covers(parent, children.geoms[members]).all()
            total = float(shapely.area(children.geoms[members]).sum())
            assert total == pytest.approx(parent.area, rel=1e-9)
        assert len(_children(fx, level)) == len(parents.codes)


def test_siblings_tile_their_parent_exactly(fx: Fixtures) -> None:
    for parent_level, level in (("large", "medium"), ("medium", "small")):
        parents = fx.layers[parent_level]
        index = parents.by_code()
        children = fx.layers[level]
        for parent_code, members in _children(fx, level).items():
            union = shapely.union_all(children.geoms[members])
            diff = shapely.symmetric_difference(union, parents.geoms[index[parent_code]])
            assert diff.area < 1e-12


def test_no_two_grids_of_a_level_overlap(fx: Fixtures) -> None:
    for level in LEVELS:
        geoms = fx.layers[level].geoms
        pairs = shapely.STRtree(geoms).query(geoms, predicate="intersects")
        pairs = pairs[:, pairs[0] < pairs[1]]
        assert pairs.shape[1] > len(geoms)  # neighbours do touch
        overlap = shapely.area(shapely.intersection(geoms[pairs[0]], geoms[pairs[1]]))
        assert overlap.max() == 0.0


def test_large_grids_cover_the_city_that_small_grids_cover(fx: Fixtures) -> None:
    city = shapely.union_all(fx.layers["large"].geoms)
    smalls = shapely.union_all(fx.layers["small"].geoms)
    assert shapely.symmetric_difference(city, smalls).area < 1e-12
    assert float(shapely.area(fx.layers["small"].geoms).sum()) == pytest.approx(city.area,
                                                                                  rel=1e-9)


def test_dedicated_grids_are_holes_of_urban_grids_in_the_same_medium(fx: Fixtures) -> None:
    layer = fx.layers["small"]
    holes: dict[tuple, tuple[str, str]] = {}
    for f in layer.features:
        for polygon in f["geometry"]["coordinates"]:
            for ring in polygon[1:]:
                holes[tuple(map(tuple, ring[::-1]))] = (f["properties"]["code"],
                                                         f["properties"]["kind"])
    assert len(holes) == 739
    for f in layer.features:
        p = f["properties"]
        if p["kind"] != "dedicated":
            continue
        (shell,) = [polygon[0] for polygon in f["geometry"]["coordinates"]]
        assert 9 <= len(shell) <= 21  # 8-20 distinct vertices, closed
        host_code, host_kind = holes[tuple(map(tuple, shell))]
        assert host_kind == "urban"
        assert host_code[:12] == p["parent_code"]


def test_tracing_a_region_that_encloses_another_gives_holes_and_parts() -> None:
    partition = build_partition(sample_seeds(np.random.default_rng(5)))
    keys = partition.edge_keys()
    edge_of = {k: i for i, k in enumerate(keys)}
    lines = wiggle_edges(keys, partition.vertices, np.random.default_rng(6))
    adjacency = partition.adjacency()
    deep = [c for c in range(partition.n_urban, partition.n_cells)
            if all(OUTSIDE not in partition.neighbours[n] for n in [c, *adjacency[c]])]
    centre, far = deep[0], deep[-1]
    labels = np.zeros(partition.n_cells, dtype=np.int64)
    labels[adjacency[centre]] = 1
    labels[[far, *adjacency[far]]] = 1
    labels[centre] = 2
    polygons = region_polygons(partition, lines, edge_of, labels, 3)
    assert [len(p) for p in polygons] == [1, 2, 1]
    assert [len(holes) for _, holes in polygons[0]] == [2]
    assert sorted(len(holes) for _, holes in polygons[1]) == [0, 1]
    shapes = [to_shapely(p) for p in polygons]
    assert all(g.is_valid for g in shapes)
    index = np.arange(partition.n_cells)

    def one_cell(c: int) -> shapely.MultiPolygon:
        return to_shapely(region_polygons(partition, lines, edge_of,
                                          np.where(index == c, 0, -1), 1)[0])

    assert shapely.equals(shapes[2], one_cell(centre))
    assert shapes[1].covers(one_cell(far))
    assert shapes[0].disjoint(one_cell(centre).representative_point())
    assert sum(g.area for g in shapes) == pytest.approx(shapely.union_all(shapes).area,
                                                        rel=1e-12)


# --- determinism and manifest -------------------------------------------------------------------

def test_manifest_hashes_match_the_files(fx: Fixtures) -> None:
    assert sorted(fx.manifest["files"]) == sorted(DATA_FILES)
    for name, digest in fx.manifest["files"].items():
        assert hashlib.sha256((fx.out / name).read_bytes()).hexdigest() == digest
    on_disk = json.loads((fx.out / "manifest.json").read_text(encoding="utf-8"))
    assert on_disk == fx.manifest
    assert on_disk["seed"] == 20261125


def test_same_seed_gives_the_same_bytes(fx: Fixtures,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    again = tmp_path_factory.mktemp("synth_b")
    manifest = make_fixtures(again)
    assert manifest == fx.manifest
    for name in (*DATA_FILES, "manifest.json"):
        assert (again / name).read_bytes() == (fx.out / name).read_bytes()


# --- roster, probes, events ---------------------------------------------------------------------

def test_one_gridworker_per_small_grid(fx: Fixtures) -> None:
    rows = fx.csv("gridworkers.csv")
    assert [r["grid_code"] for r in rows] == fx.layers["small"].codes
    assert len({r["worker_id"] for r in rows}) == 7507
    for r in rows:
        assert len(r["phone"]) == 11 and r["phone"].startswith("1") and r["phone"].isdigit()
        assert "2019-01-01" <= r["on_duty_since"] <= "2026-10-31"


def _covering(fx: Fixtures, lon: np.ndarray, lat: np.ndarray) -> list[list[str]]:
    layer = fx.layers["small"]
    pairs = shapely.STRtree(layer.geoms).query(shapely.points(lon, lat), predicate="covered_by")
    out: list[list[str]] = [[] for _ in range(len(lon))]
    for p, g in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
        out[p].append(layer.codes[g])
    return [sorted(c) for c in out]


def test_probes_follow_the_lowest_code_rule(fx: Fixtures) -> None:
    rows = fx.csv("probes.csv")
    assert Counter(r["kind"] for r in rows) == {"interior": 1200, "dedicated": 300,
                                               "hole_ring": 300, "edge": 800, "vertex": 400,
                                               "outside": 200}
    lon = np.array([float(r["lon"]) for r in rows])
    lat = np.array([float(r["lat"]) for r in rows])
    covering = _covering(fx, lon, lat)
    sizes = {"interior": {1}, "dedicated": {1}, "hole_ring": {2}, "edge": {2},
             "vertex": {3, 4, 5}, "outside": {0}}
    kinds = dict(zip(fx.layers["small"].codes,
                     (f["properties"]["kind"] for f in fx.layers["small"].features), strict=True))
    for r, cover in zip(rows, covering, strict=True):
        assert r["covering_codes"].split(";") == cover if cover else r["covering_codes"] == ""
        assert len(cover) in sizes[r["kind"]]
        if r["kind"] == "outside":
            assert r["expected_code"] == ""
            assert r["nearest_code"] in kinds and float(r["nearest_m"]) > 0
        else:
            assert r["expected_code"] == min(cover) == r["nearest_code"]
        if r["kind"] == "dedicated":
            assert kinds[r["expected_code"]] == "dedicated"
        if r["kind"] == "hole_ring":
            assert sorted(kinds[c] for c in cover) == ["dedicated", "urban"]


def test_edge_probes_are_exact_midpoints_on_the_lattice(fx: Fixtures) -> None:
    rows = [r for r in fx.csv("probes.csv") if r["kind"] == "edge"]
    xy = np.array([[float(r["lon"]), float(r["lat"])] for r in rows]) * 2 * LATTICE
    assert np.array_equal(xy, np.round(xy))


def test_events_land_where_expected(fx: Fixtures) -> None:
    rows = fx.csv("events.csv")
    assert len(rows) == 30000
    true_lon = np.array([float(r["true_lon"]) for r in rows])
    true_lat = np.array([float(r["true_lat"]) for r in rows])
    covering = _covering(fx, true_lon, true_lat)
    kinds = dict(zip(fx.layers["small"].codes,
                     (f["properties"]["kind"] for f in fx.layers["small"].features), strict=True))
    for r, cover in zip(rows, covering, strict=True):
        assert cover == ([r["expected_code"]] if r["expected_code"] else [])
    inside = [r for r in rows if r["expected_code"]]
    assert len(inside) == 29700
    assert sum(1 for r in inside if kinds[r["expected_code"]] != "rural") == 25245


def test_event_fields(fx: Fixtures) -> None:
    rows = fx.csv("events.csv")
    assert {r["source"] for r in rows} == {"12345", "110", "信访", "网络留言", "网格员上报",
                                          "法院案件"}
    assert {r["category"] for r in rows} == {"矛盾纠纷", "安全隐患", "逾期交房", "拆迁安置",
                                            "劳资欠薪", "环境卫生", "物业管理", "噪音扰民",
                                            "道路交通", "其他"}
    assert {r["severity"] for r in rows} == {"1", "2", "3", "4"}
    assert {r["status"] for r in rows} == {"open", "in_progress", "resolved", "closed"}
    assert len({(r["source"], r["source_id"]) for r in rows}) == 30000
    first = datetime.fromisoformat("2026-08-27T00:00:00+08:00")
    end = datetime.fromisoformat("2026-11-25T00:00:00+08:00")
    for r in rows:
        reported = datetime.fromisoformat(r["reported_at"])
        assert first <= reported < end and reported.utcoffset().total_seconds() == 8 * 3600
        assert datetime.fromisoformat(r["due_at"]) > reported
        assert len(r["reporter_phone"]) == 11 and r["text"]
    crs = Counter(r["crs"] for r in rows)
    assert set(crs) == {"wgs84", "gcj02", "bd09"}
    assert 0.02 * 30000 < crs["gcj02"] < 0.05 * 30000
    assert 0.02 * 30000 < crs["bd09"] < 0.05 * 30000


def test_offset_events_are_their_truth_shifted(fx: Fixtures) -> None:
    for r in fx.csv("events.csv"):
        lon, lat = wgs84_to(r["crs"], float(r["true_lon"]), float(r["true_lat"]))
        assert (round(lon, 7), round(lat, 7)) == (float(r["lon"]), float(r["lat"]))
        if r["crs"] != "wgs84":
            assert abs(float(r["lon"]) - float(r["true_lon"])) > 1e-3
