"""Follow ``layer_state.layer_version``: LISTEN layer_version, with a periodic re-read.

The layers code bumps the version (and sends NOTIFY layer_version) whenever colours or heat
change; tiles key their cache on it. The re-read covers notifications missed while the listening
connection was down.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from gis.grid_listener import ChannelListener, libpq_url

CHANNEL = "layer_version"
_READ = "SELECT layer_version FROM layer_state WHERE id = 1"


def read_layer_version(conn: psycopg.Connection) -> int:
    """The stored layer version (0 when the state row is missing)."""
    row = conn.execute(_READ).fetchone()
    return int(row[0]) if row else 0


class LayerVersionFollower:
    """Holds the current layer version; a listener thread keeps it current."""

    def __init__(self, url: str, *, recheck_every_s: float = 15.0,
                 on_change: Callable[[int], None] | None = None) -> None:
        self._url = libpq_url(url)
        self._on_change = on_change
        self._listener = ChannelListener(
            url, CHANNEL, lambda conn: self._set(read_layer_version(conn)),
            recheck_every_s=recheck_every_s, poll_s=0.5)
        self.version = -1  # nothing matches until the first read
        self.connected = self._listener.connected

    def start(self) -> None:
        """Read the version now, then follow it in the background."""
        with psycopg.connect(self._url, autocommit=True, connect_timeout=5) as conn:
            self._set(read_layer_version(conn))
        self._listener.start()

    def stop(self) -> None:
        """Stop the thread (within about a second)."""
        self._listener.stop()

    def _set(self, version: int) -> None:
        if version != self.version:
            self.version = version
            if self._on_change is not None:
                self._on_change(version)
