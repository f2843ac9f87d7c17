"""The database goes down under a running app: locate keeps answering, flagged; the rest says 503.

A second embedded cluster of its own (in a temporary folder) is stopped and started again, so
the shared test cluster is never touched; it is stopped and removed afterwards whatever happens.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token
from gis.fixture_load import load_fixtures
from gis.localdb import LocalCluster
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine, migrate

pytestmark = pytest.mark.slow
POINT = {"lon": "103.83", "lat": "36.06"}


class Outage:
    """A running app on its own cluster, and the means to stop and start that cluster."""

    def __init__(self, cluster: LocalCluster, client: TestClient, planner: str) -> None:
        self.cluster, self.client, self.planner = cluster, client, planner

    def wait_for(self, ready: bool, timeout_s: float = 20.0) -> httpx.Response:
        """Poll /readyz until it says ``ready`` (or fail)."""
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self.client.get("/readyz")
            if (answer.status_code == 200) == ready or time.monotonic() > deadline:
                return answer
            time.sleep(0.3)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory, fixture_dir: Path) -> Iterator[Outage]:
    cluster = LocalCluster.for_data_dir(tmp_path_factory.mktemp("outage"))
    try:
        cluster.start()
        cluster.ensure_database("minqing_outage")
        engine = create_engine(Database(cluster.url("minqing_outage"), cluster))
        migrate(engine)
        with engine.begin() as conn:
            load_fixtures(conn, fixture_dir)
            planner = issue_token(conn, "outage planner", "planner")
        engine.dispose()
        settings = Settings(db=DatabaseSettings(url=cluster.url("minqing_outage")))
        with TestClient(create_app(settings)) as client:
            yield Outage(cluster, client, planner)
    finally:
        cluster.stop()
        shutil.rmtree(cluster.pgdata.parent, ignore_errors=True)


def _is_503_with_retry(answer: httpx.Response, words: str) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "5"
    assert words in answer.json()["message"]
    assert answer.json()["request_id"] == answer.headers["x-request-id"]


def test_locate_answers_from_memory_while_the_database_is_down(outage: Outage) -> None:
    client = outage.client
    before = client.get("/api/v1/locate", params=POINT)
    assert before.status_code == 200 and before.json()["degraded"] is False
    assert "x-minqing-degraded" not in before.headers
    assert outage.wait_for(ready=True).json()["status"] == "ready"
    planner = {"Authorization": f"Bearer {outage.planner}"}
    unmasked = client.get("/api/v1/locate", params=POINT, headers=planner).json()
    assert unmasked["gridworker"]["phone_masked"] is False

    outage.cluster.stop()
    try:
        not_ready = outage.wait_for(ready=False)
        _is_503_with_retry(not_ready, "database unreachable")
        assert not_ready.json()["status"] == "not_ready"
        assert any("not listening for grid changes" in r for r in not_ready.json()["reasons"])

        during = client.get("/api/v1/locate", params=POINT)
        assert during.status_code == 200
        assert during.json()["degraded"] is True
        assert "database unavailable" in during.headers["x-minqing-degraded"]
        assert during.json()["small"] == before.json()["small"]
        # A token that cannot be checked gets what an anonymous caller gets: masked phones.
        with_token = client.get("/api/v1/locate", params=POINT, headers=planner).json()
        assert with_token["degraded"] is True and with_token["gridworker"]["phone_masked"]
        batch = client.post("/api/v1/locate/batch",
                            json={"points": [{"lon": 103.83, "lat": 36.06}]})
        assert batch.status_code == 200 and batch.json()["degraded"] is True
        assert batch.json()["results"][0]["small"] == before.json()["small"]["code"]
        assert batch.headers["x-minqing-degraded"]

        calls: list[Callable[[], httpx.Response]] = [
            lambda: client.get(f"/api/v1/grids/{before.json()['small']['code']}/history"),
            lambda: client.get("/api/v1/locate", params={**POINT, "at": "2026-06-01"}),
            lambda: client.get("/health"),
        ]
        for call in calls:
            _is_503_with_retry(call(), "the database is unavailable")
        _is_503_with_retry(client.get("/api/v1/grid-changes", headers=planner),
                           "token cannot be checked")
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "minqing_database_up 0.0" in metrics.text
        assert "minqing_events_unrouted -1.0" in metrics.text
    finally:
        outage.cluster.start()

    assert outage.wait_for(ready=True).status_code == 200
    after = client.get("/api/v1/locate", params=POINT)
    assert after.json()["degraded"] is False and "x-minqing-degraded" not in after.headers
    history = client.get(f"/api/v1/grids/{before.json()['small']['code']}/history")
    assert history.status_code == 200 and len(history.json()["versions"]) == 1
    assert client.get("/api/v1/grid-changes", headers=planner).status_code == 200
    assert "minqing_database_up 1.0" in client.get("/metrics").text
