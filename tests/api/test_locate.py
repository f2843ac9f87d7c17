"""GET /api/v1/locate and POST /api/v1/locate/batch against the loaded synthetic city."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis.auth import issue_token
from gis.coords import wgs84_to_bd09, wgs84_to_gcj02


def _probes(fixture_dir: Path) -> list[dict[str, str]]:
    with (fixture_dir / "probes.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def probes(fixture_dir: Path) -> list[dict[str, str]]:
    return _probes(fixture_dir)


def test_every_probe_gets_its_expected_owner_by_batch(
    client: TestClient, probes: list[dict[str, str]]
) -> None:
    for start in range(0, len(probes), 10_000):
        chunk = probes[start:start + 10_000]
        body = {"points": [{"id": p["probe_id"], "lon": float(p["lon"]), "lat": float(p["lat"])}
                           for p in chunk]}
        answer = client.post("/api/v1/locate/batch", json=body).json()
        assert answer["count"] == len(chunk)
        for probe, result in zip(chunk, answer["results"], strict=True):
            assert result["id"] == probe["probe_id"]
            if probe["expected_code"]:
                assert result.get("small") == probe["expected_code"], probe
            else:
                assert result["error"] == "outside every grid", probe
                assert result["nearest"]["code"] == probe["nearest_code"], probe


def test_probe_kinds_cover_edges_vertices_and_outside(probes: list[dict[str, str]]) -> None:
    kinds = {p["kind"] for p in probes}
    assert {"interior", "edge", "vertex", "dedicated", "outside"} <= kinds


def test_locate_one_edge_probe_in_detail(client: TestClient,
                                         probes: list[dict[str, str]]) -> None:
    probe = next(p for p in probes if p["kind"] == "edge")
    covering = probe["covering_codes"].split(";")
    assert len(covering) >= 2 and probe["expected_code"] == min(covering)
    body = client.get("/api/v1/locate", params={"lon": probe["lon"], "lat": probe["lat"],
                                                "accuracy": 10}).json()
    code = probe["expected_code"]
    assert body["small"]["code"] == code
    assert body["medium"]["code"] == code[:12]
    assert body["large"]["code"] == code[:9]
    assert body["district"]["code"] == code[:6]
    assert body["distance_to_edge_m"] == 0.0
    assert body["ambiguous"] is True
    assert sorted(c["code"] for c in body["candidates"]) == sorted(set(covering) - {code})
    assert body["grid_version"] == 1


def test_interior_point_is_not_ambiguous_without_accuracy(
    client: TestClient, probes: list[dict[str, str]]
) -> None:
    probe = next(p for p in probes if p["kind"] == "interior")
    body = client.get("/api/v1/locate", params={"lon": probe["lon"], "lat": probe["lat"]}).json()
    assert body["small"]["code"] == probe["expected_code"]
    assert body["ambiguous"] is False and body["candidates"] == []
    assert body["distance_to_edge_m"] > 0


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_shifted_inputs_land_on_the_same_grids(
    client: TestClient, probes: list[dict[str, str]], crs: str
) -> None:
    interior = [p for p in probes if p["kind"] in ("interior", "dedicated")][:500]
    lon = np.array([float(p["lon"]) for p in interior])
    lat = np.array([float(p["lat"]) for p in interior])
    x, y = wgs84_to_gcj02(lon, lat) if crs == "gcj02" else wgs84_to_bd09(lon, lat)
    body = {"crs": crs, "points": [{"lon": a, "lat": b} for a, b in zip(x, y, strict=True)]}
    answer = client.post("/api/v1/locate/batch", json=body).json()
    assert [r.get("small") for r in answer["results"]] == [p["expected_code"] for p in interior]
    one = client.get("/api/v1/locate", params={"lon": x[0], "lat": y[0], "crs": crs}).json()
    assert one["small"]["code"] == interior[0]["expected_code"]
    assert math.isclose(one["wgs84"]["lon"], lon[0], abs_tol=1e-7)


def test_outside_answers_404_with_the_nearest_grid(
    client: TestClient, probes: list[dict[str, str]]
) -> None:
    probe = next(p for p in probes if p["kind"] == "outside")
    answer = client.get("/api/v1/locate", params={"lon": probe["lon"], "lat": probe["lat"]})
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == "outside_every_grid"
    assert body["details"]["nearest"]["code"] == probe["nearest_code"]
    assert math.isclose(body["details"]["distance_m"], float(probe["nearest_m"]), rel_tol=0.01,
                        abs_tol=1.0)


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"lon": "abc", "lat": "36.06"}, 422, "lon is not a number"),
        ({"lon": "103.8", "lat": "nan"}, 422, "NaN"),
        ({"lon": "inf", "lat": "36.06"}, 422, "infinite"),
        ({"lon": "203.8", "lat": "36.06"}, 422, "out of range"),
        ({"lon": "103.8", "lat": "-96.06"}, 422, "out of range"),
        ({"lon": "0", "lat": "0"}, 422, "null island"),
        ({"lon": "36.06", "lat": "103.8"}, 422, "looks swapped"),
        ({"lon": "103.8", "lat": "36.06", "crs": "epsg:3857"}, 422, "crs"),
        ({"lon": "103.8", "lat": "36.06", "accuracy": "-5"}, 422, "accuracy"),
        ({"lat": "36.06"}, 422, "lon"),
    ],
)
def test_bad_input_gets_a_clear_4xx(client: TestClient, params: dict[str, str], status: int,
                                    words: str) -> None:
    answer = client.get("/api/v1/locate", params=params)
    assert answer.status_code == status
    assert words in answer.json()["message"]


def test_batch_reports_bad_rows_and_refuses_oversize(client: TestClient) -> None:
    body = {"points": [{"id": "a", "lon": "x", "lat": 36.0},
                       {"id": "b", "lon": 36.06, "lat": 103.8},
                       {"id": "c", "lon": 0, "lat": 0}]}
    results = client.post("/api/v1/locate/batch", json=body).json()["results"]
    assert "not a number" in results[0]["error"]
    assert "looks swapped" in results[1]["error"]
    assert "null island" in results[2]["error"]
    too_many = {"points": [{"lon": 103.8, "lat": 36.06}] * 10_001}
    assert client.post("/api/v1/locate/batch", json=too_many).status_code == 413
    unknown = client.post("/api/v1/locate/batch", json={"crs": "utm", "points": []})
    assert unknown.status_code == 422


def test_geojson_batch(client: TestClient, probes: list[dict[str, str]]) -> None:
    inside = [p for p in probes if p["kind"] == "interior"][:3]
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": p["probe_id"], "properties": {},
         "geometry": {"type": "Point", "coordinates": [float(p["lon"]), float(p["lat"])]}}
        for p in inside]}
    answer = client.post("/api/v1/locate/batch", json=collection).json()
    assert [r["small"] for r in answer["results"]] == [p["expected_code"] for p in inside]


def test_gridworker_phone_is_masked_unless_the_caller_may_see_it(
    client: TestClient, engine: sa.Engine, probes: list[dict[str, str]]
) -> None:
    probe = next(p for p in probes if p["kind"] == "interior")
    params = {"lon": probe["lon"], "lat": probe["lat"]}
    with engine.begin() as conn:
        viewer = issue_token(conn, "command-centre-test", "viewer")
        ingest = issue_token(conn, "hotline-test", "ingest")
        phone = conn.execute(sa.text("SELECT phone FROM gridworker WHERE grid_code = :c"),
                             {"c": probe["expected_code"]}).scalar_one()
    public = client.get("/api/v1/locate", params=params).json()["gridworker"]
    assert public["phone"] == phone[:3] + "****" + phone[-4:] and public["phone_masked"]
    machine = client.get("/api/v1/locate", params=params,
                         headers={"Authorization": f"Bearer {ingest}"}).json()["gridworker"]
    assert machine["phone_masked"] is True
    staff = client.get("/api/v1/locate", params=params,
                       headers={"Authorization": f"Bearer {viewer}"}).json()["gridworker"]
    assert staff["phone"] == phone and staff["phone_masked"] is False
    wrong = client.get("/api/v1/locate", params=params,
                       headers={"Authorization": "Bearer mq_not-a-token"})
    assert wrong.status_code == 401
