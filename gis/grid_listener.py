"""Keep a process's grid snapshot current: LISTEN on ``grid_version`` and rebuild on change.

Every API worker runs one listener thread, so a boundary commit reaches all of them. A periodic
version check covers notifications missed while the listener was reconnecting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "grid_version"


def libpq_url(sqlalchemy_url: str) -> str:
    """The psycopg/libpq form of a SQLAlchemy URL."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


class GridVersionListener:
    """A daemon thread calling ``on_change()`` after each grid-version notification."""

    def __init__(self, url: str, on_change: Callable[[], None], *,
                 recheck_every_s: float = 30.0) -> None:
        self._url = libpq_url(url)
        self._on_change = on_change
        self._recheck = recheck_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="grid-version-listener",
                                        daemon=True)
        self.connected = threading.Event()
        # Why the last connection attempt or LISTEN failed (exception class only: no DSN text).
        self.last_failure: str | None = None

    def start(self) -> None:
        """Start listening in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within about a second)."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self.last_failure = None
                    self._on_change()  # catch up with anything missed while disconnected
                    self._listen(conn)
            except Exception as error:  # keep the thread alive through outages
                self.connected.clear()
                self.last_failure = type(error).__name__
                log.warning("grid version listener lost its connection; retrying", exc_info=True)
                self._stop.wait(2.0)

    def _listen(self, conn: psycopg.Connection) -> None:
        waited = 0.0
        while not self._stop.is_set():
            notified = False
            for _ in conn.notifies(timeout=1.0):
                notified = True
            waited += 1.0
            if notified or waited >= self._recheck:
                waited = 0.0
                self._on_change()
