"""Store events idempotently on (source, source_id): COPY into a temp table, one INSERT ON CONFLICT.

A batch is validated row by row: good rows are stored, bad rows come back with their reason, and
a row already stored (the same event sent twice, or a batch retried after a timeout) answers
"already had it" with the stored event's id. Nothing accepted is dropped: an event no grid can
take is stored as unrouted with the reason.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import Unavailable
from gis.events.model import EventIn, ParsedRows, parse_rows
from gis.events.routing import RoutedBatch, route_events
from gis.events.vocabulary import FUTURE_SKEW_S
from gis.grid_change_commit import _CHANGE_LOCK as BOUNDARY_LOCK
from gis.grid_snapshot import GridSnapshot

CHANNEL = "events"
Result = Literal["created", "already had it", "rejected"]
CREATED: Final[Result] = "created"
ALREADY: Final[Result] = "already had it"
REJECTED: Final[Result] = "rejected"
_NOTIFY_CODES = 50  # codes listed in a notification (its payload must stay under 8000 bytes)

_COLUMNS = ("ord", "source", "source_id", "category", "severity", "status", "reported_at",
            "due_at", "input_crs", "input_lon", "input_lat", "lon", "lat", "grid_code",
            "grid_version", "route", "route_note", "snap_distance_m", "reporter_name",
            "reporter_phone", "text")
_STORED = _COLUMNS[1:]

# Each row takes its event id as it is copied in (a repeat's id is never used, as a conflicting
# row's sequence value never was).
_TEMP = """
CREATE TEMP TABLE IF NOT EXISTS event_in (
    id bigint DEFAULT nextval('event_id_seq'), ord integer, source varchar(16),
    source_id varchar(64), category varchar(16), severity smallint, status varchar(11),
    reported_at timestamptz, due_at timestamptz,
    input_crs varchar(8), input_lon float8, input_lat float8, lon float8, lat float8,
    grid_code varchar(15), grid_version integer, route varchar(8), route_note text,
    snap_distance_m real, reporter_name text, reporter_phone varchar(32), text text
) ON COMMIT DROP
"""
# The key lives in event_key (the monthly partitions of event cannot hold a unique key without
# reported_at). The key first (ON CONFLICT absorbs a retry, a concurrent twin and a repeat in
# the batch, the first by input order winning), then only the rows whose key went in, found by
# their id.
_INSERT = f"""
WITH keyed AS (
    INSERT INTO event_key (source, source_id, event_id, reported_at)
    SELECT source, source_id, id, reported_at FROM event_in ORDER BY ord
    ON CONFLICT (source, source_id) DO NOTHING
    RETURNING event_id
)
INSERT INTO event (id, {", ".join(_STORED)})
SELECT i.id, {", ".join("i." + c for c in _STORED)}
FROM keyed k JOIN event_in i ON i.id = k.event_id
ORDER BY i.id
RETURNING id, source, source_id
"""
# The key gives the event's id and reported_at, so the join reads one partition per event.
# LIMIT 1 (the key is unique) keeps the key lookup a probe per row: as a plain join the planner
# hashes the whole key table for a large batch.
_EXISTING = """
SELECT w.source, w.source_id, e.id, e.grid_code, e.route, e.route_note, e.snap_distance_m
FROM unnest(CAST(:source AS text[]), CAST(:source_id AS text[])) AS w(source, source_id)
CROSS JOIN LATERAL (SELECT k.event_id, k.reported_at FROM event_key k
                    WHERE k.source = w.source AND k.source_id = w.source_id LIMIT 1) AS k
JOIN event e ON e.id = k.event_id AND e.reported_at = k.reported_at
"""


class _HeldWhileBatches:
    """A process-wide setting changed while at least one batch (of any thread) is in flight."""

    def __init__(self, change: Callable[[], Any], restore: Callable[[Any], None]) -> None:
        self._change, self._restore = change, restore
        self._lock = threading.Lock()
        self._holders = 0
        self._saved: Any = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._saved = self._change()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    self._restore(self._saved)


def _pause_gc() -> bool:
    was = gc.isenabled()
    gc.disable()
    return was


_GC = _HeldWhileBatches(_pause_gc, lambda was: gc.enable() if was else None)


def paused_gc() -> AbstractContextManager[None]:
    """Hold off Python's cyclic garbage collector while a batch builds its objects.

    A batch of 10 k events makes some 200 k objects (models, dicts, row tuples), none of them in a
    reference cycle, and each few thousand allocations trigger a collection that walks them again:
    a third of the client's time per event. Reference counting still frees everything; cycles made
    meanwhile elsewhere are collected once the last batch in flight (of any thread) is done. An
    application that turned the collector off keeps it off.
    """
    return _GC.held()


# While one thread prepares a batch's next part and another stores the current one, the storing
# thread must get the GIL back as soon as PostgreSQL answers. At Python's default switch interval
# (5 ms) it waited up to that long after each round trip, and the overlap gained nothing; at
# 0.5 ms a batch of 10,000 in parts of 2,500 stores 15-20 % faster (docs/EVENTS.md).
SWITCH_INTERVAL_S = 0.0005


def _shorten_switch() -> float:
    was = sys.getswitchinterval()
    sys.setswitchinterval(min(was, SWITCH_INTERVAL_S))
    return was


_SWITCH = _HeldWhileBatches(_shorten_switch, sys.setswitchinterval)


def quick_gil_handoff() -> AbstractContextManager[None]:
    """A short GIL switch interval while a batch is prepared in one thread and stored in another."""
    return _SWITCH.held()


class StaleGridVersion(Unavailable):
    """The router's snapshot is older than the grid version in force; rebuild it and retry."""

    kind = "stale_grid_version"


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one row of a batch."""

    index: int
    result: Result
    id: int | None = None
    grid_code: str | None = None
    route: str | None = None
    route_note: str | None = None
    snap_distance_m: float | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The row's answer: created / already had it with the event, or the reason refused."""
        if self.result == REJECTED:
            return {"index": self.index, "result": self.result, "reason": self.reason}
        return {"index": self.index, "result": self.result, "id": self.id,
                "grid_code": self.grid_code, "route": self.route, "route_note": self.route_note,
                "snap_distance_m": self.snap_distance_m}


@dataclass
class IngestResult:
    """The outcome of every row, the grid version used and the small grids given new events."""

    outcomes: list[RowOutcome]
    grid_version: int
    touched: set[str] = field(default_factory=set)

    def count(self, result: Result) -> int:
        """How many rows had this result."""
        return sum(1 for o in self.outcomes if o.result == result)

    @property
    def unrouted_created(self) -> int:
        """New events stored without a grid."""
        return sum(1 for o in self.outcomes if o.result == CREATED and o.route == "unrouted")

    def summary(self) -> dict[str, int]:
        """Counts per result."""
        return {"rows": len(self.outcomes), "created": self.count(CREATED),
                "already_had": self.count(ALREADY), "rejected": self.count(REJECTED),
                "unrouted": self.unrouted_created}


def _check_version(conn: Connection, routed_under: int) -> None:
    # Shared with other ingests, exclusive with a boundary commit: a commit cannot slip between
    # routing these events and storing them (its re-route would then miss them).
    conn.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": BOUNDARY_LOCK})
    version: int = conn.execute(
        sa.text("SELECT coalesce(max(id), 0) FROM grid_version")).scalar_one()
    if int(version) != routed_under:
        raise StaleGridVersion(
            f"grid version {version} is in force but the router holds {routed_under}; retry",
            details={"grid_version": int(version), "router_version": routed_under})


# The binary COPY's type of each column of _COLUMNS (varchar takes text's binary form).
_COPY_TYPES = ("int4", "text", "text", "text", "int2", "text", "timestamptz", "timestamptz",
               "text", "float8", "float8", "float8", "float8", "text", "int4", "text", "text",
               "float4", "text", "text", "text")


def _copy_rows(events: list[EventIn], keep: list[int], routed: RoutedBatch
               ) -> list[tuple[Any, ...]]:
    # Sent by a binary COPY: psycopg formats these in C, three times faster than the csv module
    # writes them as text (times and floats above all), and the server parses less.
    lon, lat = routed.lon.tolist(), routed.lat.tolist()
    version = routed.grid_version
    rows = []
    for k in keep:
        e = events[k]
        placed = e.lon is not None
        rows.append((k, e.source, e.source_id, e.category, e.severity, e.status, e.reported_at,
                     e.due, e.crs if placed else None, e.lon, e.lat,
                     lon[k] if placed else None, lat[k] if placed else None,
                     routed.grid_code[k], version, routed.route[k], routed.route_note[k],
                     routed.snap_distance_m[k], e.reporter_name, e.reporter_phone, e.text))
    return rows


@dataclass
class PreparedBatch:
    """A batch validated and routed, ready to store (no database touched yet)."""

    events: list[EventIn]
    indexes: list[int]  # input row of each event
    rejects: dict[int, str]  # input row -> reason
    routed: RoutedBatch
    keep: list[int]  # events to store
    rows: list[tuple[Any, ...]]  # their COPY rows, in _COLUMNS order


def prepare_events(snapshot: GridSnapshot, rows: Iterable[Mapping[str, Any] | Any] | ParsedRows,
                   *, only_source: str | None = None, now: dt.datetime | None = None
                   ) -> PreparedBatch:
    """Validate each row and route the good ones under the snapshot's grid version."""
    parsed = rows if isinstance(rows, ParsedRows) else parse_rows(rows)
    latest = (now or dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=FUTURE_SKEW_S)
    rejects = dict(parsed.rejects)
    events: list[EventIn] = []
    indexes: list[int] = []
    for i, event in zip(parsed.indexes, parsed.events, strict=True):
        if only_source is not None and event.source != only_source:
            rejects[i] = f"source must be {only_source} for this caller (got {event.source})"
        elif event.reported_at > latest:
            rejects[i] = f"reported_at {event.reported_at.isoformat()} is in the future"
        else:
            events.append(event)
            indexes.append(i)
    routed = route_events(snapshot, events)
    keep = [k for k in range(len(events)) if k not in routed.rejects]
    for k, reason in routed.rejects.items():
        rejects[indexes[k]] = reason
    return PreparedBatch(events, indexes, rejects, routed, keep,
                         _copy_rows(events, keep, routed))


def store_prepared(conn: Connection, batch: PreparedBatch, *, notify: bool = True
                   ) -> IngestResult:
    """Store a prepared batch in the caller's transaction (StaleGridVersion: prepare again)."""
    _check_version(conn, batch.routed.grid_version)
    events, indexes, routed = batch.events, batch.indexes, batch.routed
    outcomes: dict[int, RowOutcome] = {i: RowOutcome(i, REJECTED, reason=reason)
                                       for i, reason in batch.rejects.items()}
    touched: set[str] = set()
    if batch.keep:
        conn.execute(sa.text(_TEMP))
        conn.execute(sa.text("TRUNCATE event_in"))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY event_in ({', '.join(_COLUMNS)}) FROM STDIN (FORMAT binary)"
                         ) as copy:
            copy.set_types(_COPY_TYPES)
            for row in batch.rows:
                copy.write_row(row)
        cursor.execute(_INSERT)  # the driver's tuples: a third of the cost of result rows
        created = {(source, source_id): event_id
                   for event_id, source, source_id in cursor.fetchall()}
        first: set[tuple[str, str]] = set()
        again: list[int] = []
        for k in batch.keep:
            key = (events[k].source, events[k].source_id)
            if key in created and key not in first:
                first.add(key)
                code = routed.grid_code[k]
                outcomes[indexes[k]] = RowOutcome(
                    indexes[k], CREATED, created[key], code, routed.route[k],
                    routed.route_note[k], routed.snap_distance_m[k])
                if code is not None:
                    touched.add(code)
            else:
                again.append(k)
        if again:
            stored = {(r.source, r.source_id): r for r in conn.execute(sa.text(_EXISTING), {
                "source": [events[k].source for k in again],
                "source_id": [events[k].source_id for k in again]})}
            for k in again:
                r = stored[(events[k].source, events[k].source_id)]
                outcomes[indexes[k]] = RowOutcome(
                    indexes[k], ALREADY, int(r.id), r.grid_code, r.route, r.route_note,
                    None if r.snap_distance_m is None else round(float(r.snap_distance_m), 1))
    result = IngestResult([outcomes[i] for i in sorted(outcomes)], routed.grid_version, touched)
    if notify and result.count(CREATED):
        notify_ingest(conn, result)
    return result


# A batch of at least two parts' rows is prepared in parts, each validated and routed in a
# thread while the part before it is stored (docs/EVENTS.md, "Performance").
PART_ROWS = 2_500


def ingest_events(conn: Connection, snapshot: GridSnapshot,
                  rows: Iterable[Mapping[str, Any] | Any] | ParsedRows, *,
                  only_source: str | None = None, now: dt.datetime | None = None,
                  notify: bool = True) -> IngestResult:
    """Validate, route and store a batch in the caller's transaction; one outcome per row.

    A large batch goes in parts, all in the caller's transaction: the next part is validated and
    routed in a thread while the current one is stored. The outcomes are the same as for one
    part (a repeat of a row of an earlier part answers "already had it" with its id).
    """
    now = now or dt.datetime.now(dt.UTC)  # one clock for every part's "in the future"
    if not isinstance(rows, ParsedRows):
        rows = rows if isinstance(rows, list) else list(rows)
    if isinstance(rows, ParsedRows) or len(rows) < 2 * PART_ROWS:
        with paused_gc():
            batch = prepare_events(snapshot, rows, only_source=only_source, now=now)
            return store_prepared(conn, batch, notify=notify)
    starts = range(0, len(rows), PART_ROWS)

    def prepare(start: int) -> PreparedBatch:
        return prepare_events(snapshot, parse_rows(rows[start:start + PART_ROWS], start),
                              only_source=only_source, now=now)

    results: list[IngestResult] = []
    with paused_gc(), quick_gil_handoff(), \
            ThreadPoolExecutor(1, thread_name_prefix="event-prepare") as pool:
        ahead = pool.submit(prepare, starts[0])
        for k in range(len(starts)):
            batch = ahead.result()
            if k + 1 < len(starts):
                ahead = pool.submit(prepare, starts[k + 1])
            results.append(store_prepared(conn, batch, notify=False))
    result = IngestResult([o for r in results for o in r.outcomes], results[0].grid_version,
                          set().union(*(r.touched for r in results)))
    if notify and result.count(CREATED):
        notify_ingest(conn, result)
    return result


def notify_ingest(conn: Connection, result: IngestResult) -> None:
    """NOTIFY events with the counts and (when few) the grids touched; sent when this commits."""
    codes = sorted(result.touched)
    payload = {"created": result.count(CREATED), "unrouted": result.unrouted_created,
               "grids": len(codes), "grid_version": result.grid_version,
               "codes": codes if len(codes) <= _NOTIFY_CODES else None}
    conn.execute(sa.text("SELECT pg_notify(:channel, :payload)"),
                 {"channel": CHANNEL, "payload": json.dumps(payload)})
