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


class ChannelListener:
    """A daemon thread following one NOTIFY channel.

    ``on_change(conn)`` runs on the listening connection after each notification, after each
    (re)connect, and every ``recheck_every_s`` seconds in case a notification was missed.
    """

    def __init__(self, url: str, channel: str, on_change: Callable[[psycopg.Connection], None],
                 *, recheck_every_s: float, poll_s: float = 1.0) -> None:
        self._url = libpq_url(url)
        self._channel = channel
        self._on_change = on_change
        self._recheck = recheck_every_s
        self._poll = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{channel}-listener",
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
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self._channel}")  # a name from code, never a user
                    self.connected.set()
                    self.last_failure = None
                    self._on_change(conn)  # catch up with anything missed while disconnected
                    self._listen(conn)
            except Exception as error:  # keep the thread alive through outages
                self.connected.clear()
                self.last_failure = type(error).__name__
                log.warning("%s listener lost its connection; retrying", self._channel,
                            exc_info=True)
                self._stop.wait(2.0)

    def _listen(self, conn: psycopg.Connection) -> None:
        waited = 0.0
        while not self._stop.is_set():
            notified = False
            for _ in conn.notifies(timeout=self._poll):
                notified = True
            waited += self._poll
            if notified or waited >= self._recheck:
                waited = 0.0
                self._on_change(conn)


class GridVersionListener(ChannelListener):
    """Calls ``on_change()`` after each grid-version notification (and every 30 s)."""

    def __init__(self, url: str, on_change: Callable[[], None], *,
                 recheck_every_s: float = 30.0) -> None:
        super().__init__(url, CHANNEL, lambda _conn: on_change(),
                         recheck_every_s=recheck_every_s)
