"""Benchmark of OGC API items pages of the small grids: /ogc (pygeoapi) against plain baselines.

Usage: python scripts/bench_ogc.py [--requests N] [--tipg /path/to/venv] [--profile]

Starts `minqing serve` (embedded PostGIS, synthetic Lanzhou) on a free port, and in the same run
a plain FastAPI app on the same view (`ogc_grid_small`: PostGIS builds the GeoJSON page with
json_agg / ST_AsGeoJSON and the app passes the bytes on) and, with --tipg, TiPg from its own
virtual environment on the same view. Each answers items pages of limit 100 and 1000 at
offsets spread over the 7507 grids: p50 / p95 latency (1 client) and requests per second
(1 and 4 clients). --profile runs pygeoapi's items call in this process under cProfile and prints
where a 1000-grid page goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_locate_http import free_port, start_service  # noqa: E402

from api.ogc.geojson import COORDINATE_DECIMALS  # noqa: E402

# The page is cut first, then encoded: the JSON of skipped rows is never built. Coordinates
# have the decimals /ogc serves.
BASELINE_SQL = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f), '[]'),
                         'numberReturned', count(*))::text
FROM (SELECT json_build_object('type', 'Feature', 'id', code,
                               'geometry', ST_AsGeoJSON(geom, :decimals)::json,
                               'properties', to_jsonb(v) - 'geom') AS f
      FROM (SELECT * FROM ogc_grid_small ORDER BY code LIMIT :limit OFFSET :offset) v) s
"""


def baseline_app() -> object:
    """A plain FastAPI app answering one GeoJSON page of the view, built by PostGIS."""
    import sqlalchemy as sa
    from fastapi import FastAPI, Response

    from api.settings import Settings
    from gis.store import create_engine, resolve_database

    engine = create_engine(resolve_database(Settings().db))
    app = FastAPI()

    @app.get("/items")
    def items(limit: int = 10, offset: int = 0) -> Response:
        with engine.connect() as conn:
            body = conn.execute(sa.text(BASELINE_SQL), {"limit": limit, "offset": offset,
                                                      "decimals": COORDINATE_DECIMALS})
            return Response(body.scalar_one(), media_type="application/geo+json")

    return app


def asyncpg_url() -> str:
    """The service's database as a URL TiPg accepts (a socket folder as a quoted host)."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    from api.settings import Settings
    from gis.store import resolve_database

    url = make_url(resolve_database(Settings().db).url)
    host = str(url.query.get("host") or url.host or "localhost")
    auth = quote(url.username or "postgres") + (f":{quote(url.password)}" if url.password else "")
    return f"postgresql://{auth}@{quote(host, safe='')}:{url.port or 5432}/{url.database}"


def start_process(argv: list[str], url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A server process, waited for until ``url`` answers 200."""
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{argv[0]} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit(f"{url} did not answer within 120 s")


def measure(url: Callable[[int, int], str], limit: int, requests: int,
            clients: int) -> tuple[float, float, float]:
    """p50 and p95 in ms (as seen by one of the clients) and requests per second."""
    offsets = [(i * 997) % (7507 - limit) for i in range(requests)]
    latencies: list[float] = []

    def run(share: list[int]) -> None:
        with httpx.Client(timeout=60) as client:
            for offset in share:
                started = time.perf_counter()
                answer = client.get(url(limit, offset))
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200 or answer.json()["numberReturned"] != limit:
                    raise SystemExit(f"bad answer from {url(limit, offset)}")

    run(offsets[:2])  # warm the pools and caches
    latencies.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, [offsets[i::clients] for i in range(clients)]))
    elapsed = time.perf_counter() - started
    values = np.array(latencies) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95)), requests / elapsed


def profile_pygeoapi(base: str) -> None:
    """cProfile of pygeoapi's items call for a 1000-grid page, in this process."""
    from pygeoapi.api import APIRequest
    from pygeoapi.api.itemtypes import get_collection_items
    from starlette.requests import Request

    from api.ogc.mount import build_api
    from api.settings import Settings
    from gis.store import create_engine, resolve_database

    settings = Settings()
    database = resolve_database(settings.db)
    api = build_api(settings, database, create_engine(database))
    scope = {"type": "http", "method": "GET", "path": "/ogc/collections/grids-small/items",
             "query_string": b"limit=1000&offset=3000", "headers": [], "root_path": ""}
    request = APIRequest(Request(scope), api.locales)
    get_collection_items(api, request, "grids-small")
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(5):
        get_collection_items(api, request, "grids-small")
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    print("\npygeoapi items, limit 1000, 5 calls, by own time:")
    print("\n".join(out.getvalue().splitlines()[:40]))


def main() -> None:
    """Run the benchmark and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--tipg", type=Path,
                        help="a virtual environment with tipg installed (pip install tipg)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        import uvicorn

        uvicorn.run(baseline_app(), host="127.0.0.1", port=args.baseline_server,  # type: ignore[arg-type]
                    log_level="warning")
        return

    port, base_port = free_port(), free_port()
    service = start_service(port, 1)
    processes = [service]
    try:
        env = os.environ.copy()
        processes.append(start_process(
            [sys.executable, __file__, "--baseline-server", str(base_port)],
            f"http://127.0.0.1:{base_port}/items?limit=1", env))
        targets: dict[str, Callable[[int, int], str]] = {
            "plain FastAPI + PostGIS json_agg": lambda n, o: (
                f"http://127.0.0.1:{base_port}/items?limit={n}&offset={o}"),
            "/ogc (pygeoapi 0.24)": lambda n, o: (
                f"http://127.0.0.1:{port}/ogc/collections/grids-small/items?limit={n}"
                f"&offset={o}&f=json"),
        }
        if args.tipg:
            tipg_port = free_port()
            url = asyncpg_url()
            processes.append(start_process(
                [str(args.tipg / "bin" / "uvicorn"), "tipg.main:app", "--port", str(tipg_port),
                 "--log-level", "warning"],
                f"http://127.0.0.1:{tipg_port}/collections",
                {**env, "DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["public"]',
                 "TIPG_MAX_FEATURES_PER_QUERY": "10000"}))
            targets["TiPg"] = lambda n, o: (
                f"http://127.0.0.1:{tipg_port}/collections/public.ogc_grid_small/items"
                f"?limit={n}&offset={o}&f=geojson")
        print(f"{'service':36} {'limit':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s c=1':>10}"
              f" {'req/s c=4':>10} {'vs plain':>9}")
        plain: dict[int, float] = {}
        for name, url_of in targets.items():
            for limit in (100, 1000):
                requests = args.requests * (3 if limit == 100 else 1)
                p50, p95, rate1 = measure(url_of, limit, requests, 1)
                _, _, rate4 = measure(url_of, limit, requests, 4)
                if name.startswith("plain"):
                    plain[limit] = p50
                ratio = f"{p50 / plain[limit]:.2f}x" if limit in plain else ""
                print(f"{name:36} {limit:5} {p50:8.1f} {p95:8.1f} {rate1:10.1f} {rate4:10.1f}"
                      f" {ratio:>9}", flush=True)
        if args.profile:
            profile_pygeoapi(f"http://127.0.0.1:{port}/ogc")
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
