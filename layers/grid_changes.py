"""Boundary changes with their colours: a commit or roll-back recolours in the same transaction.

New and reshaped grids get their colours, retired ones lose theirs, and the layer version moves
with the grid version, so no map shows the new boundaries with the old colours.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from gis.grid_change_commit import CommitResult, commit_change, rollback_change
from layers.refresh import refresh_all


def commit_and_recolour(conn: Connection, change_id: int, *, author: str) -> CommitResult:
    """Commit a proposal as a new grid version and recompute the colours (one transaction)."""
    result = commit_change(conn, change_id, author=author)
    refresh_all(conn)
    return result


def rollback_and_recolour(conn: Connection, change_id: int, *, author: str,
                          reason: str) -> CommitResult:
    """Undo a committed change as a new version and recompute the colours (one transaction)."""
    result = rollback_change(conn, change_id, author=author, reason=reason)
    refresh_all(conn)
    return result
