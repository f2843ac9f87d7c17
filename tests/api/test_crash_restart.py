"""kill -9 the API while batches are in flight, start it again: it answers, and a retry is whole.

`minqing serve` runs as a subprocess on the shared test database (locate batches only read).
The answer to the retried batch is compared with the same batch answered in this process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.settings import Settings
from gis.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(port: int, settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MINQING_DB_URL": str(settings.db.url)}
    process = subprocess.Popen(
        [str(PROJECT_ROOT / ".venv" / "bin" / "minqing"), "serve", "--port", str(port),
         "--no-load"], cwd=PROJECT_ROOT, env=env, stdout=log.open("ab"),
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError("minqing serve did not become ready within 120 s")


@pytest.fixture
def batch() -> dict[str, Any]:
    rng = np.random.default_rng(8)
    lon = rng.uniform(103.55, 104.0, 10_000)
    lat = rng.uniform(36.0, 36.15, 10_000)
    return {"points": [{"id": f"p{i}", "lon": float(x), "lat": float(y)}
                       for i, (x, y) in enumerate(zip(lon, lat, strict=True))]}


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The service processes a test starts; any still running afterwards is killed."""
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_killed_mid_batch_restarts_and_the_retry_is_answered_whole(
        started: list[subprocess.Popen[bytes]], tmp_path: Path, app_settings: Settings,
        client: TestClient, batch: dict[str, Any]) -> None:
    port, log = _free_port(), tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}/api/v1/locate/batch"
    process = _serve(port, app_settings, log)
    started.append(process)
    cut: list[Exception] = []
    answered: list[int] = []

    in_flight = threading.Event()

    def keep_sending() -> None:
        with httpx.Client(timeout=30) as session:  # one kept-alive connection
            while not cut:
                in_flight.set()
                try:
                    answered.append(session.post(url, json=batch).status_code)
                except httpx.TransportError as error:  # the connection died under it
                    cut.append(error)
                in_flight.clear()

    sender = threading.Thread(target=keep_sending)
    sender.start()
    deadline = time.monotonic() + 60
    while not answered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert in_flight.wait(timeout=30)
    time.sleep(0.03)  # the next batch is on its way or being answered
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    sender.join(timeout=30)
    # Cut mid-answer (the server vanished under a sent request), not refused at connect.
    assert cut and not isinstance(cut[0], httpx.ConnectError), cut
    assert answered and set(answered) == {200}

    restarted = _serve(port, app_settings, log)
    started.append(restarted)
    try:
        retry = httpx.post(url, json=batch, timeout=30)
        assert retry.status_code == 200
        expected = client.post("/api/v1/locate/batch", json=batch).json()
        got = retry.json()
        assert got["count"] == 10_000
        assert got["located"] == expected["located"]
        assert got["results"] == expected["results"]
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
