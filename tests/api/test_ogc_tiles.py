"""OGC API Tiles at /ogc: the tileset documents, and tiles equal to /tiles' (mapbox_vector_tile)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient
from test_tiles import codes, expected_codes, grids, tile_of  # noqa: F401 (grids: a fixture)

WEB_MERCATOR_QUAD = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
MVT = "application/vnd.mapbox-vector-tile"
LAYERS = {"grids-large": "large", "grids-medium": "medium", "grids-small": "small"}


@pytest.fixture(scope="module")
def urban_point(fixture_dir: Path) -> tuple[float, float]:
    """An interior probe point of an urban small grid (lon, lat)."""
    with (fixture_dir / "probes.csv").open(encoding="utf-8", newline="") as handle:
        probe = next(p for p in csv.DictReader(handle) if p["kind"] == "interior")
    return float(probe["lon"]), float(probe["lat"])


@pytest.mark.parametrize("collection", [*LAYERS, "heat"])
def test_each_collection_lists_its_web_mercator_tileset(client: TestClient,
                                                        collection: str) -> None:
    described = client.get(f"/ogc/collections/{collection}").json()
    rels = {link["rel"] for link in described["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector" in rels
    tilesets = client.get(f"/ogc/collections/{collection}/tiles", params={"f": "json"}).json()
    assert [t["tileMatrixSetURI"] for t in tilesets["tilesets"]] == [WEB_MERCATOR_QUAD]
    assert tilesets["tilesets"][0]["dataType"] == "vector"
    template = next(link["href"] for link in tilesets["links"] if link["rel"] == "item")
    assert template.endswith(f"/ogc/collections/{collection}/tiles/{{tileMatrixSetId}}/"
                             "{tileMatrix}/{tileRow}/{tileCol}?f=mvt")
    metadata = client.get(f"/ogc/collections/{collection}/tiles/WebMercatorQuad",
                          params={"f": "json"})
    assert metadata.status_code == 200
    assert metadata.json()["tileMatrixSetURI"] == WEB_MERCATOR_QUAD
    conformance = set(client.get("/ogc/conformance").json()["conformsTo"])
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt" in conformance


@pytest.mark.parametrize("collection", list(LAYERS))
def test_a_tile_through_ogc_is_the_tile_of_tiles(
        client: TestClient, grids: dict[str, gpd.GeoDataFrame],  # noqa: F811
        urban_point: tuple[float, float], collection: str) -> None:
    layer = LAYERS[collection]
    z, x, y = tile_of(*urban_point, 14 if layer == "small" else 11)
    # A browser's or MapLibre's plain GET: no f=, no Accept; row = y, column = x.
    plain = client.get(f"/ogc/collections/{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}",
                       headers={"accept": "*/*"})
    assert plain.status_code == 200 and plain.headers["content-type"] == MVT
    asked = client.get(f"/ogc/collections/{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}",
                       params={"f": "mvt"})
    ours = client.get(f"/tiles/{layer}/{z}/{x}/{y}.pbf")
    assert plain.content == asked.content == ours.content
    assert plain.headers["etag"] == ours.headers["etag"]
    decoded = dict(mapbox_vector_tile.decode(plain.content))
    got = codes(decoded, layer)
    certain, possible = expected_codes(grids[layer], (z, x, y))
    assert len(got) == len(set(got))
    assert certain <= set(got) <= possible
    assert {f["properties"]["colour"] for f in decoded[layer]["features"]} == {"blue"}
    again = client.get(f"/ogc/collections/{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}",
                       headers={"if-none-match": plain.headers["etag"]})
    assert again.status_code == 304


def test_a_tile_without_grids_is_empty(client: TestClient) -> None:
    # Zoom 10, far in the Pacific.
    answer = client.get("/ogc/collections/grids-small/tiles/WebMercatorQuad/10/500/10")
    assert answer.status_code == 204 and answer.content == b""


def test_the_tilejson_points_at_the_ogc_tiles(client: TestClient,
                                              urban_point: tuple[float, float]) -> None:
    tilejson = client.get("/ogc/collections/grids-medium/tiles/WebMercatorQuad",
                          params={"f": "tilejson"}).json()
    template = tilejson["tiles"][0]
    assert template.endswith("/ogc/collections/grids-medium/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert [v["id"] for v in tilejson["vector_layers"]] == ["medium"]
    z, x, y = tile_of(*urban_point, 12)
    path = "/ogc" + template.split("/ogc", 1)[1].format(z=z, x=x, y=y)
    assert client.get(path).content == client.get(f"/tiles/medium/{z}/{x}/{y}.pbf").content


@pytest.mark.parametrize(("path", "status", "words"), [
    ("grids-small/tiles/WebMercatorQuad/23/0/0", 404, "deepest zoom 22"),
    ("grids-small/tiles/WebMercatorQuad/3/8/0", 404, "x and y run from 0 to 7"),
    ("grids-small/tiles/WebMercatorQuad/3/0/8", 404, "x and y run from 0 to 7"),
    ("grids-small/tiles/WebMercatorQuad/-1/0/0", 400, "whole number"),
    ("grids-small/tiles/WebMercatorQuad/3/1/1.5", 400, "whole number"),
    ("grids-small/tiles/WorldCRS84Quad/3/1/1", 404, "WebMercatorQuad"),
    ("grids-small/tiles/WorldCRS84Quad", 404, "WebMercatorQuad"),
    ("events/tiles/WebMercatorQuad/3/1/1", 404, "those with tiles are"),
    ("events/tiles", 404, "Collection not found"),
])
def test_tiles_out_of_range_say_what_is_wrong(client: Any, path: str, status: int,
                                              words: str) -> None:
    answer = client.get(f"/ogc/collections/{path}")
    assert answer.status_code == status, answer.text
    assert words in answer.json()["description"]
