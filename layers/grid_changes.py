"""Boundary changes with their colours: a commit or roll-back recolours in the same transaction.

Only the grids the change touched are recomputed (with their parents): the codes whose rows the
new version opened or closed. Retired codes leave the layer; new ones get their colours; events
only move between touched grids, so no other grid's colour can change. The layer version moves
with the grid version, so no map shows the new boundaries with the old colours.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.grid_change_commit import CommitResult, commit_change, rollback_change
from layers.refresh import RefreshResult, refresh_grids


def commit_and_recolour(conn: Connection, change_id: int, *, author: str) -> CommitResult:
    """Commit a proposal as a new grid version and recolour what it touched (one transaction)."""
    result = commit_change(conn, change_id, author=author)
    recolour_version(conn, result.version)
    return result


def rollback_and_recolour(conn: Connection, change_id: int, *, author: str,
                          reason: str) -> CommitResult:
    """Undo a committed change as a new version and recolour what it touched (one transaction)."""
    result = rollback_change(conn, change_id, author=author, reason=reason)
    recolour_version(conn, result.version)
    return result


def recolour_version(conn: Connection, version: int) -> RefreshResult:
    """Recompute the colours of the grids grid ``version`` opened or closed, and their parents."""
    codes: list[str] = list(conn.execute(sa.text(
        """SELECT DISTINCT code FROM grid WHERE version_low = :v OR version_high = :v"""),
        {"v": version}).scalars())
    conn.execute(sa.text(
        """WITH gone AS (SELECT c FROM unnest(CAST(:codes AS text[])) AS c
                         WHERE NOT EXISTS (SELECT 1 FROM grid_current g WHERE g.code = c)),
                colour AS (DELETE FROM grid_colour WHERE code IN (SELECT c FROM gone))
           DELETE FROM grid_heat WHERE code IN (SELECT c FROM gone)"""), {"codes": codes})
    current: set[str] = set(conn.execute(sa.text(
        "SELECT code FROM grid_current WHERE code = ANY(:codes)"), {"codes": codes}).scalars())
    # A retired grid's parent still changes colour: name it by its own (shorter) code.
    wanted = current | {c[:-3] for c in codes if c not in current and len(c) > 9}
    return refresh_grids(conn, wanted)
