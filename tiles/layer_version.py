"""Follow ``layer_state.layer_version``: LISTEN layer_version, with a periodic re-read.

The layers code bumps the version (and sends NOTIFY layer_version) whenever colours or heat
change; tiles key their cache on it. The re-read covers notifications missed while the listening
connection was down.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from gis.grid_listener import libpq_url

log = logging.getLogger(__name__)

CHANNEL = "layer_version"
_READ = "SELECT layer_version FROM layer_state WHERE id = 1"


def read_layer_version(conn: psycopg.Connection) -> int:
    """The stored layer version (0 when the state row is missing)."""
    row = conn.execute(_READ).fetchone()
    return int(row[0]) if row else 0


class LayerVersionFollower:
    """Holds the current layer version; a daemon thread keeps it current."""

    def __init__(self, url: str, *, recheck_every_s: float = 15.0,
                 on_change: Callable[[int], None] | None = None) -> None:
        self._url = libpq_url(url)
        self._recheck = recheck_every_s
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="layer-version-listener",
                                        daemon=True)
        self.version = -1  # nothing matches until the first read
        self.connected = threading.Event()

    def start(self) -> None:
        """Read the version now, then follow it in the background."""
        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
            self._set(read_layer_version(conn))
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within about a second)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _set(self, version: int) -> None:
        if version != self.version:
            self.version = version
            if self._on_change is not None:
                self._on_change(version)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    self._set(read_layer_version(conn))  # catch up after a reconnect
                    self._listen(conn)
            except Exception:  # keep following through database outages
                self.connected.clear()
                log.warning("layer version listener lost its connection; retrying",
                            exc_info=True)
                self._stop.wait(2.0)

    def _listen(self, conn: psycopg.Connection) -> None:
        waited = 0.0
        while not self._stop.is_set():
            notified = False
            for _ in conn.notifies(timeout=0.5):
                notified = True
            waited += 0.5
            if notified or waited >= self._recheck:
                waited = 0.0
                self._set(read_layer_version(conn))
