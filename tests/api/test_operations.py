"""Request ids, body limits, CORS and metrics: what operators and other systems rely on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings, Settings


@pytest.fixture(scope="module")
def strict_client(app_settings: Settings) -> Iterator[TestClient]:
    """The app with a 1 MiB body limit and one allowed browser origin."""
    settings = Settings(api=ApiSettings(max_body_mb=1, cors_origins=["http://map.example"]),
                        db=app_settings.db)
    with TestClient(create_app(settings)) as client:
        yield client


def test_request_id_is_echoed_and_named_in_error_answers(client: TestClient) -> None:
    answer = client.get("/api/v1/locate", params={"lon": "x", "lat": "36"},
                        headers={"X-Request-ID": "rq-12345"})
    assert answer.status_code == 422
    assert answer.headers["x-request-id"] == "rq-12345"
    assert answer.json()["request_id"] == "rq-12345"
    fresh = client.get("/api/v1/locate", params={"lon": 103.83, "lat": 36.06})
    assert len(fresh.headers["x-request-id"]) == 16


def test_bodies_over_the_limit_are_refused_with_413(strict_client: TestClient) -> None:
    big = b"[" + b"0," * (600 * 1024) + b"0]"
    declared = strict_client.post("/api/v1/locate/batch", content=big,
                                  headers={"Content-Type": "application/json"})
    assert declared.status_code == 413
    assert "1 MiB" in declared.json()["message"]

    def chunks() -> Iterator[bytes]:
        yield b'{"points": ['
        for _ in range(200):
            yield b'{"lon": 103.83, "lat": 36.06},' * 200
        yield b'{"lon": 103.83, "lat": 36.06}]}'

    streamed = strict_client.post("/api/v1/locate/batch", content=chunks(),
                                  headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "too_large"


def test_cors_allows_only_configured_origins(strict_client: TestClient) -> None:
    preflight = {"Access-Control-Request-Method": "GET"}
    allowed = strict_client.options("/api/v1/locate",
                                    headers={**preflight, "Origin": "http://map.example"})
    assert allowed.headers.get("access-control-allow-origin") == "http://map.example"
    other = strict_client.options("/api/v1/locate",
                                  headers={**preflight, "Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_metrics_count_requests_by_route_and_show_the_router(client: TestClient) -> None:
    for _ in range(3):
        assert client.get("/api/v1/locate", params={"lon": 103.83, "lat": 36.06}
                          ).status_code == 200
    text = client.get("/metrics").text
    line = next(x for x in text.splitlines() if x.startswith(
        'minqing_http_requests_total{method="GET",route="/api/v1/locate",status="200"}'))
    before = float(line.split()[-1])
    client.get("/api/v1/locate", params={"lon": 103.83, "lat": 36.06})
    after = next(x for x in client.get("/metrics").text.splitlines() if x.startswith(
        'minqing_http_requests_total{method="GET",route="/api/v1/locate",status="200"}'))
    assert float(after.split()[-1]) == before + 1
    assert "minqing_router_grid_version 1.0" in text
    assert "minqing_router_rebuilds 1.0" in text
    assert 'minqing_http_request_seconds_bucket{le="0.005",route="/api/v1/locate"}' in text
