"""The app served by uvicorn on loopback in a background thread, for browser and stream tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A running app: its base URL and the app object (to read its routes)."""

    def __init__(self, app: FastAPI, server: uvicorn.Server, port: int) -> None:
        self.app, self.server, self.port = app, server, port
        self.url = f"http://127.0.0.1:{port}"
        self.engine: Any = None  # set by fixtures that serve their own database


@contextmanager
def serve_app(app: FastAPI, *, startup_timeout_s: float = 60,
              port: int | None = None) -> Iterator[LiveServer]:
    """Serve ``app`` until the block ends (on ``port`` if given, else a free one); stops
    uvicorn cleanly (open streams included)."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=3)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        assert thread.is_alive(), "the app did not start (see the log above)"
        assert time.monotonic() < deadline, "the app did not start in time"
        time.sleep(0.05)
    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
    try:
        yield LiveServer(app, server, port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        assert not thread.is_alive(), "uvicorn did not stop"
