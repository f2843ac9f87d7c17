"""Live updates for the map pages: server-sent events from PostgreSQL LISTEN/NOTIFY.

``GET /api/v1/live`` streams ``hello`` (the layer version now), then ``layer_version`` when
colours or heat change, ``event`` when an event is added or changed, and ``resync`` when the
page should reload everything (reconnect, or it fell behind). A comment line every 15 s keeps
proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.live_feed import LiveFeed, Subscription

HEARTBEAT_S = 15.0
# A page told "hello" sees every later change: hello waits (this long at most) for the LISTEN.
LISTEN_WAIT_S = 5.0
# How long a browser waits before reconnecting after the stream drops.
RETRY_MS = 3000


@asynccontextmanager
async def live_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run one live feed per process while the app runs (after the main lifespan set up)."""
    feed = LiveFeed(app.state.database.url)
    await feed.start()
    app.state.live_feed = feed
    try:
        yield
    finally:
        await feed.stop()


router = APIRouter(prefix="/api/v1", tags=["live"], lifespan=live_lifespan)


async def _stream(request: Request, feed: LiveFeed,
                  subscription: Subscription) -> AsyncIterator[ServerSentEvent]:
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(feed.connected.wait(), LISTEN_WAIT_S)
        yield ServerSentEvent(event="hello", retry=RETRY_MS, data=json.dumps(
            {"layer_version": feed.layer_version, "server_time": time.time()}))
        while True:
            message = await subscription.queue.get()
            if message is None:  # the app is stopping
                return
            subscription.lagged = False
            data: dict[str, Any] = message.data
            if message.event == "layer_version":
                data = {**data, "sent_time": time.time()}
            yield ServerSentEvent(event=message.event, data=json.dumps(data, ensure_ascii=False))
    except asyncio.CancelledError:
        raise
    finally:
        feed.unsubscribe(subscription)


@router.get("/live", summary="Server-sent events: layer version changes and new events",
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "hello, layer_version, event and resync messages"}})
async def live(request: Request) -> EventSourceResponse:
    """A text/event-stream of hello, layer_version, event and resync messages (no personal data)."""
    feed: LiveFeed = request.app.state.live_feed
    subscription = feed.subscribe()
    return EventSourceResponse(_stream(request, feed, subscription), ping=HEARTBEAT_S,
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
