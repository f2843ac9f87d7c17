"""What a boundary change would do: events that change owner, areas, gridworkers affected.

Owners are decided by the router's own index (PostGIS `ST_Covers` arithmetic, lowest code on a
shared edge) over the grids the change would leave: the proposed rows plus the untouched grids
around them. Only events owned by a touched grid or inside a proposed geometry can change owner,
so only those are looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.grid_change_proposal import ProposedState
from gis.router import GridIndex
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
    # Change queries are short; compiling them (JIT) costs more than running them.
    conn.execute(sa.text("SET LOCAL jit = off"))
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


# Events owned by a touched grid, and events inside a proposed grid's box: no other event can
# change owner.
_CANDIDATES = sa.text(
    """
    SELECT id, grid_code, status, route, lon, lat FROM event WHERE grid_code = ANY(:touched)
    UNION
    SELECT e.id, e.grid_code, e.status, e.route, e.lon, e.lat
    FROM proposed_grid p JOIN event e ON e.geom && p.geom
    WHERE p.level = 'small'
    """
)
# The untouched small grids around the change: with the proposed ones they decide every owner.
_AROUND = sa.text(
    """
    SELECT code, ST_AsBinary(geom) FROM grid
    WHERE version_high IS NULL AND level = 'small' AND code <> ALL(:touched)
      AND geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)
    """
)


def _local_index(conn: Connection, state: ProposedState,
                 box: tuple[float, float, float, float]) -> GridIndex:
    """The router's own index over the proposed small grids and their untouched neighbours."""
    around = conn.execute(_AROUND, {"touched": state.touched, "x0": box[0], "y0": box[1],
                                    "x1": box[2], "y1": box[3]}).all()
    small = state.grids[state.grids["level"] == "small"]
    codes = [str(c) for c in small["code"]] + [str(r[0]) for r in around]
    geoms = list(small.geometry) + list(shapely.from_wkb([bytes(r[1]) for r in around]))
    return GridIndex.build(codes, geoms, version=0)


def event_moves(conn: Connection, state: ProposedState) -> list[EventMove]:
    """Events whose owner the change alters (``proposed_grid`` must be loaded).

    New owners come from the router's index (PostGIS `ST_Covers` arithmetic, lowest code on an
    edge) over the grids the change would leave. An event placed by hand or by an explicit code
    keeps its grid unless that grid is retired; a snapped one (outside every grid, near one)
    moves only when a proposed grid now covers it.
    """
    rows = conn.execute(_CANDIDATES, {"touched": state.touched}).all()
    if not rows:
        return []
    lon = np.array([np.nan if r.lon is None else r.lon for r in rows], dtype=float)
    lat = np.array([np.nan if r.lat is None else r.lat for r in rows], dtype=float)
    placed = np.isfinite(lon) & np.isfinite(lat)
    covering: list[str | None] = [None] * len(rows)
    if placed.any():
        box = (float(lon[placed].min()), float(lat[placed].min()),
               float(lon[placed].max()), float(lat[placed].max()))
        index = _local_index(conn, state, box)
        owners = index.locate(np.where(placed, lon, 0.0), np.where(placed, lat, 0.0))
        covering = [index.codes[o] if ok and o >= 0 else None
                    for o, ok in zip(owners.tolist(), placed.tolist(), strict=True)]
    retired, gone = set(state.retire), {*state.retire, *state.changed}
    moves = []
    for row, cover, ok in zip(rows, covering, placed.tolist(), strict=True):
        old = row.grid_code
        if row.route in ("given", "manual") or not ok:
            new = None if old in retired else old
        elif row.route == "snapped":
            new = cover or (None if old in gone else old)
        else:
            new = cover
        if new != old:
            moves.append(EventMove(int(row.id), old, new, str(row.status)))
    return sorted(moves, key=lambda m: m.event_id)


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
