"""Benchmark of the vector tiles against pygeoapi's MVT-postgresql provider and TiPg, same run.

Usage: python scripts/bench_tiles.py [--per-zoom N] [--rounds R] [--peer-budget S] [--no-tipg]

Sets up its own database on the embedded cluster (the synthetic city, colours drawn from the
codes, heat counted from the fixture events), then asks for a fixed list of tiles at z9-z15 over
the urban valley (103.55-104.0 E, 36.0-36.15 N; up to N tiles per zoom, evenly spread), for each
layer:
- ours over HTTP (`uvicorn`, one worker): uncached (cache off), then cached (warmed);
- ours in-process (the tile SQL alone, no HTTP), the like-for-like peer of pygeoapi's provider;
- pygeoapi's MVT-postgresql provider in-process (`get_tiles`), on views of the same tables;
- TiPg over HTTP (installed into a separate venv, `--tipg-venv`), on the same views.
One client, one request at a time, keep-alive: p50 / p95 latency and requests per second.
Peers that take seconds a tile get a time budget per layer (`--peer-budget`) instead of rounds.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import http.client
import math
import os
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gis.fixture_load import load_fixtures  # noqa: E402
from gis.settings import DatabaseSettings, FixtureSettings  # noqa: E402
from gis.store import Database, create_engine, migrate, resolve_database  # noqa: E402
from tiles.address import TileAddress  # noqa: E402
from tiles.queries import render_tile  # noqa: E402

BENCH_DB = "minqing_bench_tiles"
VALLEY = (103.55, 36.0, 104.0, 36.15)
LAYERS = ("large", "medium", "small", "heat")


def tiles_over_valley(per_zoom: int) -> list[tuple[int, int, int]]:
    """Up to ``per_zoom`` tiles per zoom 9-15 covering the urban valley, evenly spread."""
    def column(lon: float, z: int) -> int:
        return int((lon + 180) / 360 * 2 ** z)

    def row(lat: float, z: int) -> int:
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2 ** z)

    chosen = []
    for z in range(9, 16):
        every = [(z, x, y) for x in range(column(VALLEY[0], z), column(VALLEY[2], z) + 1)
                 for y in range(row(VALLEY[3], z), row(VALLEY[1], z) + 1)]
        picks = np.linspace(0, len(every) - 1, min(per_zoom, len(every))).round().astype(int)
        chosen += [every[i] for i in sorted(set(picks.tolist()))]
    return chosen


def prepare(database: Database, fixtures: Path) -> None:
    """The city, colours and heat, and the peers' views of the same tables."""
    engine = create_engine(database)
    migrate(engine)
    with engine.begin() as conn:
        load_fixtures(conn, fixtures)
        conn.execute(sa.text("TRUNCATE grid_colour, grid_heat"))
        # Colours spread like a real map (mostly blue), drawn from the codes: deterministic.
        conn.execute(sa.text(
            """INSERT INTO grid_colour (code, level, colour, score, open_events)
               SELECT code, level, CASE WHEN h % 20 = 0 THEN 'red' WHEN h % 7 = 0 THEN 'yellow'
                                        ELSE 'blue' END, (h % 100) / 4.0, h % 9
               FROM (SELECT code, level, abs(hashtext(code)) AS h FROM grid
                     WHERE version_high IS NULL) g"""))
        with (fixtures / "events.csv").open(encoding="utf-8", newline="") as handle:
            events = [(r["expected_code"], r["category"], dt.datetime.fromisoformat(
                r["reported_at"])) for r in csv.DictReader(handle) if r["expected_code"]]
        end = max(e[2] for e in events)
        counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for code, category, at in events:
            age = end - at
            if age <= dt.timedelta(days=30):
                counts[(code, category)][1] += 1
                if age <= dt.timedelta(days=7):
                    counts[(code, category)][0] += 1
        conn.execute(sa.text("INSERT INTO grid_heat VALUES (:c, :k, :d7, :d30)"),
                     [{"c": c, "k": k, "d7": v[0], "d30": v[1]} for (c, k), v in counts.items()])
        conn.execute(sa.text("UPDATE layer_state SET layer_version = layer_version + 1"))
        for level in ("large", "medium", "small"):
            conn.execute(sa.text(
                f"""CREATE OR REPLACE VIEW bench_{level} AS
                    SELECT g.id, g.code, g.name, g.level, g.kind, d.name AS district,
                           COALESCE(c.colour, 'blue') AS colour,
                           COALESCE(c.score, 0) AS score,
                           COALESCE(c.open_events, 0) AS open_events, g.geom
                    FROM grid g JOIN district d ON d.code = g.district_code
                    LEFT JOIN grid_colour c ON c.code = g.code
                    WHERE g.version_high IS NULL AND g.level = '{level}'"""))
        # Peers cannot read our anchor table (EPSG:3857): the same points, stored in 4326.
        conn.execute(sa.text(
            """DROP TABLE IF EXISTS bench_heat;
               CREATE TABLE bench_heat AS
               SELECT g.id, g.code, h.events_7d, h.events_30d,
                      ST_PointOnSurface(g.geom)::geometry(Point, 4326) AS geom
               FROM grid g JOIN (SELECT code, sum(events_7d)::int AS events_7d,
                                        sum(events_30d)::int AS events_30d
                                 FROM grid_heat GROUP BY code) h ON h.code = g.code
               WHERE g.version_high IS NULL AND h.events_30d > 0;
               ALTER TABLE bench_heat ADD PRIMARY KEY (id);
               CREATE INDEX bench_heat_geom ON bench_heat USING gist (geom);
               ANALYZE"""))
    engine.dispose()


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(command: list[str], env: dict[str, str], port: int, probe: str) -> subprocess.Popen[
        bytes]:
    """Start a server and wait until ``probe`` answers."""
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{command[0]} exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", probe)
            if conn.getresponse().status < 500:
                return process
        except OSError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{command} did not answer within 180 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by ``serve``."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def http_fetcher(port: int) -> Callable[[str], int]:
    """A keep-alive GET returning the body size (the client's own cost kept small)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def fetch(path: str) -> int:
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        if answer.status not in (200, 204):
            raise SystemExit(f"GET {path}: {answer.status} {body[:200]!r}")
        return len(body)
    return fetch


def measure(fetch: Callable[[Any], int], items: list[Any], rounds: int,
            budget_s: float | None = None) -> dict[str, float]:
    """p50 / p95 ms and req/s over ``rounds`` passes (or until ``budget_s`` runs out)."""
    latencies, sizes = [], []
    started = time.perf_counter()
    for _ in range(rounds):
        for item in items:
            t = time.perf_counter()
            sizes.append(fetch(item))
            latencies.append(time.perf_counter() - t)
            if budget_s is not None and time.perf_counter() - started > budget_s:
                break
        else:
            continue
        break
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "rps": len(ms) / elapsed,
            "kb": float(np.mean(sizes)) / 1024}


def interleave(tiles: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """The tiles in an order that visits every zoom early, deepest (cheapest) first.

    A time-budgeted peer thus spends its budget on the tiles it answers fastest: the figures
    favour the peer, never us.
    """
    by_zoom: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for t in tiles:
        by_zoom[t[0]].append(t)
    order = []
    while any(by_zoom.values()):
        for z in sorted(by_zoom, reverse=True):
            if by_zoom[z]:
                order.append(by_zoom[z].pop(0))
    return order


def ours_http(database: Database, tiles: list[tuple[int, int, int]], rounds: int,
              cached: bool) -> dict[str, dict[str, float]]:
    """Our endpoint over HTTP, cache off or warmed."""
    port = free_port()
    code = ("import uvicorn; from api.app import create_app; "
            f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')")
    env = {"MINQING_DB_URL": database.url, "MINQING_TILES_CACHE_MB": "512" if cached else "0",
           "MINQING_TILES_CACHE_MAX_TILE_KB": "4096", "MINQING_TILES_LAYER_RECHECK_S": "600"}
    process = serve([sys.executable, "-c", code], env, port, "/tiles/large/0/0/0.pbf")
    try:
        fetch = http_fetcher(port)
        results = {}
        for layer in LAYERS:
            paths = [f"/tiles/{layer}/{z}/{x}/{y}.pbf" for z, x, y in tiles]
            if cached:
                measure(fetch, paths, 1)
            results[layer] = measure(fetch, paths, rounds * (10 if cached else 1))
        return results
    finally:
        stop(process)


def ours_in_process(database: Database, tiles: list[tuple[int, int, int]], rounds: int
                    ) -> dict[str, dict[str, float]]:
    """The tile SQL alone, on one connection (what a provider call is)."""
    engine = create_engine(database)
    results = {}
    with engine.connect() as conn:
        for layer in LAYERS:
            results[layer] = measure(
                lambda t, layer=layer: len(render_tile(conn, TileAddress(layer, *t))),
                tiles, rounds)
    engine.dispose()
    return results


def pygeoapi_in_process(database: Database, tiles: list[tuple[int, int, int]], rounds: int,
                        budget_s: float) -> dict[str, dict[str, float]]:
    """pygeoapi's MVT-postgresql provider, called as its tile route calls it."""
    from pygeoapi.provider.mvt_postgresql import MVTPostgreSQLProvider
    from pygeoapi.provider.tile import ProviderTileNotFoundError

    results = {}
    for layer in LAYERS:
        provider = MVTPostgreSQLProvider({
            "name": "MVT-postgresql", "type": "tile", "data": database.url,
            "id_field": "id", "table": f"bench_{layer}", "geom_field": "geom",
            "options": {"zoom": {"min": 0, "max": 22}},
            "format": {"name": "pbf", "mimetype": "application/vnd.mapbox-vector-tile"}})

        def fetch(t: tuple[int, int, int], provider: Any = provider, layer: str = layer) -> int:
            z, x, y = t
            try:
                tile = provider.get_tiles(layer=layer, tileset="WebMercatorQuad", z=z, y=y, x=x,
                                          format_="mvt")
            except ProviderTileNotFoundError:
                return 0
            return len(tile or b"")
        results[layer] = measure(fetch, interleave(tiles), rounds, budget_s)
    return results


def tipg_http(database: Database, tiles: list[tuple[int, int, int]], rounds: int,
              venv: Path, budget_s: float) -> dict[str, dict[str, float]] | None:
    """TiPg over HTTP on the same views (None when it is not installed)."""
    uvicorn = venv / "bin" / "uvicorn"
    if not uvicorn.exists():
        print(f"TiPg skipped: no {uvicorn} (python -m venv {venv} && "
              f"{venv}/bin/pip install tipg uvicorn)")
        return None
    port = free_port()
    url = database.url.replace("postgresql+psycopg://", "postgresql://")
    if database.cluster is not None:  # TiPg's URL check wants a host: the socket, escaped
        socket_dir = quote(str(database.cluster.socket_dir), safe="")
        url = f"postgresql://postgres@{socket_dir}:{database.cluster.port}/{BENCH_DB}"
    env = {"DATABASE_URL": url, "TIPG_DB_SCHEMAS": '["public"]'}
    process = serve([str(uvicorn), "tipg.main:app", "--port", str(port), "--log-level",
                     "warning"], env, port, "/collections")
    try:
        fetch = http_fetcher(port)
        results = {}
        for layer in LAYERS:
            paths = [f"/collections/public.bench_{layer}/tiles/WebMercatorQuad/{z}/{x}/{y}"
                     for z, x, y in interleave(tiles)]
            results[layer] = measure(fetch, paths, rounds, budget_s)
        return results
    finally:
        stop(process)


def main() -> None:
    """Run every peer on the same tiles and print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-zoom", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--peer-budget", type=float, default=40.0,
                        help="seconds per layer for a slow peer")
    parser.add_argument("--tipg-venv", type=Path, default=Path("/tmp/tipgvenv"))
    parser.add_argument("--no-tipg", action="store_true")
    args = parser.parse_args()

    settings = DatabaseSettings(name=BENCH_DB)
    database = resolve_database(settings)
    started = False
    if database.cluster is not None:
        started = database.cluster.start()
        database.cluster.drop_database(BENCH_DB)
        database.cluster.ensure_database(BENCH_DB)
    print("preparing the city, colours and heat ...", flush=True)
    prepare(database, FixtureSettings().dir)
    tiles = tiles_over_valley(args.per_zoom)
    zooms = {z: sum(1 for t in tiles if t[0] == z) for z in range(9, 16)}
    print(f"{len(tiles)} tiles: " + ", ".join(f"z{z} {n}" for z, n in zooms.items()), flush=True)

    rows: list[tuple[str, str, dict[str, float]]] = []
    runs: list[tuple[str, Callable[[], dict[str, dict[str, float]] | None]]] = [
        ("ours HTTP, uncached", lambda: ours_http(database, tiles, args.rounds, cached=False)),
        ("ours HTTP, cached", lambda: ours_http(database, tiles, args.rounds, cached=True)),
        ("ours in-process SQL", lambda: ours_in_process(database, tiles, args.rounds)),
        ("pygeoapi MVT-postgresql (in-process)",
         lambda: pygeoapi_in_process(database, tiles, 1, args.peer_budget)),
    ]
    if not args.no_tipg:
        runs.append(("TiPg 1.6 HTTP", lambda: tipg_http(database, tiles, 1, args.tipg_venv,
                                                         args.peer_budget)))
    for name, run in runs:
        print(f"running {name} ...", flush=True)
        found = run()
        for layer, figures in (found or {}).items():
            rows.append((name, layer, figures))

    print("\n| server | layer | tiles | p50 ms | p95 ms | req/s | mean KiB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, layer, f in sorted(rows, key=lambda r: (LAYERS.index(r[1]), r[0])):
        print(f"| {name} | {layer} | {f['n']:.0f} | {f['p50']:.2f} | {f['p95']:.2f} | "
              f"{f['rps']:.0f} | {f['kb']:.1f} |")
    if database.cluster is not None:
        database.cluster.drop_database(BENCH_DB)
        if started:
            database.cluster.stop()


if __name__ == "__main__":
    main()
