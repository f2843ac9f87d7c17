"""An in-memory snapshot of the current grid version: the router index plus what answers need.

Each API process holds one; it is rebuilt when the grid version changes (LISTEN/NOTIFY on the
``grid_version`` channel), and lookups never touch the database.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import Unavailable
from gis.router import GridIndex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridRecord:
    """A grid's identity, without geometry."""

    code: str
    name: str
    level: str
    kind: str
    parent_code: str | None
    district_code: str


@dataclass(frozen=True)
class Gridworker:
    """The gridworker on duty in a small grid (the phone is personal data)."""

    worker_id: str
    name: str
    phone: str


@dataclass(frozen=True)
class GridSnapshot:
    """The current grid version: index over small grids, every grid's record, gridworkers."""

    version: int
    index: GridIndex
    grids: dict[str, GridRecord]
    districts: dict[str, str]
    gridworkers: dict[str, Gridworker]
    built_in_s: float

    def small(self, row: int) -> GridRecord:
        """The record of index row ``row``."""
        return self.grids[self.index.codes[row]]

    def chain(self, small_code: str) -> tuple[GridRecord, GridRecord, GridRecord]:
        """(small, medium, large) for a small grid code: parents follow from the codes."""
        small = self.grids[small_code]
        return small, self.grids[small_code[:12]], self.grids[small_code[:9]]


def load_snapshot(conn: Connection) -> GridSnapshot:
    """Read the current grid version from the store and build the index."""
    started = time.perf_counter()
    version: int = conn.execute(
        sa.text("SELECT coalesce(max(id), 0) FROM grid_version")).scalar_one()
    rows = conn.execute(sa.text(
        """SELECT code, name, level, kind, parent_code, district_code,
                  CASE WHEN level = 'small' THEN ST_AsBinary(geom) END
           FROM grid WHERE version_high IS NULL ORDER BY code""")).all()
    grids = {r[0]: GridRecord(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}
    small = [(r[0], bytes(r[6])) for r in rows if r[2] == "small"]
    index = GridIndex.build_from_wkb([c for c, _ in small], [w for _, w in small], int(version))
    districts: dict[str, str] = dict(conn.execute(sa.text("SELECT code, name FROM district")).all())
    workers = {
        r[1]: Gridworker(r[0], r[2], r[3])
        for r in conn.execute(sa.text(
            """SELECT worker_id, grid_code, name, phone FROM gridworker
               WHERE active = 1 ORDER BY on_duty_since, worker_id"""))
    }
    elapsed = time.perf_counter() - started
    log.info("grid snapshot v%s: %d small grids indexed in %.2f s", version, len(small), elapsed)
    return GridSnapshot(int(version), index, grids, districts, workers, elapsed)


class SnapshotHolder:
    """Holds the process's current snapshot and swaps in a new one when the version changes."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.current: GridSnapshot | None = None
        self.rebuilds = 0

    def refresh(self) -> bool:
        """Rebuild if the stored grid version differs from the held one; True when rebuilt."""
        with self._lock:
            with self._engine.connect() as conn:
                version: int = conn.execute(
                    sa.text("SELECT coalesce(max(id), 0) FROM grid_version")).scalar_one()
                if self.current is not None and self.current.version == version:
                    return False
                snapshot = load_snapshot(conn)
            self.current = snapshot  # one reference swap: readers never see a half-built index
            self.rebuilds += 1
        # The snapshot is ~200k long-lived objects; a full cyclic collection over them stalls
        # every request for ~100 ms. Freezing moves them out of the collector's sight (the old
        # snapshot is still freed by reference counting once the last reader lets go).
        gc.collect()
        gc.freeze()
        return True

    def get(self) -> GridSnapshot:
        """The current snapshot (Unavailable before the first build)."""
        snapshot = self.current
        if snapshot is None:
            raise Unavailable("the grid index is still being built; retry shortly")
        return snapshot
