"""The monthly partitions of ``event``: one per Beijing month, created ahead, split from DEFAULT.

Policy: last month, the current one and ``ahead`` months after it have their partitions (the
migration created one for every month of the events already stored); rows whose month has none
(an import of old events, an odd date) land in ``event_default`` and the next upkeep moves them
to a new partition of their own month. Gaps between old months are not filled: a partition is
made for a month that has rows, never for a whole span back to an odd date.
Maintenance runs from the migration, at service start, in the periodic layer refresher and from
``minqing events partitions``; never inside an ingest. Creating a partition locks the whole
table, so each month is its own short transaction with a lock timeout: when the table is busy
the month is left for the next run (its rows wait safely in DEFAULT meanwhile).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

log = logging.getLogger(__name__)

BEIJING = ZoneInfo("Asia/Shanghai")
AHEAD_MONTHS = 3
BACK_MONTHS = 1  # last month too, for late reports, even when no event is that old
DEFAULT_PARTITION = "event_default"
LOCK_TIMEOUT = "2s"
_MAINTENANCE_LOCK = 0x6576_7061  # serialises maintenance across processes ("evpa")
_LOCK_NOT_AVAILABLE = "55P03"  # lock_timeout ran out
_NAME = re.compile(r"^event_(\d{4})_(\d{2})$")

_PARTITIONS = sa.text(
    """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'event'::regclass""")
_DEFAULT_MONTHS = sa.text(
    f"""SELECT DISTINCT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai') AS m
        FROM {DEFAULT_PARTITION} ORDER BY m""")
_MOVABLE_COLUMNS = sa.text(
    """SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
       WHERE attrelid = 'event'::regclass AND attnum > 0 AND NOT attisdropped
         AND attgenerated = ''""")

Begin = Callable[[], AbstractContextManager[Connection]]


def month_of(moment: dt.datetime) -> dt.date:
    """The first day of the Beijing month holding ``moment``."""
    local = moment.astimezone(BEIJING)
    return dt.date(local.year, local.month, 1)


def next_month(month: dt.date) -> dt.date:
    """The first day of the following month."""
    return dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)


def previous_month(month: dt.date) -> dt.date:
    """The first day of the month before."""
    return dt.date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    """The partition of a month: ``event_2026_12``."""
    return f"event_{month.year:04d}_{month.month:02d}"


def month_bounds(month: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a Beijing month as aware times."""
    start = dt.datetime(month.year, month.month, 1, tzinfo=BEIJING)
    end_day = next_month(month)
    return start, dt.datetime(end_day.year, end_day.month, 1, tzinfo=BEIJING)


def monthly_partitions(conn: Connection) -> dict[dt.date, str]:
    """The monthly partitions there are, by month."""
    months: dict[dt.date, str] = {}
    names: list[str] = list(conn.execute(_PARTITIONS).scalars())
    for name in names:
        if match := _NAME.match(name):
            months[dt.date(int(match[1]), int(match[2]), 1)] = name
    return months


@dataclass
class PartitionReport:
    """What a maintenance run did: months created, rows moved out of DEFAULT, months left."""

    created: list[str] = field(default_factory=list)
    moved: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)  # busy table: left for the next run
    in_default: int = 0  # rows still in DEFAULT afterwards

    def summary(self) -> str:
        """One line for logs and the CLI."""
        moved = sum(self.moved.values())
        return (f"{len(self.created)} partitions created"
                + (f" ({', '.join(self.created)})" if self.created else "")
                + f", {moved} events moved out of {DEFAULT_PARTITION}"
                + (f", busy, left for later: {', '.join(self.skipped)}" if self.skipped else "")
                + f", {self.in_default} events in {DEFAULT_PARTITION}")


def wanted_months(conn: Connection, now: dt.datetime | None = None,
                  ahead: int = AHEAD_MONTHS, since: dt.date | None = None) -> list[dt.date]:
    """Months missing a partition: last month (or ``since``) to ``ahead`` months on, and every
    month with rows in DEFAULT."""
    have = monthly_partitions(conn)
    current = month_of(now or dt.datetime.now(dt.UTC))
    first = current
    for _ in range(BACK_MONTHS):
        first = previous_month(first)
    if since is not None:
        first = min(first, dt.date(since.year, since.month, 1))
    last = current
    for _ in range(ahead):
        last = next_month(last)
    months = set()
    month = first
    while month <= last:
        months.add(month)
        month = next_month(month)
    found: list[dt.datetime] = list(conn.execute(_DEFAULT_MONTHS).scalars())
    months.update(dt.date(m.year, m.month, 1) for m in found)
    return sorted(months - set(have))


def create_partition(conn: Connection, month: dt.date) -> int:
    """Create one month's partition, moving its rows out of DEFAULT; the rows moved.

    Runs in the caller's transaction, which holds an exclusive lock on ``event`` until it ends.
    """
    name = partition_name(month)
    start, end = month_bounds(month)
    bounds = {"start": start, "end": end}
    waiting = int(conn.execute(sa.text(
        f"SELECT count(*) FROM {DEFAULT_PARTITION} WHERE reported_at >= :start "
        "AND reported_at < :end"), bounds).scalar_one())
    literal = f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    if not waiting:
        conn.execute(sa.text(f"CREATE TABLE {name} PARTITION OF event {literal}"))
        return 0
    # DEFAULT may not hold rows of a new partition's range: detach it, create the month,
    # move its rows (they now route to the new partition), attach DEFAULT again.
    columns = str(conn.execute(_MOVABLE_COLUMNS).scalar_one())
    conn.execute(sa.text(f"ALTER TABLE event DETACH PARTITION {DEFAULT_PARTITION}"))
    conn.execute(sa.text(f"CREATE TABLE {name} PARTITION OF event {literal}"))
    moved = conn.execute(sa.text(
        f"""WITH moving AS (DELETE FROM {DEFAULT_PARTITION}
                            WHERE reported_at >= :start AND reported_at < :end
                            RETURNING {columns})
            INSERT INTO event ({columns}) SELECT {columns} FROM moving"""), bounds).rowcount
    conn.execute(sa.text(f"ALTER TABLE event ATTACH PARTITION {DEFAULT_PARTITION} DEFAULT"))
    return int(moved)


def maintain_partitions(begin: Begin, *, now: dt.datetime | None = None,
                        ahead: int = AHEAD_MONTHS, since: dt.date | None = None,
                        lock_timeout: str = LOCK_TIMEOUT) -> PartitionReport:
    """Create every missing month's partition, each in its own short transaction.

    ``since`` also creates the months from then on (before importing old events, so that they
    need not wait in DEFAULT and be moved).
    """
    report = PartitionReport()
    with begin() as conn:
        months = wanted_months(conn, now, ahead, since)
    for month in months:
        name = partition_name(month)
        try:
            with begin() as conn:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": _MAINTENANCE_LOCK})
                if month in monthly_partitions(conn):  # another process was first
                    continue
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{lock_timeout}'"))
                moved = create_partition(conn, month)
        except sa.exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            log.warning("event partition %s not created: the table is busy", name)
            report.skipped.append(name)
            continue
        report.created.append(name)
        if moved:
            report.moved[name] = moved
    with begin() as conn:
        report.in_default = int(conn.execute(sa.text(
            f"SELECT count(*) FROM {DEFAULT_PARTITION}")).scalar_one())
    if report.created or report.skipped:
        log.info("event partitions: %s", report.summary())
    return report
