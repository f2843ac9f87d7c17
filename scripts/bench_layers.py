"""Benchmark of the red / yellow / blue layer with the city's order of events in the store.

Usage: python scripts/bench_layers.py [--events 2400000] [--repeat 3]

Uses its own database (``minqing_bench_layers``) on the embedded cluster (or MINQING_DB_URL):
the synthetic Lanzhou plus N events COPYed from the fixtures' events.csv, repeated with shifted
dates (copy k: k mod 4 quarters back, plus k div 4 times 17 minutes; copies older than the
fixtures' 90 days have every event closed), so that the last 30 days hold about a twelfth.
Times, in the same run: a plain GROUP BY count over the whole table and over the long window
(the baselines), the full recompute (first run writing every grid, then a steady re-run), and the
incremental refresh after batches of 1, 10, 30, 100 and 1000 new events (each committed, then its
grids refreshed in a transaction of their own, as the service does) against one prepared indexed
read of a grid's window events (the lone event's baseline), and a burst of single-event requests
from 32 threads refreshed each on its own and through the service's coalescing
(layers/coalesce.py).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_city import bench_city

from api.settings import Settings
from gis.events.partitions import maintain_partitions, month_of
from layers.coalesce import GridRefresher
from layers.refresh import refresh_all, refresh_grids
from layers.rules import load_rules

BENCH_DB = "minqing_bench_layers"
BURST = 400
BURST_THREADS = 32
COLUMNS = ("source", "source_id", "category", "severity", "status", "reported_at", "due_at",
           "lon", "lat", "grid_code", "grid_version", "route")


def bench_engine() -> sa.Engine:
    """The benchmark database, migrated and loaded with the synthetic Lanzhou."""
    return bench_city(BENCH_DB)[0]


def fixture_rows() -> list[dict[str, Any]]:
    """The fixtures' events with parsed times."""
    with (Settings().fixtures.dir / "events.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for r in rows:
        r["at"] = dt.datetime.fromisoformat(r["reported_at"])
        r["due"] = dt.datetime.fromisoformat(r["due_at"]) if r["due_at"] else None
    return rows


def _psycopg_url(engine: sa.Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def fill_events(engine: sa.Engine, rows: list[dict[str, Any]], n: int) -> float:
    """COPY ``n`` events into an emptied table; the seconds it took (0 when already there)."""
    with engine.connect() as conn:
        have = int(conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one())
    if have == n:
        return 0.0
    copies = -(-n // len(rows))
    oldest = min(r["at"] for r in rows) - dt.timedelta(days=90 * min(copies - 1, 3))
    maintain_partitions(engine.begin, since=month_of(oldest))  # each copy in its month
    started = time.perf_counter()
    with psycopg.connect(_psycopg_url(engine)) as conn:
        conn.execute("TRUNCATE event, event_key CASCADE")
        with conn.cursor().copy(f"COPY event ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for k in range(copies):
                shift = dt.timedelta(days=90 * (k % 4), minutes=17 * (k // 4))
                old = k % 4 > 0
                for r in rows[: n - k * len(rows)]:
                    status = "closed" if old and r["status"] in ("open", "in_progress") \
                        else r["status"]
                    code = r["expected_code"] or None
                    copy.write_row((r["source"], f"K{k}-{r['source_id']}", r["category"],
                                    int(r["severity"]), status, r["at"] - shift,
                                    r["due"] - shift if r["due"] else None,
                                    float(r["true_lon"]), float(r["true_lat"]), code,
                                    1 if code else None, "exact" if code else "unrouted"))
        conn.execute("""INSERT INTO event_key (source, source_id, event_id, reported_at)
                        SELECT source, source_id, id, reported_at FROM event""")
        conn.execute("ANALYZE event; ANALYZE event_key")
    return time.perf_counter() - started


def insert_events(conn: sa.Connection, picked: list[dict[str, Any]], prefix: str,
                  now: dt.datetime) -> None:
    """New open events (source "bench") at the fixtures' positions, ten minutes before now."""
    conn.execute(sa.text(
        """WITH stored AS (
               INSERT INTO event (source, source_id, category, severity, status, reported_at,
                                  due_at, lon, lat, grid_code, grid_version, route)
               VALUES ('bench', :sid, :category, :severity, 'open', :at, :due, :lon, :lat,
                       :code, 1, 'exact')
               RETURNING id, source, source_id, reported_at)
           INSERT INTO event_key (source, source_id, event_id, reported_at)
           SELECT source, source_id, id, reported_at FROM stored"""),
        [{"sid": f"{prefix}-{i}", "category": r["category"], "severity": int(r["severity"]),
          "at": now - dt.timedelta(minutes=10), "due": now + dt.timedelta(days=3),
          "lon": float(r["true_lon"]), "lat": float(r["true_lat"]), "code": r["expected_code"]}
         for i, r in enumerate(picked)])


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Wall times of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_400_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()
    rules = load_rules()
    engine = bench_engine()
    rows = fixture_rows()
    copy_s = fill_events(engine, rows, args.events)
    # Each run starts from a vacuumed store: the events an earlier run added and deleted leave
    # dead index entries in the month's partition that slow every later grid's read.
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text(
            "VACUUM (ANALYZE) event, event_key, grid_colour, grid_heat, layer_state"))
    now = max(r["at"] for r in rows) + dt.timedelta(hours=1)
    long_start = now - dt.timedelta(days=rules.windows.long_days)
    figures: dict[str, float] = {}
    with engine.connect() as conn:
        total = int(conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one())
        in_window = int(conn.execute(sa.text(
            "SELECT count(*) FROM event WHERE reported_at > :s AND reported_at <= :now"),
            {"s": long_start, "now": now}).scalar_one())
        figures["baseline: GROUP BY grid_code, whole table"] = statistics.median(timed(
            lambda: conn.execute(sa.text(
                "SELECT grid_code, count(*) FROM event GROUP BY grid_code")).all(), args.repeat))
        figures["baseline: GROUP BY grid_code, category in the long window"] = statistics.median(
            timed(lambda: conn.execute(sa.text(
                """SELECT grid_code, category, count(*) FROM event
                   WHERE reported_at > :s AND reported_at <= :now GROUP BY 1, 2"""),
                {"s": long_start, "now": now}).all(), args.repeat))

    def first_full() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("""TRUNCATE grid_colour, grid_heat, colour_change,
                                    layer_warning; UPDATE layer_state SET computed_as_of = NULL,
                                    rules_version = ''"""))
            started = time.perf_counter()
            refresh_all(conn, now, rules)
            first.append(time.perf_counter() - started)
            conn.commit()

    first: list[float] = []
    for _ in range(args.repeat):
        first_full()
    figures["refresh_all, first (writes every grid)"] = statistics.median(first)

    def steady() -> None:
        with engine.begin() as conn:
            refresh_all(conn, now + dt.timedelta(minutes=5), rules)

    figures["refresh_all, steady (5 minutes later)"] = statistics.median(timed(steady,
                                                                                args.repeat))
    rng = np.random.default_rng(args.seed)
    routed = [r for r in rows if r["expected_code"]]
    batches: dict[int, list[float]] = {}
    touched: set[str] = set()
    # The first runs of each size are not timed: a connection plans a prepared statement on its
    # first five runs (the service's connections live long), and the pool has five connections.
    for size, repeat, warm in ((1, 30, 30), (10, 10, 10), (30, 10, 10), (100, 10, 2),
                               (1000, 5, 1)):
        for b in range(warm + repeat):
            pick = rng.choice(len(routed), size, replace=False)
            codes = {routed[i]["expected_code"] for i in pick}
            touched |= codes
            # As the service does: the events commit, then their grids refresh in a
            # transaction of their own (which commits, keeping the connection's prepared plans).
            with engine.begin() as conn:
                insert_events(conn, [routed[i] for i in pick], f"N{size}-{b}", now)
            with engine.begin() as conn:
                started = time.perf_counter()
                refresh_grids(conn, codes, now, rules)
                if b >= warm:
                    batches.setdefault(size, []).append(time.perf_counter() - started)
    # A baseline for the lone event, in the same run: one prepared, indexed read of a grid's
    # events of the long window (what any refresh of the grid must at least touch).
    lone_read: list[float] = []
    with psycopg.connect(_psycopg_url(engine)) as raw:
        for b in range(230):
            code = routed[int(rng.integers(len(routed)))]["expected_code"]
            started = time.perf_counter()
            raw.execute("SELECT count(*), sum(severity) FROM event WHERE grid_code = %s"
                        " AND reported_at > %s AND reported_at <= %s",
                        (code, long_start, now), prepare=True).fetchall()
            if b >= 30:
                lone_read.append(time.perf_counter() - started)
    # Bursts of single-event requests from BURST_THREADS request threads: each refreshing its
    # grid on its own (queueing on the refresh lock), then pooled as the service does.
    bursts: dict[str, tuple[float, int]] = {}

    def own(r: dict[str, Any]) -> None:
        with engine.begin() as conn:
            refresh_grids(conn, [r["expected_code"]], now, rules)

    refresher = GridRefresher(engine, clock=lambda: now)
    for label, each in (("each on its own", own),
                        ("coalesced", lambda r: refresher.refresh([r["expected_code"]]))):
        burst = [routed[i] for i in rng.choice(len(routed), BURST, replace=False)]
        with engine.begin() as conn:
            insert_events(conn, burst, f"burst-{len(bursts)}", now)
        touched |= {r["expected_code"] for r in burst}
        started = time.perf_counter()
        with ThreadPoolExecutor(BURST_THREADS) as pool:
            list(pool.map(each, burst))
        bursts[label] = (time.perf_counter() - started,
                         refresher.stats.rounds if label == "coalesced" else BURST)
    with engine.begin() as conn:  # the store as it was
        conn.execute(sa.text("DELETE FROM event_key WHERE source = 'bench'"))
        conn.execute(sa.text("DELETE FROM event WHERE source = 'bench'"))
        refresh_grids(conn, touched, now, rules)
    base = figures["baseline: GROUP BY grid_code, whole table"]
    print(f"events in store: {total:,} ({in_window:,} in the last {rules.windows.long_days} "
          f"days); COPY {copy_s:.1f} s" + (f" ({total / copy_s:,.0f} events/s)" if copy_s else ""))
    print(f"{'step':58s} {'seconds':>9s} {'vs GROUP BY':>12s}")
    for label, seconds in figures.items():
        print(f"{label:58s} {seconds:9.3f} {seconds / base:11.2f}x")
    for size, times in batches.items():
        median = statistics.median(times)
        figures[f"refresh_grids, batch of {size}"] = median
        print(f"{'refresh_grids after a batch of ' + str(size) + ' new events':58s} "
              f"{median:9.4f}   {1000 * median / size:7.3f} ms/event")
    read = statistics.median(lone_read)
    figures["baseline: one grid's window events, prepared read"] = read
    label = "baseline: one grid's window events, one prepared read"
    print(f"{label:58s} {read:9.4f}   {1000 * read:7.3f} ms (a lone event's refresh: "
          f"{statistics.median(batches[1]) / read:.1f}x)")
    for label, (seconds, rounds) in bursts.items():
        print(f"{f'{BURST} single-event requests, {BURST_THREADS} threads, {label}':58s} "
              f"{seconds:9.4f}   {1000 * seconds / BURST:7.3f} ms/event ({rounds} refreshes)")
        figures[f"burst of {BURST}, {label}"] = seconds
    print({k: round(v, 4) for k, v in figures.items()})


if __name__ == "__main__":
    main()
