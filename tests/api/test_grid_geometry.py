"""GET /api/v1/grids/{code}/geometry: a grid's current boundary as a GeoJSON Feature."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape


@pytest.fixture(scope="module")
def fixture_grids(fixture_dir: Path) -> dict[str, dict]:
    grids = {}
    for level in ("large", "medium", "small"):
        data = json.loads((fixture_dir / f"grids_{level}.geojson").read_text(encoding="utf-8"))
        grids.update({f["properties"]["code"]: f for f in data["features"]})
    return grids


@pytest.mark.parametrize("code", ["620102001", "620102001001", "620102001001008",
                                  "620104103215008"])
def test_the_boundary_is_the_fixture_boundary(client: TestClient, fixture_grids: dict,
                                              code: str) -> None:
    answer = client.get(f"/api/v1/grids/{code}/geometry")
    assert answer.status_code == 200
    feature = answer.json()
    assert feature["type"] == "Feature" and feature["id"] == code
    expected = fixture_grids[code]
    props = feature["properties"]
    assert (props["code"], props["name"], props["level"]) == (
        code, expected["properties"]["name"], expected["properties"]["level"])
    assert props["district"]["code"] == code[:6]
    served, drawn = shape(feature["geometry"]), shape(expected["geometry"])
    # Served with 7 decimals (1 cm): the same polygon, vertex for vertex.
    assert shapely.equals_exact(shapely.normalize(shapely.force_2d(served)),
                                shapely.normalize(shapely.MultiPolygon(
                                    [drawn] if drawn.geom_type == "Polygon" else drawn.geoms))
                                if served.geom_type == "MultiPolygon"
                                else shapely.normalize(drawn), tolerance=1e-7)


def test_simplified_boundaries_have_fewer_vertices(client: TestClient) -> None:
    full = shape(client.get("/api/v1/grids/620102001/geometry").json()["geometry"])
    simple = shape(client.get("/api/v1/grids/620102001/geometry",
                              params={"simplify": 0.0005}).json()["geometry"])
    assert shapely.get_num_coordinates(simple) < shapely.get_num_coordinates(full)
    assert simple.is_valid and full.symmetric_difference(simple).area < 0.05 * full.area


@pytest.mark.parametrize(("code", "status", "words"), [
    ("620102001001999", 404, "no grid 620102001001999"),
    ("62010200100100x", 422, "not a grid code"),
    ("6201020", 422, "not a grid code"),
])
def test_bad_codes(client: TestClient, code: str, status: int, words: str) -> None:
    answer = client.get(f"/api/v1/grids/{code}/geometry")
    assert answer.status_code == status
    assert words in answer.json()["message"]


def test_a_bad_tolerance_is_a_422(client: TestClient) -> None:
    answer = client.get("/api/v1/grids/620102001/geometry", params={"simplify": 1})
    assert answer.status_code == 422 and "simplify" in answer.json()["message"]
