"""The README's run command serves the synthetic city, twice, and stops its database cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from gis.localdb import LocalCluster
from gis.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_health(url: str, process: subprocess.Popen[bytes], seconds: float) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"scripts/run exited early with {process.returncode}")
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200:
                return answer.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def _run_once(env: dict[str, str], port: int, log: Path) -> tuple[dict, dict]:
    with log.open("ab") as out:
        process = subprocess.Popen([str(PROJECT_ROOT / "scripts" / "run")], cwd=PROJECT_ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            health = _wait_for_health(f"http://127.0.0.1:{port}/health", process, 300)
            summary = httpx.get(f"http://127.0.0.1:{port}/api/v1/layers/summary", timeout=10)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    return health, summary.json()


def test_scripts_run_twice_serves_the_city_and_stops_its_database(
    tmp_path: Path, fixture_dir: Path
) -> None:
    port = _free_port()
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "MINQING_DB_DATA_DIR": str(data_dir),
        "MINQING_API_PORT": str(port),
        "MINQING_FIXTURES_DIR": str(fixture_dir),
    }
    env.pop("MINQING_DB_URL", None)
    cluster = LocalCluster.for_data_dir(data_dir)
    log = tmp_path / "run.log"
    try:
        versions = []
        for attempt in (1, 2):
            health, layers = _run_once(env, port, log)
            # Colours from the start: every grid computed once, not again on the second start.
            assert {level: sum(c[k] for k in ("red", "yellow", "blue"))
                    for level, c in layers["totals"].items()} == health["grids"], attempt
            assert layers["computed_as_of"] is not None
            versions.append(layers["layer_version"])
            assert health["grids"] == {"large": 110, "medium": 1086, "small": 7507}, attempt
            assert health["database"]["embedded"] is True
            assert health["grid_version"] == 1, "a second start must not load the city again"
            assert not cluster.running(), "stopping the service must stop its database"
            assert not (cluster.pgdata / "postmaster.pid").exists()
        assert versions == [1, 1]
    finally:
        cluster.stop()
