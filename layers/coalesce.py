"""Refreshes after ingest, coalesced: requests that arrive while one refresh runs share the next.

Each ingest request asks for its grids to be refreshed once its events are committed, and
returns when they have been. Refreshes are serialised anyway (``refresh.REFRESH_LOCK``), so
instead of queueing one refresh per request behind the lock, the requests that arrive while a
refresh runs pool their grids, and one of them (the first to find no refresh running) refreshes
them all in one ``refresh_grids`` call: a lone event is refreshed at once, a burst costs what a
batch does per event. The same idea as a database's group commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from layers.refresh import refresh_grids
from layers.rules import load_rules

log = logging.getLogger(__name__)


@dataclass
class CoalesceStats:
    """Requests asked and refreshes run since start (rounds < requests: grids were pooled)."""

    requests: int = 0
    rounds: int = 0
    failed_rounds: int = 0


class GridRefresher:
    """Refreshes the grids of committed events for the requests of one process."""

    def __init__(self, engine: sa.Engine, rules_path: Path | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> None:
        self.engine, self.rules_path, self.clock = engine, rules_path, clock
        self.stats = CoalesceStats()
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._running = False
        self._next_round = 1  # the round that will take the grids pending now
        self._done_round = 0  # the last round finished

    @property
    def pending(self) -> int:
        """Grids waiting for the next round."""
        with self._cond:
            return len(self._pending)

    def refresh(self, codes: Iterable[str]) -> None:
        """Return once a refresh that started after this call has covered ``codes``.

        A failed refresh is logged, not raised: the events are stored, and the periodic full
        refresh colours them.
        """
        wanted = {c for c in codes if c}
        if not wanted:
            return
        with self._cond:
            self.stats.requests += 1
            self._pending |= wanted
            mine = self._next_round
            while self._done_round < mine and self._running:
                self._cond.wait()
            if self._done_round >= mine:
                return  # another request's round took these grids
            self._running = True
            take, self._pending = self._pending, set()
            self._next_round += 1
        failed = False
        try:
            with self.engine.begin() as conn:
                refresh_grids(conn, sorted(take), self.clock() if self.clock else None,
                              load_rules(self.rules_path))
        except Exception:  # the events are stored; colours catch up at the next refresh
            failed = True
            log.exception("layer refresh after ingest failed for %d grids", len(take))
        finally:
            with self._cond:
                self._running = False
                self._done_round = mine
                self.stats.rounds += 1
                self.stats.failed_rounds += int(failed)
                self._cond.notify_all()
