"""Read events: one by id, or a filtered page in report-time order (newest first, keyset paging)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gis.errors import InvalidInput, NotFound
from gis.events.vocabulary import UNRESOLVED

MAX_PAGE = 1000

EVENT_COLUMNS = """
    id, source, source_id, category, severity, status, reported_at, due_at, input_crs,
    input_lon, input_lat, lon, lat, grid_code, grid_version, route, route_note, snap_distance_m,
    reporter_name, reporter_phone, text, received_at, updated_at,
    coalesce(status IN ('open', 'in_progress') AND due_at < :now, false) AS overdue
"""
# One event by id: its key gives reported_at, so only its month's partition is read (run-time
# pruning) instead of one index probe in every partition.
BY_ID = "id = :id AND reported_at = (SELECT k.reported_at FROM event_key k WHERE k.event_id = :id)"


@dataclass(frozen=True)
class EventFilter:
    """What to list; every given condition must hold."""

    # District (6 digits), large (9), medium (12) or small (15) codes the grid code starts with.
    code_prefixes: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    reported_from: dt.datetime | None = None  # inclusive
    reported_to: dt.datetime | None = None  # exclusive
    bbox: tuple[float, float, float, float] | None = None  # WGS84 minx, miny, maxx, maxy
    overdue: bool | None = None


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended (report time and id of its last event)."""

    reported_at: dt.datetime
    id: int

    def encode(self) -> str:
        """An opaque token for the next link."""
        text = f"{self.reported_at.isoformat()}|{self.id}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """The cursor a token stands for; InvalidInput when it is not one of ours."""
        try:
            text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            when, _, ident = text.partition("|")
            return cls(dt.datetime.fromisoformat(when), int(ident))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise InvalidInput(f"after={token!r} is not a paging cursor from a next link"
                               ) from None


@dataclass
class EventPage:
    """One page of events and the cursor of the next page (None at the end)."""

    events: list[RowMapping]
    next_cursor: Cursor | None
    total: int | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def code_range(prefix: str) -> tuple[str, str | None]:
    """[low, high) of the 15-digit codes starting with a digit prefix (index-friendly)."""
    if not prefix.isdigit() or len(prefix) not in (6, 9, 12, 15):
        raise InvalidInput(f"{prefix!r} is not a district or grid code (6, 9, 12 or 15 digits)")
    following = int(prefix) + 1
    high = str(following).zfill(len(prefix))
    return prefix, None if len(high) > len(prefix) else high


def _where(flt: EventFilter, params: dict[str, Any]) -> list[str]:
    where: list[str] = []
    for k, prefix in enumerate(flt.code_prefixes):
        low, high = code_range(prefix)
        if len(low) == 15:
            where.append(f"grid_code = :code_{k}")
            params[f"code_{k}"] = low
            continue
        where.append(f"grid_code >= :code_low_{k}")
        params[f"code_low_{k}"] = low
        if high is not None:
            where.append(f"grid_code < :code_high_{k}")
            params[f"code_high_{k}"] = high
    for column, values in (("category", flt.categories), ("source", flt.sources),
                           ("status", flt.statuses), ("route", flt.routes)):
        if values:
            where.append(f"{column} = ANY(:{column}s)")
            params[f"{column}s"] = list(values)
    if flt.reported_from is not None:
        where.append("reported_at >= :reported_from")
        params["reported_from"] = flt.reported_from
    if flt.reported_to is not None:
        where.append("reported_at < :reported_to")
        params["reported_to"] = flt.reported_to
    if flt.bbox is not None:
        where.append("geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(zip(("x0", "y0", "x1", "y1"), flt.bbox, strict=True))
    if flt.overdue is not None:
        overdue = "(status = ANY(:unresolved) AND due_at < :now)"
        where.append(overdue if flt.overdue else f"NOT coalesce({overdue}, false)")
        params["unresolved"] = list(UNRESOLVED)
    return where


def list_events(conn: Connection, flt: EventFilter, *, limit: int = 100,
                after: Cursor | None = None, with_total: bool = False,
                now: dt.datetime | None = None) -> EventPage:
    """A page of events matching ``flt``, newest report first; ``after`` continues a listing."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE} (got {limit})")
    moment = now or dt.datetime.now(dt.UTC)
    params: dict[str, Any] = {"now": moment, "limit": limit + 1}
    where = _where(flt, params)
    total = None
    if with_total:
        total = int(conn.execute(sa.text(
            "SELECT count(*) FROM event" + (" WHERE " + " AND ".join(where) if where else "")),
            params).scalar_one())
    if after is not None:
        where.append("(reported_at, id) < (:after_at, :after_id)")
        params.update(after_at=after.reported_at, after_id=after.id)
    sql = (f"SELECT {EVENT_COLUMNS} FROM event"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY reported_at DESC, id DESC LIMIT :limit")
    rows = list(conn.execute(sa.text(sql), params).mappings())
    following = None
    if len(rows) > limit:
        rows = rows[:limit]
        following = Cursor(rows[-1]["reported_at"], int(rows[-1]["id"]))
    return EventPage(rows, following, total, moment)


def get_event(conn: Connection, event_id: int, *, now: dt.datetime | None = None,
              lock: bool = False) -> RowMapping:
    """One event by id; NotFound when there is none."""
    row = conn.execute(sa.text(
        f"SELECT {EVENT_COLUMNS} FROM event WHERE {BY_ID}" + (" FOR UPDATE" if lock else "")),
        {"id": event_id, "now": now or dt.datetime.now(dt.UTC)}).mappings().first()
    if row is None:
        raise NotFound(f"no event {event_id}")
    return row


def status_history(conn: Connection, event_id: int) -> list[dict[str, Any]]:
    """The event's status changes, oldest first."""
    rows = conn.execute(sa.text(
        """SELECT old_status, new_status, changed_by, changed_at FROM event_status_change
           WHERE event_id = :id ORDER BY id"""), {"id": event_id}).mappings()
    return [{"from": r["old_status"], "to": r["new_status"], "by": r["changed_by"],
             "at": r["changed_at"].isoformat()} for r in rows]
