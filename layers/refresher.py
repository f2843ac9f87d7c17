"""A background thread that recomputes the layer every few minutes in a running service.

Windows slide and pins expire with time alone, with no event arriving: this keeps the colours,
roll-ups and heat current. Each run first creates the event table's coming monthly partitions
(nothing to do on most runs: one catalogue query). Several workers share the work: a run is
skipped when the layer was computed less than half an interval ago (by any process).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

import sqlalchemy as sa

from gis.events.partitions import maintain_partitions
from layers.refresh import refresh_all
from layers.rules import load_rules

log = logging.getLogger(__name__)


class PeriodicRefresh:
    """Runs refresh_all every ``seconds`` on a layer that has been computed once."""

    def __init__(self, engine: sa.Engine, rules_path: Path, seconds: int) -> None:
        self.engine, self.rules_path, self.seconds = engine, rules_path, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="layer-refresh", daemon=True)

    def start(self) -> None:
        """Start the thread (nothing when the interval is 0)."""
        if self.seconds > 0:
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for a run in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def run_once(self) -> bool:
        """One refresh when due (after the event partitions' upkeep); True when it ran."""
        try:
            maintain_partitions(self.engine.begin)
        except sa.exc.SQLAlchemyError:  # the colours matter more; the next run retries
            log.exception("event partition upkeep failed")
        with self.engine.begin() as conn:
            computed: dt.datetime | None = conn.execute(sa.text(
                "SELECT computed_as_of FROM layer_state WHERE id = 1")).scalar_one()
            now = dt.datetime.now(dt.UTC)
            if computed is None or now - computed < dt.timedelta(seconds=self.seconds / 2):
                return False
            result = refresh_all(conn, now, load_rules(self.rules_path))
        log.info("layer refreshed: %s colour changes, %s warnings, %.2f s",
                 result.colour_changes, result.warnings, result.seconds["total"])
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self.run_once()
            except Exception:  # the service goes on; the next run retries
                log.exception("layer refresh failed")
