"""What a boundary change would do: events that change owner, areas, gridworkers affected.

Owners are decided by PostGIS exactly as the router decides them (`ST_Covers`, lowest code on a
shared edge), over the grids the change would leave: the proposed rows plus every untouched grid.
Only events owned by a touched grid or covered by a proposed geometry can change owner, so only
those are looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.grid_change_proposal import ProposedState
from gis.topology import area_m2

LISTED_MOVES = 1_000
OPEN = ("open", "in_progress")


@dataclass(frozen=True)
class EventMove:
    """One event whose owner the change would alter (new_code None: it would be unrouted)."""

    event_id: int
    old_code: str | None
    new_code: str | None
    status: str


@dataclass
class Impact:
    """The effect of a change, before it is committed."""

    moves: list[EventMove] = field(default_factory=list)
    areas: list[dict[str, Any]] = field(default_factory=list)
    gridworkers: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Counts per old → new grid (open and historical), areas, gridworkers, listed moves."""
        pairs: dict[tuple[str | None, str | None], dict[str, Any]] = {}
        for move in self.moves:
            entry = pairs.setdefault((move.old_code, move.new_code), {
                "from": move.old_code, "to": move.new_code, "open": 0, "historical": 0})
            entry["open" if move.status in OPEN else "historical"] += 1
        open_moves = sum(1 for m in self.moves if m.status in OPEN)
        return {
            "events_moving": len(self.moves),
            "open_events_moving": open_moves,
            "historical_events_moving": len(self.moves) - open_moves,
            "by_grid": sorted(pairs.values(), key=lambda e: (str(e["from"]), str(e["to"]))),
            "events": [{"id": m.event_id, "from": m.old_code, "to": m.new_code,
                        "status": m.status} for m in self.moves[:LISTED_MOVES]],
            "events_listed": min(len(self.moves), LISTED_MOVES),
            "areas": self.areas,
            "gridworkers": self.gridworkers,
        }


def load_proposed(conn: Connection, state: ProposedState) -> None:
    """The proposed rows as the session's temp table ``proposed_grid`` (dropped on commit)."""
    conn.execute(sa.text(
        """CREATE TEMP TABLE IF NOT EXISTS proposed_grid (
               code varchar(15) PRIMARY KEY, level varchar(6) NOT NULL,
               geom geometry(MultiPolygon, 4326) NOT NULL) ON COMMIT DROP"""))
    conn.execute(sa.text("TRUNCATE proposed_grid"))
    rows = [{"code": str(r.code), "level": str(r.level), "wkb": shapely.to_wkb(r.geometry)}
            for r in state.grids.itertuples()]
    if rows:
        conn.execute(sa.text("INSERT INTO proposed_grid VALUES "
                             "(:code, :level, ST_Multi(ST_GeomFromWKB(:wkb, 4326)))"), rows)
    conn.execute(sa.text("ANALYZE proposed_grid"))


# An event placed by hand or by an explicit code keeps its grid unless the grid is retired.
# A snapped event (outside every grid, near one) moves only if a proposed grid now covers it.
_OWNERS = sa.text(
    """
    WITH candidate AS (
        SELECT id FROM event WHERE grid_code = ANY(:touched)
        UNION
        SELECT e.id FROM proposed_grid p
        JOIN event e ON e.geom && p.geom AND ST_Covers(p.geom, e.geom)
        WHERE p.level = 'small'
    ), owner AS (
        SELECT e.id, e.grid_code AS old_code, e.status, e.route,
               (SELECT min(c.code) FROM (
                    SELECT p.code FROM proposed_grid p
                    WHERE p.level = 'small' AND p.geom && e.geom AND ST_Covers(p.geom, e.geom)
                    UNION ALL
                    SELECT g.code FROM grid g
                    WHERE g.version_high IS NULL AND g.level = 'small'
                      AND g.code <> ALL(:touched) AND g.geom && e.geom
                      AND ST_Covers(g.geom, e.geom)) AS c) AS covering
        FROM event e JOIN candidate USING (id)
    )
    SELECT id, old_code, status,
           CASE WHEN route IN ('given', 'manual') OR geom_missing THEN
                    CASE WHEN old_code = ANY(:retired) THEN NULL ELSE old_code END
                WHEN route = 'snapped' THEN
                    coalesce(covering, CASE WHEN old_code = ANY(:gone) THEN NULL ELSE old_code END)
                ELSE covering END AS new_code
    FROM (SELECT o.*, e.geom IS NULL AS geom_missing FROM owner o JOIN event e USING (id)) AS x
    ORDER BY id
    """
)


def event_moves(conn: Connection, state: ProposedState) -> list[EventMove]:
    """Events whose owner the change alters (``proposed_grid`` must be loaded)."""
    rows = conn.execute(_OWNERS, {"touched": state.touched, "retired": state.retire,
                                  "gone": [*state.retire, *state.changed]}).all()
    return [EventMove(int(r.id), r.old_code, r.new_code, str(r.status))
            for r in rows if r.old_code != r.new_code]


def area_changes(state: ProposedState) -> list[dict[str, Any]]:
    """Area before and after, m², of each touched grid."""
    scope = state.scope
    before: dict[str, float] = {}
    if scope is not None and not scope.empty:
        before = dict(zip(scope["code"].astype(str),
                          area_m2(scope.geometry.to_numpy()).round(1), strict=True))
    after = dict(zip(state.grids["code"].astype(str),
                     area_m2(state.grids.geometry.to_numpy()).round(1), strict=True))
    return [{"code": code, "before_m2": before.get(code), "after_m2": after.get(code)}
            for code in state.touched]


def affected_gridworkers(conn: Connection, state: ProposedState) -> list[dict[str, str]]:
    """Gridworkers of the touched grids (names only: phones are not part of a preview)."""
    rows = conn.execute(sa.text(
        "SELECT worker_id, name, grid_code FROM gridworker "
        "WHERE active = 1 AND grid_code = ANY(:codes) ORDER BY grid_code, worker_id"),
        {"codes": state.touched}).all()
    return [{"worker_id": r.worker_id, "name": r.name, "grid_code": r.grid_code} for r in rows]


def preview(conn: Connection, state: ProposedState) -> Impact:
    """The impact of a checked proposal, computed in the caller's transaction."""
    load_proposed(conn, state)
    return Impact(moves=event_moves(conn, state), areas=area_changes(state),
                  gridworkers=affected_gridworkers(conn, state))
