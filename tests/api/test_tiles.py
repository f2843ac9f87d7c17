"""GET /tiles/{layer}/{z}/{x}/{y}.pbf and /tiles/{layer}.json, decoded with mapbox_vector_tile.

Expected features are computed independently with shapely from the fixture files, in Web
Mercator against the tile envelope grown by the 64-unit buffer the tiles are clipped with.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import mapping

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine
from tiles.address import TileAddress
from tiles.queries import render_tile

HALF = 20037508.342789244
EXTENT, BUFFER = 4096, 64


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The XYZ tile holding a WGS84 point."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def envelope(z: int, x: int, y: int, grow_cells: float = 0.0) -> shapely.Polygon:
    """The tile's EPSG:3857 square, grown (or shrunk) by a number of 1/4096 cells."""
    size = 2 * HALF / 2 ** z
    minx, maxy = -HALF + x * size, HALF - y * size
    d = grow_cells * size / EXTENT
    return shapely.box(minx - d, maxy - size - d, minx + size + d, maxy + d)


@pytest.fixture(scope="module")
def grids(fixture_dir: Path) -> dict[str, gpd.GeoDataFrame]:
    """Each fixture level in EPSG:3857, indexed by code."""
    frames = {}
    for level in ("large", "medium", "small"):
        frame = gpd.read_file(fixture_dir / f"grids_{level}.geojson").to_crs(3857)
        frames[level] = frame.set_index("code", drop=False)
    return frames


def expected_codes(frame: gpd.GeoDataFrame, tile: tuple[int, int, int]) -> tuple[set[str],
                                                                                  set[str]]:
    """(certain, possible): grids reaching well inside the buffered tile, and any near it.

    A grid touching the buffer's edge, or within two tile cells of it, may or may not survive
    the clip and the snap to the tile grid; every other one must be there or must not.
    """
    inner, outer = envelope(*tile, BUFFER - 2), envelope(*tile, BUFFER + 2)
    geoms = frame.geometry.to_numpy()
    cell = (2 * HALF / 2 ** tile[0] / EXTENT) ** 2
    certain = {c for c, g in zip(frame.index, geoms, strict=True)
               if shapely.intersection(g, inner).area > 4 * cell}
    possible = {c for c, g in zip(frame.index, geoms, strict=True) if g.intersects(outer)}
    return certain, possible


def decode(answer: Any) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    return dict(mapbox_vector_tile.decode(answer.content))


def codes(tile: dict[str, Any], layer: str) -> list[str]:
    return [f["properties"]["code"] for f in tile[layer]["features"]]


@pytest.fixture(scope="module")
def probe(fixture_dir: Path) -> dict[str, str]:
    """The first interior probe point of an urban small grid."""
    with (fixture_dir / "probes.csv").open(encoding="utf-8", newline="") as handle:
        return next(p for p in csv.DictReader(handle) if p["kind"] == "interior")


def test_known_z14_tile_has_exactly_the_expected_small_grids(
        client: TestClient, grids: dict[str, gpd.GeoDataFrame], probe: dict[str, str],
        engine: sa.Engine) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 14)
    tile = decode(client.get(f"/tiles/small/{z}/{x}/{y}.pbf"))
    assert list(tile) == ["small"]
    got = codes(tile, "small")
    assert len(got) == len(set(got)), "one feature per grid"
    certain, possible = expected_codes(grids["small"], (z, x, y))
    assert probe["expected_code"] in certain
    # No grid of this tile lies near the buffer's edge, so the expectation is exact.
    assert possible == certain
    assert set(got) == certain
    with engine.connect() as conn:
        stored = {r[0]: r[1:] for r in conn.execute(sa.text(
            """SELECT g.code, COALESCE(c.colour, 'blue'), COALESCE(c.score, 0),
                      COALESCE(c.open_events, 0)
               FROM grid g LEFT JOIN grid_colour c ON c.code = g.code
               WHERE g.version_high IS NULL AND g.code = ANY(:codes)"""), {"codes": got})}
    small = grids["small"]
    for feature in tile["small"]["features"]:
        p = feature["properties"]
        row = small.loc[p["code"]]
        assert (p["name"], p["level"], p["kind"], p["district"]) == (
            row["name"], "small", row["kind"], row["district_name"])
        assert (p["colour"], p["score"], p["open_events"]) == stored[p["code"]]
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")


@pytest.mark.parametrize("z", [8, 9])
def test_low_zoom_tile_has_every_level_s_grids(
        client: TestClient, grids: dict[str, gpd.GeoDataFrame], z: int) -> None:
    tile_xyz = tile_of(103.82, 36.06, z)
    for level, frame in grids.items():
        got = set(codes(decode(client.get("/tiles/{}/{}/{}/{}.pbf".format(level, *tile_xyz))),
                        level))
        certain, possible = expected_codes(frame, tile_xyz)
        # Simplified shapes keep even the smallest grids (preserveCollapsed): none is lost.
        assert certain <= got <= possible
        assert len(certain) > {"large": 10, "medium": 100, "small": 1000}[level]


def test_tile_queries_are_planned_for_their_own_tile(engine: sa.Engine) -> None:
    # A generic plan of the prepared tile query ignores the envelope's size (seconds a tile).
    with engine.connect() as conn:
        render_tile(conn, TileAddress("heat", 9, 403, 200))
        assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar_one() == \
            "force_custom_plan"
        conn.rollback()
        assert conn.execute(sa.text("SHOW plan_cache_mode")).scalar_one() == "auto"


def test_district_filter_keeps_only_that_district(client: TestClient, probe: dict[str, str],
                                                  grids: dict[str, gpd.GeoDataFrame]) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 12)
    everything = codes(decode(client.get(f"/tiles/small/{z}/{x}/{y}.pbf")), "small")
    district = probe["expected_code"][:6]
    only = codes(decode(client.get(f"/tiles/small/{z}/{x}/{y}.pbf",
                                   params={"district": district})), "small")
    assert sorted(only) == sorted(c for c in everything if c.startswith(district))
    assert len(only) < len(everything)


def test_etag_answers_304_and_cache_control(client: TestClient, probe: dict[str, str]) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 13)
    first = client.get(f"/tiles/medium/{z}/{x}/{y}.pbf")
    etag = first.headers["etag"]
    assert "must-revalidate" in first.headers["cache-control"]
    assert "max-age=" in first.headers["cache-control"]
    again = client.get(f"/tiles/medium/{z}/{x}/{y}.pbf", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    other = client.get(f"/tiles/medium/{z}/{x}/{y}.pbf", headers={"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.content == first.content


def test_plain_browser_get_without_accept_or_f(client: TestClient, probe: dict[str, str]
                                               ) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 11)
    for accept in ("*/*", "text/html,application/xhtml+xml,*/*;q=0.8", None):
        headers = {"Accept": accept} if accept else {}
        assert decode(client.get(f"/tiles/large/{z}/{x}/{y}.pbf", headers=headers))["large"]


def test_empty_tile_is_204(client: TestClient) -> None:
    z, x, y = tile_of(-60.0, -30.0, 10)  # the South Atlantic
    for layer in ("large", "small", "heat"):
        answer = client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf")
        assert answer.status_code == 204 and answer.content == b""


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/tiles/small/23/0/0.pbf", 404, "deepest zoom 22"),
    ("/tiles/small/3/8/0.pbf", 404, "0 to 7"),
    ("/tiles/small/3/0/8.pbf", 404, "0 to 7"),
    ("/tiles/small/1/-1/0.pbf", 400, "whole number"),
    ("/tiles/small/1/0/0.5.pbf", 400, "whole number"),
    ("/tiles/small/z/0/0.pbf", 400, "whole number"),
    ("/tiles/small/99999999999/0/0.pbf", 400, "whole number"),
    ("/tiles/roads/1/0/0.pbf", 404, "large, medium, small, heat"),
    ("/tiles/small/1/0/..%2F..%2F0.pbf", 404, ""),
    ("/tiles/small/1/0/0.pbf?district=6201", 400, "6-digit"),
    ("/tiles/small/1/0/0.pbf?district=999999", 400, "620102 城关区"),
    ("/tiles/small/1/0/0.pbf?at=yesterday", 400, "YYYY-MM-DD"),
    ("/tiles/small/1/0/0.pbf?at=2026-02-30", 400, "YYYY-MM-DD"),
    ("/tiles/roads.json", 404, "large, medium, small, heat"),
    ("/tiles/small/1/0/0.pbf?category=环境卫生", 400, "heat layer only"),
    ("/tiles/heat/1/0/0.pbf?category=" + "长" * 17, 400, "unknown category"),
])
def test_bad_tile_addresses_are_4xx_with_a_message(client: TestClient, path: str, status: int,
                                                   words: str) -> None:
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["message"]


def test_tilejson_points_at_absolute_tile_urls(client: TestClient, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        west, south, east, north = conn.execute(sa.text(
            """SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom)
               e FROM grid WHERE version_high IS NULL) b""")).one()
    for layer in ("large", "medium", "small", "heat"):
        doc = client.get(f"/tiles/{layer}.json").json()
        assert doc["tilejson"] == "3.0.0"
        assert doc["tiles"] == [f"http://testserver/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf"]
        assert doc["minzoom"] == 0 and doc["maxzoom"] == 22
        assert doc["bounds"] == pytest.approx([west, south, east, north], abs=1e-5)
        assert west < doc["center"][0] < east and south < doc["center"][1] < north
        [vector_layer] = doc["vector_layers"]
        assert vector_layer["id"] == layer
        fields = {"code", "events_7d", "events_30d"} if layer == "heat" else {
            "code", "name", "level", "kind", "district", "colour", "score", "open_events"}
        assert fields <= set(vector_layer["fields"])
    filtered = client.get("/tiles/small.json", params={"district": "620102"}).json()
    assert filtered["tiles"][0].endswith("{y}.pbf?district=620102")


def test_past_date_before_the_first_version_has_no_grids(client: TestClient,
                                                         probe: dict[str, str]) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 14)
    now = codes(decode(client.get(f"/tiles/small/{z}/{x}/{y}.pbf")), "small")
    then = client.get(f"/tiles/small/{z}/{x}/{y}.pbf", params={"at": "2026-06-01"})
    assert sorted(codes(decode(then), "small")) == sorted(now)  # one version since 2026-01-01
    assert client.get(f"/tiles/small/{z}/{x}/{y}.pbf",
                      params={"at": "2025-12-31"}).status_code == 204


# --- on a scratch copy of the city: colours, heat and a boundary change --------------------


class City:
    """A loaded scratch city with an app on it."""

    def __init__(self, client: TestClient, engine: sa.Engine, token: str) -> None:
        self.client, self.engine, self.token = client, engine, token

    def execute(self, sql: str, params: Any = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params or {})

    def bump_layer_version(self) -> None:
        """What the layers code does after changing colours or heat."""
        self.execute("UPDATE layer_state SET layer_version = layer_version + 1, "
                     "updated_at = now(); NOTIFY layer_version")


@pytest.fixture(scope="module")
def city(city_module_database: Database) -> Iterator[City]:
    engine = create_engine(city_module_database)
    with engine.begin() as conn:
        token = issue_token(conn, "test planner", "planner")
    settings = Settings(db=DatabaseSettings(url=city_module_database.url))
    settings.tiles.layer_recheck_s = 600  # only the notification may move the version here
    with TestClient(create_app(settings)) as client:
        yield City(client, engine, token)
    engine.dispose()


def _until(check: Any, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "the tile never changed"
        time.sleep(0.1)


def test_colours_appear_and_the_cache_follows_layer_version(
        city: City, probe: dict[str, str], grids: dict[str, gpd.GeoDataFrame]) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 14)
    path = f"/tiles/small/{z}/{x}/{y}.pbf"
    before = city.client.get(path)
    tile = decode(before)
    assert {f["properties"]["colour"] for f in tile["small"]["features"]} == {"blue"}
    chosen = sorted(codes(tile, "small"))[:3]
    colours = dict(zip(chosen, ("red", "yellow", "red"), strict=True))
    for i, (code, colour) in enumerate(colours.items()):
        city.execute("""INSERT INTO grid_colour (code, level, colour, score, open_events)
                        VALUES (:code, 'small', :colour, :score, :open)""",
                     {"code": code, "colour": colour, "score": 10.5 + i, "open": 3 + i})
    # Until the layer version moves, the cached tile (and its ETag) stands.
    assert city.client.get(path, headers={"If-None-Match": before.headers["etag"]}
                           ).status_code == 304
    city.bump_layer_version()
    after = _until(lambda: (a := city.client.get(
        path, headers={"If-None-Match": before.headers["etag"]})).status_code == 200 and a)
    assert after.headers["etag"] != before.headers["etag"]
    seen = {f["properties"]["code"]: f["properties"] for f in decode(after)["small"]["features"]}
    for i, (code, colour) in enumerate(colours.items()):
        assert (seen[code]["colour"], seen[code]["score"], seen[code]["open_events"]) == (
            colour, 10.5 + i, 3 + i)
    assert {p["colour"] for c, p in seen.items() if c not in colours} == {"blue"}


def tile_point(tile: tuple[int, int, int], coords: list[int]) -> shapely.Point:
    """A decoded point (tile units, y up as mapbox_vector_tile gives it) in EPSG:3857."""
    minx, miny, maxx, _ = envelope(*tile).bounds
    k = (maxx - minx) / EXTENT
    return shapely.Point(minx + coords[0] * k, miny + coords[1] * k)


def test_heat_tile_has_counts_per_grid_and_category(
        city: City, probe: dict[str, str], grids: dict[str, gpd.GeoDataFrame]) -> None:
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 13)
    grid_codes = sorted(codes(decode(city.client.get(f"/tiles/small/{z}/{x}/{y}.pbf")),
                              "small"))
    assert city.client.get(f"/tiles/heat/{z}/{x}/{y}.pbf").status_code == 204
    rows = [{"code": grid_codes[0], "category": "矛盾纠纷", "d7": 2, "d30": 5},
            {"code": grid_codes[0], "category": "环境卫生", "d7": 0, "d30": 4},
            {"code": grid_codes[1], "category": "环境卫生", "d7": 1, "d30": 1},
            {"code": grid_codes[2], "category": "环境卫生", "d7": 0, "d30": 0}]
    city.execute("INSERT INTO grid_heat VALUES (:code, :category, :d7, :d30)", rows)
    city.bump_layer_version()
    heat = _until(lambda: (a := city.client.get(f"/tiles/heat/{z}/{x}/{y}.pbf")
                           ).status_code == 200 and a)
    features = {f["properties"]["code"]: f for f in decode(heat)["heat"]["features"]}
    assert set(features) == {grid_codes[0], grid_codes[1]}  # no heat, no point
    first = features[grid_codes[0]]
    assert first["geometry"]["type"] == "Point"
    cell = (envelope(z, x, y).bounds[2] - envelope(z, x, y).bounds[0]) / EXTENT
    for code, feature in features.items():  # on the grid's surface, to the tile grid's cell
        point = tile_point((z, x, y), feature["geometry"]["coordinates"])
        assert grids["small"].loc[code].geometry.distance(point) <= cell, code
    assert first["properties"] == {"code": grid_codes[0], "events_7d": 2, "events_30d": 9}
    assert features[grid_codes[1]]["properties"]["events_30d"] == 1
    by_category = {
        category: {f["properties"]["code"]: (f["properties"]["events_7d"],
                                             f["properties"]["events_30d"])
                   for f in decode(city.client.get(f"/tiles/heat/{z}/{x}/{y}.pbf", params={
                       "category": category}))["heat"]["features"]}
        for category in ("矛盾纠纷", "环境卫生")}
    assert by_category == {"矛盾纠纷": {grid_codes[0]: (2, 5)},
                           "环境卫生": {grid_codes[0]: (0, 4), grid_codes[1]: (1, 1)}}
    assert city.client.get(f"/tiles/heat/{z}/{x}/{y}.pbf",
                           params={"category": "拆迁安置"}).status_code == 204


def test_boundary_change_reaches_tiles_and_at_shows_the_old_version(
        city: City, grids: dict[str, gpd.GeoDataFrame], probe: dict[str, str]) -> None:
    code = probe["expected_code"]
    small = grids["small"].to_crs(4326)
    row = small.loc[code]
    minx, miny, maxx, maxy = row.geometry.bounds
    cut = shapely.LineString([((minx + maxx) / 2, miny - 1), ((minx + maxx) / 2, maxy + 1)])
    halves = sorted(shapely.get_parts(shapely.ops.split(row.geometry, cut)),
                    key=lambda g: g.centroid.x)
    parts = [shapely.union_all(halves[:1]), shapely.union_all(halves[1:])]
    new_codes = [row["parent_code"] + "901", row["parent_code"] + "902"]
    features = [{"type": "Feature", "geometry": mapping(g), "properties": {
        "code": c, "parent_code": row["parent_code"], "name": f"拆分{i}", "level": "small",
        "kind": row["kind"], "district_code": row["district_code"],
        "district_name": row["district_name"]}} for i, (c, g) in enumerate(
            zip(new_codes, parts, strict=True))]
    headers = {"Authorization": f"Bearer {city.token}"}
    with city.engine.connect() as conn:
        base = int(conn.execute(sa.text("SELECT max(id) FROM grid_version")).scalar_one())
    z, x, y = tile_of(float(probe["lon"]), float(probe["lat"]), 15)
    path = f"/tiles/small/{z}/{x}/{y}.pbf"
    before = city.client.get(path)
    assert code in codes(decode(before), "small")
    proposal = city.client.post("/api/v1/grid-changes", headers=headers, json={
        "base_version": base, "reason": "拆分测试", "retire": [code],
        "features": {"type": "FeatureCollection", "features": features}})
    assert proposal.status_code == 201, proposal.text
    done = city.client.post(f"/api/v1/grid-changes/{proposal.json()['id']}/commit",
                            headers=headers)
    assert done.status_code == 200, done.text
    after = _until(lambda: (a := city.client.get(path)).headers["etag"] !=
                   before.headers["etag"] and a, seconds=60)
    now = set(codes(decode(after), "small"))
    assert code not in now and set(new_codes) <= now
    # The new rows got their simplified shapes too (zoom 12 reads those, not the geometry).
    z12 = tile_of(float(probe["lon"]), float(probe["lat"]), 12)
    banded = set(codes(decode(city.client.get("/tiles/small/{}/{}/{}.pbf".format(*z12))),
                       "small"))
    assert code not in banded and set(new_codes) <= banded
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
    old = set(codes(decode(city.client.get(path, params={"at": today.isoformat()})), "small"))
    assert code in old and not set(new_codes) & old
    assert old - {code} == now - set(new_codes)
