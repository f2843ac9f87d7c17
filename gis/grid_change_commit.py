"""Store, commit and roll back boundary changes, each commit a new grid version.

A commit runs in one transaction: it takes the change lock, refuses a proposal drawn on an older
version (optimistic concurrency), closes the touched rows (kept with their validity period), opens
the proposed ones, re-routes the open events whose owner changes, records who, when and why, and
notifies every worker (router index and tile caches follow NOTIFY grid_version). A failure
anywhere rolls the whole commit back: the old boundaries stay in force.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import Conflict, InvalidInput, NotFound
from gis.events.query import BY_ID
from gis.grid_change_impact import OPEN, Impact, event_moves, preview
from gis.grid_change_proposal import (
    ProposedState,
    current_version,
    grids_from_geojson,
    propose_state,
    rejected,
)
from gis.grid_import import GRID_COLUMNS, insert_grids, upsert_districts

_CHANGE_LOCK = 7507_0001  # pg_advisory_xact_lock key: one boundary commit at a time


@dataclass(frozen=True)
class CommitResult:
    """What a commit did."""

    change_id: int
    version: int
    closed: int
    opened: int
    events_moved: int
    became_unrouted: int
    became_routed: int

    def to_json(self) -> dict[str, Any]:
        """The API's answer."""
        return dict(self.__dict__)


def store_proposal(conn: Connection, state: ProposedState, impact: Impact, *, base_version: int,
                   reason: str, author: str, rollback_of: int | None = None) -> int:
    """Keep a checked proposal with its impact; returns its id."""
    features = json.loads(state.grids[[*GRID_COLUMNS, "geometry"]].to_json(drop_id=True))
    return int(conn.execute(sa.text(
        """INSERT INTO grid_change (kind, base_version, reason, proposed_by, features, retire,
                                    touched, impact, rollback_of)
           VALUES (:kind, :base, :reason, :author, CAST(:features AS jsonb), :retire, :touched,
                   CAST(:impact AS jsonb), :rollback_of)
           RETURNING id"""),
        {"kind": "rollback" if rollback_of else state.kind, "base": base_version,
         "reason": reason, "author": author, "features": json.dumps(features["features"]),
         "retire": state.retire, "touched": state.touched,
         "impact": json.dumps(impact.to_json()), "rollback_of": rollback_of}).scalar_one())


def propose(conn: Connection, grids: gpd.GeoDataFrame, retire: list[str], *, base_version: int,
            reason: str, author: str) -> tuple[int, ProposedState, Impact]:
    """Check a proposal, preview its impact and store it (ProposalRejected: nothing stored)."""
    if not reason.strip():
        raise InvalidInput("a boundary change needs a reason")
    _check_base(conn, base_version)
    state = propose_state(conn, grids, retire)
    if state.faults:
        raise rejected(state)
    impact = preview(conn, state)
    change_id = store_proposal(conn, state, impact, base_version=base_version, reason=reason,
                               author=author)
    return change_id, state, impact


def _versions_since(conn: Connection, base: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.text(
        "SELECT id, author, reason, summary, created_at FROM grid_version WHERE id > :base "
        "ORDER BY id"), {"base": base}).all()
    return [{"version": r.id, "author": r.author, "reason": r.reason, "summary": r.summary,
             "at": r.created_at.isoformat()} for r in rows]


def _check_base(conn: Connection, base_version: int) -> None:
    now = current_version(conn)
    if base_version != now:
        since = _versions_since(conn, base_version)
        told = "; ".join(f"version {v['version']} by {v['author']}: {v['reason']}"
                         for v in since)
        raise Conflict(
            f"this change was drawn on grid version {base_version}, but version {now} is in "
            f"force now ({told or 'the base version does not exist'}); redraw it on {now}",
            details={"base_version": base_version, "current_version": now, "since": since})


def _change_row(conn: Connection, change_id: int, *, lock: bool = False) -> Any:
    row = conn.execute(sa.text(
        "SELECT * FROM grid_change WHERE id = :id" + (" FOR UPDATE" if lock else "")),
        {"id": change_id}).mappings().first()
    if row is None:
        raise NotFound(f"no boundary change {change_id}")
    return row


def commit_change(conn: Connection, change_id: int, *, author: str,
                  now: dt.datetime | None = None) -> CommitResult:
    """Apply a stored proposal as a new grid version (run inside ``engine.begin()``)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHANGE_LOCK})
    change = _change_row(conn, change_id, lock=True)
    if change["status"] != "proposed":
        raise Conflict(f"boundary change {change_id} is {change['status']}, not proposed")
    _check_base(conn, int(change["base_version"]))
    grids = grids_from_geojson(change["features"])
    state = propose_state(conn, grids, list(change["retire"]))
    if state.faults:  # same version as when checked, so only a changed rule could get here
        raise rejected(state)
    valid_from = now or dt.datetime.now(dt.UTC)
    version = int(conn.execute(sa.text(
        """INSERT INTO grid_version (valid_from, author, reason, summary)
           VALUES (:at, :author, :reason, :summary) RETURNING id"""),
        {"at": valid_from, "author": author, "reason": change["reason"],
         "summary": f"change {change_id} ({state.kind}): {len(state.added)} added, "
                    f"{len(state.changed)} changed, {len(state.retire)} retired"}).scalar_one())
    preview(conn, state)  # loads proposed_grid; owners are computed before the rows move
    moves = [m for m in event_moves(conn, state) if m.status in OPEN]
    closed = conn.execute(sa.text(
        """UPDATE grid SET version_high = :v, valid_to = :at
           WHERE code = ANY(:codes) AND version_high IS NULL"""),
        {"v": version, "at": valid_from, "codes": [*state.changed, *state.retire]}).rowcount
    upsert_districts(conn, state.grids)
    insert_grids(conn, state.grids, version, valid_from)
    unrouted, routed = _reroute(conn, moves, version, change_id, int(change["base_version"]))
    conn.execute(sa.text(
        """UPDATE grid_change SET status = 'committed', committed_version = :v,
                  committed_by = :author, committed_at = :at WHERE id = :id"""),
        {"v": version, "author": author, "at": valid_from, "id": change_id})
    conn.execute(sa.text("SELECT pg_notify('grid_version', :v)"), {"v": str(version)})
    return CommitResult(change_id, version, closed, len(state.grids), len(moves), unrouted, routed)


def _reroute(conn: Connection, moves: list[Any], version: int, change_id: int,
             base: int) -> tuple[int, int]:
    """Move the open events to their new owners and record the run; (unrouted, routed)."""
    unrouted = sum(1 for m in moves if m.new_code is None)
    routed = sum(1 for m in moves if m.old_code is None and m.new_code is not None)
    open_events = int(conn.execute(sa.text(
        "SELECT count(*) FROM event WHERE status = ANY(:open)"), {"open": list(OPEN)}).scalar_one())
    reroute_id = int(conn.execute(sa.text(
        """INSERT INTO event_reroute (from_versions, to_version, open_events, moved, unchanged,
                                      became_unrouted, became_routed)
           VALUES (:from_v, :v, :open, :moved, :unchanged, :unrouted, :routed) RETURNING id"""),
        {"from_v": [base], "v": version, "open": open_events, "moved": len(moves),
         "unchanged": open_events - len(moves), "unrouted": unrouted, "routed": routed}
    ).scalar_one())
    if not moves:
        return unrouted, routed
    params = [{"id": m.event_id, "old": m.old_code, "new": m.new_code} for m in moves]
    conn.execute(sa.text(
        f"""INSERT INTO event_reroute_move (reroute_id, event_id, old_code, new_code, old_version)
           SELECT :rid, id, :old, :new, grid_version FROM event WHERE {BY_ID}"""),
        [{**p, "rid": reroute_id} for p in params])
    conn.execute(sa.text(
        f"""UPDATE event SET grid_code = CAST(:new AS varchar(15)), grid_version = :v,
                  updated_at = now(),
                  route = CASE WHEN CAST(:new AS varchar(15)) IS NULL THEN 'unrouted'
                               WHEN route = 'unrouted' THEN 'exact' ELSE route END,
                  route_note = :note
           WHERE {BY_ID}"""),
        [{**p, "v": version, "note": f"re-routed by boundary change {change_id}"
          + ("" if p["new"] else ": no grid covers it any more")} for p in params])
    return unrouted, routed


def rollback_change(conn: Connection, change_id: int, *, author: str,
                    reason: str) -> CommitResult:
    """Undo a committed change as a new change and version (history kept)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHANGE_LOCK})
    change = _change_row(conn, change_id, lock=True)
    if change["status"] != "committed":
        raise Conflict(f"boundary change {change_id} is {change['status']}: only a committed "
                       "change can be rolled back")
    version = int(change["committed_version"])
    later = [str(r[0]) for r in conn.execute(sa.text(
        """SELECT code FROM grid WHERE code = ANY(:codes) AND version_high IS NULL
             AND version_low > :v ORDER BY code"""),
        {"codes": list(change["touched"]), "v": version})]
    if later:
        raise Conflict(f"grid(s) {', '.join(later)} changed again after boundary change "
                       f"{change_id}; roll back the later change first")
    restored = gpd.read_postgis(sa.text(
        """SELECT g.code, g.parent_code, g.name, g.level, g.kind, g.district_code,
                  d.name AS district_name, g.geom
           FROM grid g JOIN district d ON d.code = g.district_code
           WHERE g.version_high = :v AND g.code = ANY(:codes) ORDER BY g.code"""),
        conn, geom_col="geom", params={"v": version, "codes": list(change["touched"])})
    restored = restored.rename_geometry("geometry")
    added = [str(r[0]) for r in conn.execute(sa.text(
        """SELECT code FROM grid WHERE version_low = :v AND code = ANY(:codes)
             AND code <> ALL(:restored) ORDER BY code"""),
        {"v": version, "codes": list(change["touched"]),
         "restored": list(restored["code"])})]
    base = current_version(conn)
    state = propose_state(conn, restored[[*GRID_COLUMNS, "geometry"]], list(added))
    if state.faults:
        raise rejected(state)
    impact = preview(conn, state)
    undo_id = store_proposal(conn, state, impact, base_version=base, reason=reason,
                             author=author, rollback_of=change_id)
    result = commit_change(conn, undo_id, author=author)
    conn.execute(sa.text("UPDATE grid_change SET status = 'rolled_back', rolled_back_by = :u "
                         "WHERE id = :id"), {"u": undo_id, "id": change_id})
    return result
