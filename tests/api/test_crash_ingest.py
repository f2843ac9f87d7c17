"""kill -9 the API while event batches are being stored, start it again, retry the cut batch:
every event is stored once, and the answer says which ones the service already had.

`minqing serve` runs as a subprocess on a scratch copy of the city (this module writes events).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from test_crash_restart import _free_port, _serve

from api.settings import Settings
from gis.auth import issue_token
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine

pytestmark = pytest.mark.slow

BATCH = 10_000


def _batch(number: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(number)
    lon, lat = rng.uniform(103.6, 103.95, BATCH), rng.uniform(36.03, 36.12, BATCH)
    return [{"source": "12345", "source_id": f"K{number}-{i}", "category": "环境卫生",
             "severity": 2, "reported_at": "2026-11-30T09:00:00+08:00",
             "lon": float(x), "lat": float(y)} for i, (x, y) in enumerate(zip(lon, lat,
                                                                                strict=True))]


@pytest.fixture
def city(grids_database: Database) -> Iterator[tuple[Settings, str]]:
    """Settings of a scratch city with no events yet, and an ingest token on it."""
    engine = create_engine(grids_database)
    with engine.begin() as conn:
        token = issue_token(conn, "crash ingest", "ingest")
    engine.dispose()
    yield Settings(db=DatabaseSettings(url=grids_database.url)), token


def _stored(settings: Settings, prefix: str) -> tuple[int, int]:
    engine = sa.create_engine(str(settings.db.url).replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(
                """SELECT count(*), count(DISTINCT source_id) FROM event
                   WHERE source = '12345' AND source_id LIKE :p"""), {"p": prefix + "%"}).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


def test_killed_mid_ingest_the_retried_batch_stores_each_event_once(
        city: tuple[Settings, str], tmp_path: Path) -> None:
    settings, token = city
    port, log = _free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/api/v1/events/batch"
    headers = {"Authorization": f"Bearer {token}"}
    started: list[subprocess.Popen[bytes]] = [_serve(port, settings, log)]
    answered: list[int] = []
    cut: list[tuple[int, Exception]] = []
    in_flight = threading.Event()

    def keep_sending() -> None:
        with httpx.Client(timeout=60) as session:  # one kept-alive connection
            number = 0
            while not cut:
                body = _batch(number)
                in_flight.set()
                try:
                    answer = session.post(url, json=body, headers=headers)
                    assert answer.status_code == 200, answer.text
                    answered.append(number)
                except httpx.TransportError as error:  # the service died under it
                    cut.append((number, error))
                in_flight.clear()
                number += 1

    sender = threading.Thread(target=keep_sending)
    sender.start()
    try:
        deadline = time.monotonic() + 120
        while not answered and time.monotonic() < deadline:
            time.sleep(0.01)
        assert answered, log.read_text()[-2000:]
        assert in_flight.wait(timeout=60)
        time.sleep(0.15)  # the next batch is being validated, routed or stored
        started[0].send_signal(signal.SIGKILL)
        started[0].wait(timeout=10)
        sender.join(timeout=60)
        assert cut and not isinstance(cut[0][1], httpx.ConnectError), cut
        lost_number = cut[0][0]
        prefix = f"K{lost_number}-"
        # A batch is one transaction: the kill left all of it or none of it.
        before, _ = _stored(settings, prefix)
        assert before in (0, BATCH)
        for number in answered:  # every answered batch is there, once
            assert _stored(settings, f"K{number}-") == (BATCH, BATCH)

        started.append(_serve(port, settings, log))
        retry = httpx.post(url, json=_batch(lost_number), headers=headers, timeout=60)
        assert retry.status_code == 200, retry.text
        result = retry.json()
        assert (result["created"], result["already_had"], result["rejected"]) == (
            BATCH - before, before, 0)
        assert _stored(settings, prefix) == (BATCH, BATCH)
        again = httpx.post(url, json=_batch(lost_number), headers=headers, timeout=60).json()
        assert (again["created"], again["already_had"]) == (0, BATCH)
    finally:
        cut.append((-1, RuntimeError("test over")))
        sender.join(timeout=60)
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
