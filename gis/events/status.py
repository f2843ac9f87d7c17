"""Change an event: its status (allowed transitions, each recorded) or, by hand, its grid."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.auth import Caller, Role
from gis.errors import Conflict, Forbidden, InvalidInput
from gis.events.query import BY_ID, get_event
from gis.events.vocabulary import STATUSES, TRANSITIONS
from gis.grid_snapshot import GridSnapshot


@dataclass
class EventUpdate:
    """What an update changed, and the small grids whose counts it alters."""

    status_changed: bool = False
    placed: bool = False
    touched: set[str] = field(default_factory=set)


def _check_status(old: str, new: str) -> None:
    if new not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)} (got {new!r})")
    if new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "none: closed is final"
        raise Conflict(f"an event that is {old} cannot become {new} (allowed: {allowed})",
                       details={"from": old, "to": new, "allowed": sorted(TRANSITIONS[old])})


def update_event(conn: Connection, snapshot: GridSnapshot, event_id: int, caller: Caller, *,
                 status: str | None = None, grid_code: str | None = None,
                 now: dt.datetime | None = None) -> EventUpdate:
    """Apply a status change and/or a placement by hand, in the caller's transaction."""
    if status is None and grid_code is None:
        raise InvalidInput("nothing to change: give status and/or grid_code")
    event = get_event(conn, event_id, lock=True, now=now)
    own_grid = caller.grid_code is not None and caller.grid_code == event["grid_code"]
    if caller.role is Role.GRIDWORKER and not own_grid:
        raise Forbidden(f"event {event_id} is not in your grid ({caller.grid_code or 'none'})")
    update = EventUpdate()
    if grid_code is not None:
        if not caller.places_events:
            raise Forbidden(f"role {caller.role.value} may not place events by hand "
                            "(needs admin)")
        record = snapshot.grids.get(grid_code)
        if record is None or record.level != "small":
            raise InvalidInput(f"grid_code {grid_code!r} is not a current small grid")
        was = event["grid_code"] or f"unrouted: {event['route_note'] or 'no grid'}"
        conn.execute(sa.text(
            f"""UPDATE event SET grid_code = :code, grid_version = :v, route = 'manual',
                       route_note = :note, snap_distance_m = NULL, updated_at = now()
                WHERE {BY_ID}"""),
            {"code": grid_code, "v": snapshot.version, "id": event_id,
             "note": f"placed by hand by {caller.name} (was {event['route']} {was})"})
        update.placed = True
        update.touched.update(c for c in (event["grid_code"], grid_code) if c)
    if status is not None and status != event["status"]:
        _check_status(str(event["status"]), status)
        conn.execute(sa.text(f"UPDATE event SET status = :s, updated_at = now() WHERE {BY_ID}"),
                     {"s": status, "id": event_id})
        conn.execute(sa.text(
            """INSERT INTO event_status_change (event_id, old_status, new_status, changed_by)
               VALUES (:id, :old, :new, :by)"""),
            {"id": event_id, "old": event["status"], "new": status, "by": caller.name})
        update.status_changed = True
        if event["grid_code"]:
            update.touched.add(str(event["grid_code"]))
        if grid_code:
            update.touched.add(grid_code)
    return update
