"""OGC API at /ogc read by real clients (OWSLib, GDAL through pyogrio and ogr2ogr) over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pyogrio
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from owslib.ogcapi.features import Features
from shapely.testing import assert_geometries_equal
from sqlalchemy.engine import Engine

from api.app import create_app
from api.ogc.config import CONFIG_FILE, OPENAPI_FILE, base_url
from api.ogc.settings import OgcSettings
from api.settings import Settings
from gis.settings import PROJECT_ROOT
from gis.store import Database

LEVEL_COUNTS = {"grids-large": 110, "grids-medium": 1086, "grids-small": 7507}
GRID_PROPERTIES = {"code", "parent_code", "name", "level", "kind", "district", "district_code",
                   "gridworker", "colour", "score", "open_events", "overdue_events"}
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
# A box over the urban core (Chengguan), in CRS84.
BOX = (103.80, 36.04, 103.86, 36.08)

# Written from the store itself, not from the views the collections read.
STORE_GRIDS = """
    SELECT g.code, g.parent_code, g.name, g.level, g.kind, d.name AS district, g.district_code,
           (SELECT w.name FROM gridworker w WHERE w.grid_code = g.code AND w.active = 1
            ORDER BY w.on_duty_since DESC LIMIT 1) AS gridworker, g.geom
    FROM grid g JOIN district d ON d.code = g.district_code
    WHERE g.version_high IS NULL AND g.level = :level ORDER BY g.code
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ogc_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ogc")


@pytest.fixture(scope="module")
def base(database: Database, engine: Engine, ogc_folder: Path) -> Iterator[str]:
    """The whole app served by uvicorn on loopback in a child process; yields the /ogc base.

    A child process, not a thread: GDAL holds the GIL while it waits for HTTP answers.
    """
    port = _free_port()
    env = {**os.environ, "MINQING_DB_URL": database.url, "MINQING_API_PORT": str(port),
           "MINQING_OGC_CONFIG_DIR": str(ogc_folder)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=PROJECT_ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the OGC test server did not start")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ogc/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/ogc"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def store(engine: Engine) -> dict[str, gpd.GeoDataFrame]:
    """Each level as the store holds it, indexed by code."""
    with engine.connect() as conn:
        return {
            cid: gpd.read_postgis(sa.text(STORE_GRIDS), conn, geom_col="geom",
                                  params={"level": cid.removeprefix("grids-")}).set_index("code")
            for cid in LEVEL_COUNTS
        }


@pytest.fixture(scope="module")
def fixture_small(fixture_dir: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(fixture_dir / "grids_small.geojson", engine="pyogrio")


def _get(url: str, **params: Any) -> httpx.Response:
    # An empty params mapping would drop the query string already in ``url`` (next links).
    return httpx.get(url, params=params or None, timeout=60)


def test_config_and_openapi_generated_with_the_real_base(base: str, ogc_folder: Path) -> None:
    config = (ogc_folder / CONFIG_FILE).read_text(encoding="utf-8")
    assert f"url: {base}\n" in config
    assert "password" not in config
    openapi = json.loads((ogc_folder / OPENAPI_FILE).read_text(encoding="utf-8"))
    assert {"/collections/grids-small/items", "/collections/heat/items"} <= set(openapi["paths"])
    landing = _get(base + "/").json()
    assert {link["href"] for link in landing["links"]} >= {base + "/conformance",
                                                          base + "/collections"}


def test_owslib_lists_the_collections_and_conformance(base: str) -> None:
    api = Features(base)
    ids = {c["id"] for c in api.collections()["collections"]}
    assert ids == {"grids-large", "grids-medium", "grids-small", "heat"}
    conforms = set(api.conformance()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms
    assert any("filter" in c for c in conforms)
    small = api.collection("grids-small")
    assert small["crs"][:3] == [CRS84, EPSG_4326, EPSG_4490]
    assert set(api.collection_queryables("grids-small")["properties"]) >= GRID_PROPERTIES


def test_owslib_pages_through_every_small_grid(base: str, engine: Engine) -> None:
    api = Features(base)
    codes: list[str] = []
    offset, pages = 0, 0
    while True:
        page = api.collection_items("grids-small", limit=1000, offset=offset)
        rels = {link["rel"] for link in page["links"]}
        codes.extend(f["id"] for f in page["features"])
        pages += 1
        if page["numberReturned"] < 1000:
            assert "next" not in rels
            break
        assert "next" in rels
        offset += 1000
    assert pages == 8
    assert len(codes) == len(set(codes)) == 7507
    with engine.connect() as conn:
        phones = {r[0] for r in conn.execute(sa.text("SELECT phone FROM gridworker"))}
        stored = {r[0] for r in conn.execute(sa.text(
            "SELECT code FROM grid WHERE version_high IS NULL AND level = 'small'"))}
    assert set(codes) == stored
    assert set(page["features"][0]["properties"]) == GRID_PROPERTIES
    assert not phones & {str(v) for v in page["features"][0]["properties"].values()}


def test_next_links_chain_to_the_end(base: str) -> None:
    url: str | None = f"{base}/collections/grids-medium/items?limit=500"
    seen = 0
    while url:
        page = _get(url).json()
        seen += page["numberReturned"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert seen == 1086


def test_cql2_filter_counts_match_the_fixture(base: str, fixture_small: gpd.GeoDataFrame) -> None:
    expected = int(((fixture_small["kind"] == "dedicated")
                    & (fixture_small["district_name"] == "城关区")).sum())
    page = Features(base).collection_items(
        "grids-small", filter="kind='dedicated' AND district='城关区'", limit=10000)
    assert page["numberReturned"] == expected
    assert {(f["properties"]["kind"], f["properties"]["district"]) for f in page["features"]} \
        == {("dedicated", "城关区")}


def test_spatial_filters_and_bbox_agree_with_geopandas(
        base: str, fixture_small: gpd.GeoDataFrame) -> None:
    box = shapely.box(*BOX)
    expected = set(fixture_small.loc[fixture_small.intersects(box), "code"])
    polygon = box.wkt.replace("POLYGON ", "POLYGON")
    url = f"{base}/collections/grids-small/items"
    answers = {
        "S_INTERSECTS": _get(url, filter=f"S_INTERSECTS(geometry, {polygon})", limit=10000),
        "BBOX()": _get(url, filter="BBOX(geometry, {}, {}, {}, {})".format(*BOX), limit=10000),
        "bbox=": _get(url, bbox=",".join(map(str, BOX)), limit=10000),
        "bbox-crs 4490": _get(url, bbox=f"{BOX[1]},{BOX[0]},{BOX[3]},{BOX[2]}",
                              **{"bbox-crs": EPSG_4490}, limit=10000),
    }
    for how, response in answers.items():
        assert response.status_code == 200, how
        assert {f["id"] for f in response.json()["features"]} == expected, how
    assert 100 < len(expected) < 7507


def test_crs_on_request_swaps_to_lat_lon_with_content_crs(base: str) -> None:
    url = f"{base}/collections/grids-large/items"
    plain = _get(url, limit=3)
    assert plain.headers["Content-Crs"] == f"<{CRS84}>"
    for crs in (EPSG_4490, EPSG_4326):
        answer = _get(url, limit=3, crs=crs)
        assert answer.status_code == 200
        assert answer.headers["Content-Crs"] == f"<{crs}>"
        for a, b in zip(plain.json()["features"], answer.json()["features"], strict=True):
            lonlat = np.array(shapely.get_coordinates(shapely.geometry.shape(a["geometry"])))
            latlon = np.array(shapely.get_coordinates(shapely.geometry.shape(b["geometry"])))
            np.testing.assert_allclose(latlon[:, ::-1], lonlat, atol=1e-9)
    assert _get(url, crs="http://www.opengis.net/def/crs/EPSG/0/3857").status_code == 400


def _check_against_store(frame: gpd.GeoDataFrame, store: gpd.GeoDataFrame, count: int) -> None:
    assert len(frame) == count
    frame = frame.set_index("code").sort_index()
    assert frame.index.equals(store.index)
    for column in ("parent_code", "name", "kind", "district", "district_code", "gridworker"):
        got = frame[column].where(frame[column].notna(), None)
        want = store[column].where(store[column].notna(), None)
        assert got.tolist() == want.tolist(), column
    assert set(frame["colour"]) == {"blue"}  # no layer refresh has run on the test database
    assert (frame["score"] == 0).all() and (frame["open_events"] == 0).all()
    assert_geometries_equal(np.array(frame.geometry), np.array(store.geometry),
                            tolerance=1e-9, normalize=True)


@pytest.mark.parametrize("collection", list(LEVEL_COUNTS))
def test_pyogrio_reads_each_level_into_a_geopackage(
        base: str, store: dict[str, gpd.GeoDataFrame], tmp_path: Path, collection: str) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer=collection, PAGE_SIZE=2000)
    out = tmp_path / f"{collection}.gpkg"
    pyogrio.write_dataframe(frame, out, layer=collection)
    back = pyogrio.read_dataframe(out)
    assert back.crs.equals("OGC:CRS84") or back.crs.to_epsg() == 4326
    _check_against_store(back, store[collection], LEVEL_COUNTS[collection])


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="gdal-bin not installed")
@pytest.mark.parametrize("collection", list(LEVEL_COUNTS))
def test_ogr2ogr_copies_each_level_into_a_geopackage(
        base: str, store: dict[str, gpd.GeoDataFrame], tmp_path: Path, collection: str) -> None:
    out = tmp_path / f"{collection}.gpkg"
    subprocess.run(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}", collection,
                    "-oo", "PAGE_SIZE=2000"], check=True, capture_output=True, timeout=120)
    _check_against_store(pyogrio.read_dataframe(out), store[collection],
                         LEVEL_COUNTS[collection])


def test_gdal_reads_cgcs2000_on_request(
        base: str, store: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> None:
    frame = pyogrio.read_dataframe(f"OAPIF:{base}", layer="grids-medium", CRS="EPSG:4490",
                                   PAGE_SIZE=2000)
    assert frame.crs.to_epsg() == 4490
    out = tmp_path / "medium-4490.gpkg"
    pyogrio.write_dataframe(frame, out)
    back = pyogrio.read_dataframe(out)
    assert back.crs.to_epsg() == 4490
    # CGCS2000 and WGS84 differ by centimetres: PROJ keeps the numbers (x = lon in GDAL).
    _check_against_store(back, store["grids-medium"], 1086)


@pytest.mark.parametrize("path", [
    "/", "/conformance", "/collections", "/collections/grids-small",
    "/collections/grids-small/items", "/collections/heat/items",
    "/collections/grids-small/items/620102001001001", "/collections/grids-small/queryables",
])
def test_html_pages(base: str, path: str) -> None:
    answer = _get(base + path, f="html")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "<html" in answer.text
    assert _get(base + path, f="json").headers["content-type"].startswith("application/")


def test_past_date_reads_the_grids_then_in_force(base: str) -> None:
    url = f"{base}/collections/grids-small/items"
    # The fixture city is in force from 2026-01-01 (Beijing time).
    assert _get(url, at="2026-06-01", resulttype="hits").json()["numberMatched"] == 7507
    assert _get(url, at="2025-12-31", resulttype="hits").json()["numberMatched"] == 0
    assert _get(url, at="2026-06-01", kind="dedicated",
                resulttype="hits").json()["numberMatched"] == 739
    refused = _get(url, at="1st of June")
    assert refused.status_code == 400 and "YYYY-MM-DD" in refused.json()["description"]


def test_heat_sums_categories_per_small_grid(base: str, engine: Engine) -> None:
    code = "620102001001001"
    rows = [{"code": code, "category": "矛盾纠纷", "d7": 2, "d30": 5},
            {"code": code, "category": "环境卫生", "d7": 1, "d30": 4}]
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO grid_heat (code, category, events_7d, events_30d) "
                             "VALUES (:code, :category, :d7, :d30)"), rows)
    try:
        item = _get(f"{base}/collections/heat/items/{code}").json()
        hot = _get(f"{base}/collections/heat/items", filter="events_30d > 0").json()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM grid_heat WHERE code = :code"), {"code": code})
    assert item["properties"]["events_7d"] == 3 and item["properties"]["events_30d"] == 9
    assert item["properties"]["categories_30d"] == {"矛盾纠纷": 5, "环境卫生": 4}
    assert [f["id"] for f in hot["features"]] == [code]
    assert item["geometry"]["type"] == "MultiPolygon"


BAD_ITEMS_QUERIES = [
    {"filter": "kind="}, {"filter": "kind='dedicated'; DROP TABLE grid"},
    {"filter": "nosuch = 1"}, {"filter": '"code; DROP TABLE grid" = \'1\''},
    {"filter": "score = 'abc'"}, {"filter": "open_events > 'x'"}, {"filter": "kind LIKE 1"},
    {"filter": "S_INTERSECTS(geometry, POINT(1))"},
    {"filter": "S_INTERSECTS(geometry, POLYGON((0 0, 1 1)))"},
    {"filter": "T_AFTER(code, TIMESTAMP('2020-01-01T00:00:00Z'))"}, {"filter": "code IN ()"},
    {"filter": "BBOX(geometry, 36, 103, 37, 104)", "filter-crs": EPSG_4490},
    {"filter": "kind='urban'", "filter-lang": "sql"},
    {"filter": "S_INTERSECTS(geometry, POINT(103.8 36.06))", "filter-crs": "EPSG:9999"},
    {"properties": "code;drop"}, {"properties": "nosuch"}, {"sortby": "nosuch"},
    {"crs": "EPSG:9999"}, {"crs": "nonsense"}, {"bbox": "1,2,3"}, {"bbox": "a,b,c,d"},
    {"bbox": "104,37,103,36"}, {"bbox": "nan,0,1,1"}, {"bbox": "1e999,0,1,1"},
    {"bbox": "103,36,104,37", "bbox-crs": "EPSG:9999"}, {"limit": "abc"}, {"limit": "-1"},
    {"limit": "0"}, {"offset": "-1"}, {"offset": "abc"}, {"offset": "99999999999999999999"},
    {"datetime": "2026-01-01"}, {"score": "abc"}, {"open_events": "x"}, {"f": "xyz"},
    {"at": "2026-13-45"},
]


@pytest.mark.parametrize("params", BAD_ITEMS_QUERIES, ids=lambda p: "&".join(
    f"{k}={v}" for k, v in p.items()))
def test_bad_input_answers_400_with_a_reason(client: Any, params: dict[str, str]) -> None:
    answer = client.get("/ogc/collections/grids-small/items", params=params)
    assert answer.status_code == 400, answer.text
    assert answer.json()["description"]


def test_good_edge_values_are_served(client: Any) -> None:
    url = "/ogc/collections/grids-small/items"
    assert len(client.get(url, params={"open_events": "0", "limit": 5}).json()["features"]) == 5
    assert client.get(url, params={"lang": "xx"}).status_code == 200
    big = client.get(url, params={"limit": "99999999999", "skipGeometry": "true"}).json()
    assert big["numberReturned"] == 7507  # throttled to the server's maximum (10000)
    assert client.get("/ogc/collections/nosuch/items").status_code == 404
    assert client.get(f"{url}/nosuch").status_code == 404
    for method in ("post", "put", "delete"):
        assert getattr(client, method)(f"{url}/620102001001001").status_code == 405


def test_events_are_not_published(client: Any) -> None:
    collections = client.get("/ogc/collections").json()["collections"]
    assert not [c for c in collections if "event" in c["id"] and c["id"] != "heat"]
    assert client.get("/ogc/collections/events/items").status_code == 404



def test_colours_come_from_the_layer_table(base: str, engine: Engine) -> None:
    code = "620102001001002"
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO grid_colour (code, level, colour, score, open_events, overdue_events) "
            "VALUES (:code, 'small', 'red', 12.5, 7, 2)"), {"code": code})
    try:
        item = _get(f"{base}/collections/grids-small/items/{code}").json()["properties"]
        reds = _get(f"{base}/collections/grids-small/items", filter="colour='red'").json()
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM grid_colour WHERE code = :code"), {"code": code})
    assert (item["colour"], item["score"], item["open_events"], item["overdue_events"]) == (
        "red", 12.5, 7, 2)
    assert [f["id"] for f in reds["features"]] == [code]
    assert _get(f"{base}/collections/grids-small/items/{code}").json()["properties"][
        "colour"] == "blue"


def test_each_app_keeps_its_own_configuration(
        client: Any, app_settings: Settings, tmp_path: Path) -> None:
    other = Settings(api=app_settings.api, db=app_settings.db,
                     ogc=OgcSettings(url="https://gis.lanzhou.example/ogc", config_dir=tmp_path))
    with TestClient(create_app(other)) as second:
        links = {link["rel"]: link["href"] for link in second.get("/ogc/").json()["links"]}
        assert links["conformance"] == "https://gis.lanzhou.example/ogc/conformance"
    links = {link["rel"]: link["href"] for link in client.get("/ogc/").json()["links"]}
    assert links["conformance"] == f"{base_url(app_settings)}/conformance"
    assert "gis.lanzhou.example" in (tmp_path / CONFIG_FILE).read_text(encoding="utf-8")


def test_pages_carry_the_stored_geometry_to_nine_decimals(
        client: Any, store: dict[str, gpd.GeoDataFrame]) -> None:
    page = client.get("/ogc/collections/grids-small/items",
                      params={"limit": 200, "offset": 2900}).json()
    assert page["numberReturned"] == 200
    stored = store["grids-small"]
    for feature in page["features"]:
        served = shapely.geometry.shape(feature["geometry"])
        want = stored.loc[feature["id"], "geom"]
        got_xy, want_xy = shapely.get_coordinates(served), shapely.get_coordinates(want)
        assert got_xy.shape == want_xy.shape, feature["id"]
        np.testing.assert_allclose(got_xy, want_xy, rtol=0, atol=5.0001e-10)
        assert np.allclose(got_xy * 1e9, np.round(got_xy * 1e9), rtol=0, atol=1e-3)


def test_html_csv_and_jsonld_answers_are_built_from_the_same_features(client: Any) -> None:
    url = "/ogc/collections/grids-small/items"
    params = {"limit": 5, "offset": 700}
    geojson = client.get(url, params=params).json()["features"]
    codes = [f["id"] for f in geojson]
    csv_text = client.get(url, params={**params, "f": "csv"})
    assert csv_text.status_code == 200
    rows = csv_text.text.strip().splitlines()
    assert len(rows) == 6 and all(code in csv_text.text for code in codes)
    jsonld = client.get(url, params={**params, "f": "jsonld"})
    assert jsonld.status_code == 200
    assert [f["@id"].rsplit("/", 1)[-1] for f in jsonld.json()["features"]] == codes
    html = client.get(url, params={**params, "f": "html"})
    assert html.status_code == 200
    coordinate = geojson[0]["geometry"]["coordinates"][0][0][0]
    assert f"{coordinate[0]}" in html.text  # the page's map draws the same numbers


def test_pages_sorted_on_a_repeated_value_cover_every_grid_once(client: Any) -> None:
    codes: list[str] = []
    kinds: list[str] = []
    for offset in range(0, 7507, 2000):
        page = client.get("/ogc/collections/grids-small/items", params={
            "sortby": "-kind", "limit": 2000, "offset": offset, "skipGeometry": "true",
            "properties": "kind"}).json()
        codes.extend(f["id"] for f in page["features"])
        kinds.extend(f["properties"]["kind"] for f in page["features"])
    assert len(codes) == len(set(codes)) == 7507
    assert kinds == sorted(kinds, reverse=True)
    assert [k for k in dict.fromkeys(kinds)] == ["urban", "rural", "dedicated"]
