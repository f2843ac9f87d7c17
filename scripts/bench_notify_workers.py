"""How long a grid commit takes to reach every worker of `minqing serve --workers N`.

Usage: python scripts/bench_notify_workers.py [--workers 2] [--rounds 5]

On a scratch database of the embedded cluster (loaded with the synthetic Lanzhou, dropped at the
end) it starts `minqing serve --workers N`, then commits new grid versions the way a boundary
commit ends (a grid_version row and NOTIFY grid_version in one transaction) and polls /readyz on
fresh connections until every worker process has answered with the new version. The time from
the commit to the last worker is reported per round. The geometry is unchanged, but each worker
rebuilds its whole index as it would after a real change, so the cost is the same.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_locate_http import ROOT, free_port

from gis.fixture_load import load_fixtures
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine, migrate, resolve_database, start_database

SCRATCH = "minqing_bench_notify"


def serve(port: int, workers: int, url: str) -> subprocess.Popen[bytes]:
    """`minqing serve --workers N` on the scratch database, waited for until ready."""
    env = {**os.environ, "MINQING_DB_URL": url}
    process = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "minqing"), "serve", "--port", str(port), "--workers",
         str(workers), "--no-load"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("minqing serve did not become ready")


def workers_at(port: int, version: int, workers: int, timeout_s: float) -> float:
    """Seconds until ``workers`` distinct processes answered /readyz with ``version``."""
    started = time.perf_counter()
    seen: set[int] = set()
    while len(seen) < workers:
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"only {len(seen)} worker(s) reached version {version}")
        try:
            with httpx.Client(timeout=10) as fresh:  # a new connection may reach another worker
                body = fresh.get(f"http://127.0.0.1:{port}/readyz").json()
        except httpx.HTTPError:
            continue
        if body.get("grid_version") == version:
            seen.add(int(body["worker"]))
    return time.perf_counter() - started


def main() -> None:
    """Run the rounds and print the times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fixtures", type=Path,
                        default=Path(os.environ.get("MINQING_FIXTURES_DIR",
                                                    ROOT / "fixtures" / "out")))
    args = parser.parse_args()
    home = resolve_database(DatabaseSettings())
    if home.cluster is None:
        raise SystemExit("this benchmark makes a scratch database on the embedded cluster")
    started_cluster = start_database(home, SCRATCH)
    home.cluster.drop_database(SCRATCH)
    home.cluster.ensure_database(SCRATCH)
    scratch = Database(home.cluster.url(SCRATCH), home.cluster)
    engine = create_engine(scratch)
    migrate(engine)
    with engine.begin() as conn:
        load_fixtures(conn, args.fixtures)
    port = free_port()
    process = serve(port, args.workers, scratch.url)
    times = []
    try:
        for _ in range(args.rounds):
            with engine.begin() as conn:
                version = int(conn.execute(sa.text(
                    """INSERT INTO grid_version (valid_from, author, reason)
                       VALUES (now(), 'bench', 'notify round') RETURNING id""")).scalar_one())
                conn.execute(sa.text("SELECT pg_notify('grid_version', :v)"), {"v": str(version)})
            committed = time.perf_counter()
            workers_at(port, version, args.workers, 120)
            times.append(time.perf_counter() - committed)
            print(f"version {version}: all {args.workers} workers answer it "
                  f"{times[-1]:.2f} s after the commit")
        print(f"median {statistics.median(times):.2f} s, max {max(times):.2f} s "
              f"over {len(times)} commits")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        engine.dispose()
        home.cluster.drop_database(SCRATCH)
        if started_cluster:
            home.cluster.stop()


if __name__ == "__main__":
    main()
