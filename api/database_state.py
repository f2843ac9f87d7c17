"""Whether this worker reaches its database, as its grid-version listener sees it.

The listener holds one connection open all the time and notices within about a second when the
server goes away; requests read its state instead of probing the database themselves. While it
is down, locate answers from the in-memory index, flagged as degraded.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

DEGRADED_HEADER = "X-Minqing-Degraded"


def database_down(request: Request) -> bool:
    """True while this worker's listener has no connection to the database."""
    listener = getattr(request.app.state, "listener", None)
    return listener is not None and not listener.connected.is_set()


def degraded_headers(request: Request, body: dict[str, Any]) -> dict[str, str]:
    """Set ``body["degraded"]`` and return the header that flags an answer from memory only."""
    down = database_down(request)
    body["degraded"] = down
    if not down:
        return {}
    return {DEGRADED_HEADER: "database unavailable; answered from the in-memory grid index"}
