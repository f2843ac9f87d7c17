"""Benchmark of event ingest: the domain batch path and the CSV import, against a plain COPY.

Usage: python scripts/bench_events.py [--events 2400000] [--batch 10000]

Uses its own database (``minqing_bench_events``) on the embedded cluster (or MINQING_DB_URL)
with the synthetic Lanzhou's grids. N synthetic events are drawn from the fixture's event
positions (jittered by ~50 m, 6 % given in GCJ-02), with the fixture's mix of sources and
categories. In the same run, on the same rows:

1. ``ingest_events`` in batches (validate, route, COPY + INSERT ON CONFLICT), empty table, by
   one client, then by two client processes at once (as two service workers take two posting
   systems' batches), each with half of the rows;
2. the CSV import (``minqing events import``'s path), empty table again;
3. the same CSV again: every row answers "already had it" (a retried import);
4. baselines: a plain COPY of the same CSV into a bare table (no index, no check), and into a
   table shaped like ``event`` with all its indexes and constraints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_city import bench_city

from gis.coords import wgs84_to_gcj02
from gis.events.csv_import import FIELDS, import_csv
from gis.events.ingest import ingest_events
from gis.events.partitions import maintain_partitions, month_of
from gis.grid_snapshot import load_snapshot

BENCH_DB = "minqing_bench_events"
BEIJING = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 8, 27, tzinfo=BEIJING)
BATCH_COLUMNS = [c for c in FIELDS if c != "grid_code"]


def bench_engine() -> tuple[sa.Engine, Path]:
    """The benchmark database with the city's grids (no events) and the fixture folder."""
    return bench_city(BENCH_DB, fresh=True, events=False)


def synthetic_chunks(fixture_dir: Path, n: int, chunk: int, seed: int, tag: str
                     ) -> Iterator[pd.DataFrame]:
    """``n`` events in chunks, as text columns like a CSV gives them."""
    sample = pd.read_csv(fixture_dir / "events.csv", dtype=str, keep_default_na=False)
    truth = sample[["true_lon", "true_lat"]].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        pick = rng.integers(0, len(sample), m)
        lon = truth[pick, 0] + rng.normal(0.0, 0.0005, m)
        lat = truth[pick, 1] + rng.normal(0.0, 0.0004, m)
        gcj = rng.random(m) < 0.06
        glon, glat = wgs84_to_gcj02(lon[gcj], lat[gcj])
        lon[gcj], lat[gcj] = glon, glat
        reported = START + pd.to_timedelta(rng.integers(0, 90 * 86400, m), unit="s")
        frame = sample.iloc[pick][["source", "category", "severity", "status", "reporter_name",
                                   "reporter_phone", "text"]].reset_index(drop=True)
        frame["source_id"] = [f"{tag}{start + i:08d}" for i in range(m)]
        frame["reported_at"] = [t.isoformat() for t in reported]
        frame["due_at"] = ""
        frame["crs"] = np.where(gcj, "gcj02", "wgs84")
        frame["lon"] = np.round(lon, 7).astype(str)
        frame["lat"] = np.round(lat, 7).astype(str)
        yield frame[BATCH_COLUMNS]


def empty_events(engine: sa.Engine) -> None:
    """Start a step from an empty event table."""
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE event, event_key CASCADE"))
    maintain_partitions(engine.begin, since=month_of(START))  # every month of the events
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            sa.text("VACUUM event, event_key"))


def batch_ingest(engine: sa.Engine, fixture_dir: Path, n: int, batch: int, seed: int
                 ) -> dict[str, Any]:
    """Step 1: ingest_events per batch of JSON-like rows, one transaction each."""
    with engine.connect() as conn:
        snapshot = load_snapshot(conn)
    empty_events(engine)
    created = spent = 0.0
    for frame in synthetic_chunks(fixture_dir, n, batch, seed, "B"):
        rows = [{k: v for k, v in r.items() if v != ""} for r in frame.to_dict("records")]
        started = time.perf_counter()
        with engine.begin() as conn:
            result = ingest_events(conn, snapshot, rows)
        spent += time.perf_counter() - started
        created += result.count("created")
    return {"events": int(created), "seconds": spent}


def _client(url: str, fixture_dir: Path, n: int, batch: int, seed: int, tag: str,
            ready: Any, go: Any) -> tuple[int, float, float]:
    """One client process: its rows drawn beforehand, then ingested from ``go``; created,
    start and end (wall clock)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        snapshot = load_snapshot(conn)
    batches = [[{k: v for k, v in r.items() if v != ""} for r in frame.to_dict("records")]
               for frame in synthetic_chunks(fixture_dir, n, batch, seed, tag)]
    ready.release()
    go.wait()
    created, started = 0, time.time()
    for rows in batches:
        with engine.begin() as conn:
            created += ingest_events(conn, snapshot, rows).count("created")
    ended = time.time()
    engine.dispose()
    return created, started, ended


def parallel_ingest(engine: sa.Engine, fixture_dir: Path, n: int, batch: int, seed: int,
                    clients: int) -> dict[str, Any]:
    """Step 1 by ``clients`` processes at once, n / clients rows each, empty table; seconds from
    the first start to the last end."""
    empty_events(engine)
    url = engine.url.render_as_string(hide_password=False)
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        ready, go = manager.Semaphore(0), manager.Event()
        with context.Pool(clients) as pool:
            runs = [pool.apply_async(_client, (url, fixture_dir, n // clients, batch,
                                               seed + c, f"P{c}-", ready, go))
                    for c in range(clients)]
            for _ in range(clients):
                ready.acquire()
            go.set()
            done = [r.get() for r in runs]
    return {"events": sum(d[0] for d in done),
            "seconds": max(d[2] for d in done) - min(d[1] for d in done)}


def write_csv(fixture_dir: Path, n: int, seed: int, path: Path) -> float:
    """The same kind of rows as a CSV file; returns seconds spent writing it."""
    started = time.perf_counter()
    for k, frame in enumerate(synthetic_chunks(fixture_dir, n, 200_000, seed, "C")):
        frame.to_csv(path, mode="w" if k == 0 else "a", header=k == 0, index=False)
    return time.perf_counter() - started


def csv_import(engine: sa.Engine, path: Path) -> dict[str, Any]:
    """Steps 2 and 3: the CSV import path, per-chunk transactions."""
    with engine.connect() as conn:
        snapshot = load_snapshot(conn)
    started = time.perf_counter()
    counts = import_csv(engine.begin, lambda _rebuild: snapshot, path, progress=False)
    return {"events": counts.read, "created": counts.created, "already_had": counts.already_had,
            "rejected": counts.rejected, "unrouted": counts.unrouted,
            "seconds": time.perf_counter() - started}


BARE_TYPES = {"source": "text", "source_id": "text", "category": "text", "severity": "smallint",
              "reported_at": "timestamptz", "status": "text", "due_at": "timestamptz",
              "lon": "float8", "lat": "float8", "crs": "text", "reporter_name": "text",
              "reporter_phone": "text", "text": "text"}


def plain_copy(engine: sa.Engine, path: Path, shaped: bool) -> dict[str, Any]:
    """Baseline: COPY the CSV's rows into a bare table (or one shaped like event)."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bench_copy"))
        if shaped:  # every index, check and the generated point of the event table
            conn.execute(sa.text("CREATE TABLE bench_copy (LIKE event INCLUDING ALL)"))
            conn.execute(sa.text("ALTER TABLE bench_copy ALTER route SET DEFAULT 'unrouted'"))
            # The idempotency key lives in event_key now; keep the baseline's unique index.
            conn.execute(sa.text("ALTER TABLE bench_copy ADD UNIQUE (source, source_id)"))
        else:
            conn.execute(sa.text("CREATE TABLE bench_copy ("
                                 + ", ".join(f"{c} {BARE_TYPES[c]}" for c in BATCH_COLUMNS)
                                 + ")"))
    target = ", ".join("input_crs" if shaped and c == "crs" else c for c in BATCH_COLUMNS)
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY bench_copy ({target}) FROM STDIN (FORMAT csv, HEADER true)"
                         ) as copy, path.open("rb") as handle:
            while block := handle.read(1 << 20):
                copy.write(block)
        rows = int(conn.execute(sa.text("SELECT count(*) FROM bench_copy")).scalar_one())
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE bench_copy"))
    return {"events": rows, "seconds": seconds}


def main() -> None:
    """Run every step and print events per second, with ratios to the plain COPY."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_400_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()

    engine, fixture_dir = bench_engine()
    figures: dict[str, dict[str, Any]] = {}
    figures[f"ingest_events, batches of {args.batch:,}"] = batch_ingest(
        engine, fixture_dir, args.events, args.batch, args.seed)
    figures["ingest_events, the same by 2 clients"] = parallel_ingest(
        engine, fixture_dir, args.events, args.batch, args.seed, 2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench_events.csv"
        written = write_csv(fixture_dir, args.events, args.seed, path)
        print(f"wrote {args.events:,} rows to CSV in {written:.1f} s")
        empty_events(engine)
        figures["CSV import (minqing events import)"] = csv_import(engine, path)
        figures["CSV import again (all already had)"] = csv_import(engine, path)
        figures["baseline: COPY into a bare table"] = plain_copy(engine, path, shaped=False)
        figures["baseline: COPY into an event-shaped table"] = plain_copy(engine, path,
                                                                          shaped=True)
    with engine.connect() as conn:
        routes = dict(conn.execute(sa.text(
            "SELECT route, count(*) FROM event GROUP BY route")).all())
    base = figures["baseline: COPY into a bare table"]
    base_rate = base["events"] / base["seconds"]
    print(f"events per run: {args.events:,}; routes after the CSV import: {routes}")
    print(f"{'path':44s} {'events':>10s} {'seconds':>8s} {'events/s':>10s} {'vs COPY':>8s}")
    for label, f in figures.items():
        rate = f["events"] / f["seconds"]
        print(f"{label:44s} {f['events']:10,d} {f['seconds']:8.1f} {rate:10,.0f} "
              f"{rate / base_rate:8.3f}")


if __name__ == "__main__":
    main()
