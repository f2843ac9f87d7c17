"""Every request: an id, a body size limit, timing, metrics and a log line for failures.

A plain ASGI middleware (no BaseHTTPMiddleware): it adds a few microseconds to a locate that
takes a few hundred.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("minqing.requests")

REQUESTS = Counter("minqing_http_requests_total", "HTTP requests answered",
                   ["method", "route", "status"])
LATENCY = Histogram("minqing_http_request_seconds", "Time to answer an HTTP request",
                    ["route"], buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5, 1.0, 2.5, 5.0, 10.0))


def _has_nul(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


def _route_template(scope: Scope) -> str:
    # The matched route's path template keeps metric labels few (not one per grid code).
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestGuard:
    """Request id (X-Request-ID in and out), body limit (413), metrics, failure log lines."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = given if given.isprintable() and given else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(send, request_id, 413, "too_large", self._limit_message())
            self._record(scope, 413, started, request_id)
            return
        if _has_nul(scope):  # PostgreSQL text cannot hold NUL: say so before any query
            await self._refuse(send, request_id, 400, "bad_request",
                               "the path or query contains a NUL character (%00)")
            self._record(scope, 400, started, request_id)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:  # a body sent without Content-Length, or lying in it
                    raise HTTPException(413, self._limit_message())
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        finally:
            self._record(scope, status, started, request_id)

    def _limit_message(self) -> str:
        return f"the request body passes the limit of {self.max_body // 2**20} MiB"

    async def _refuse(self, send: Send, request_id: str, status: int, error: str,
                      message: str) -> None:
        body = json.dumps({"error": error, "request_id": request_id,
                           "message": message}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        elapsed = time.perf_counter() - started
        route = _route_template(scope)
        REQUESTS.labels(scope.get("method", ""), route, str(status)).inc()
        LATENCY.labels(route).observe(elapsed)
        if status >= 400:
            entry: dict[str, Any] = {"request_id": request_id, "method": scope.get("method"),
                                     "path": scope.get("path"), "status": status,
                                     "ms": round(elapsed * 1000, 2)}
            (log.error if status >= 500 else log.info)(json.dumps(entry, ensure_ascii=False))
