"""One LISTEN connection per process, fanned out to every connected map page.

The feed listens on ``layer_version`` (colours or heat changed) and ``events`` (an event was
added or changed) and hands each notification to every subscriber's bounded asyncio queue. A
subscriber too slow to keep up gets one ``resync`` message instead of an ever-growing backlog.
Only non-personal fields travel on the feed (it is open to anonymous pages, since a browser's
EventSource cannot send an Authorization header); pages fetch details through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gis.grid_listener import libpq_url

log = logging.getLogger(__name__)

CHANNELS = ("layer_version", "events")
QUEUE_SIZE = 256
# Fields of an ``events`` notification payload that may be shown to anyone.
PUBLIC_EVENT_FIELDS = ("id", "grid_code", "category", "source", "status", "severity", "action",
                       "count", "codes")


@dataclass(frozen=True)
class LiveMessage:
    """One server-sent event: its name and JSON data."""

    event: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """A connected page's queue of messages."""

    queue: asyncio.Queue[LiveMessage | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE))
    lagged: bool = False


def message_for(channel: str, payload: str, received_at: float) -> LiveMessage:
    """The page message for a notification; payloads may be a number, JSON or empty."""
    try:
        parsed: Any = json.loads(payload) if payload else None
    except ValueError:
        parsed = payload
    if channel == "layer_version":
        version = parsed.get("layer_version") if isinstance(parsed, dict) else parsed
        data: dict[str, Any] = {"layer_version": version if isinstance(version, int) else None}
    else:
        data = ({k: parsed[k] for k in PUBLIC_EVENT_FIELDS if k in parsed}
                if isinstance(parsed, dict) else {"id": parsed} if isinstance(parsed, int) else {})
    data["server_time"] = received_at
    return LiveMessage(event="layer_version" if channel == "layer_version" else "event",
                       data=data)


class LiveFeed:
    """The process's listener task and its subscribers."""

    def __init__(self, url: str) -> None:
        self._url = libpq_url(url)
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.layer_version: int | None = None

    async def start(self) -> None:
        """Start listening in the background (reconnects by itself)."""
        self._task = asyncio.create_task(self._run(), name="live-feed")

    async def stop(self) -> None:
        """Stop listening and end every subscriber's stream."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for subscription in list(self._subscribers):
            self._offer(subscription, None)

    def subscribe(self) -> Subscription:
        """A new subscriber; pair with ``unsubscribe``."""
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a subscriber (its page went away)."""
        self._subscribers.discard(subscription)

    @property
    def subscriber_count(self) -> int:
        """How many pages are connected."""
        return len(self._subscribers)

    def publish(self, message: LiveMessage) -> None:
        """Hand a message to every subscriber."""
        for subscription in list(self._subscribers):
            self._offer(subscription, message)

    def _offer(self, subscription: Subscription, message: LiveMessage | None) -> None:
        try:
            subscription.queue.put_nowait(message)
        except asyncio.QueueFull:
            # Too slow a reader: drop its backlog and tell it to reload everything once.
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            subscription.lagged = True
            subscription.queue.put_nowait(
                None if message is None else LiveMessage("resync", {"reason": "lagged"}))

    async def _deliver(self, conn: psycopg.AsyncConnection[Any], channel: str,
                       payload: str) -> None:
        message = message_for(channel, payload, time.time())
        if message.event == "layer_version":
            if message.data["layer_version"] is None:
                row = await (await conn.execute(
                    "SELECT layer_version FROM layer_state WHERE id = 1")).fetchone()
                message.data["layer_version"] = int(row[0]) if row else None
            self.layer_version = message.data["layer_version"]
        self.publish(message)

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                        self._url, autocommit=True, connect_timeout=5) as conn:
                    for channel in CHANNELS:
                        await conn.execute(f"LISTEN {channel}")
                    row = await (await conn.execute(
                        "SELECT layer_version FROM layer_state WHERE id = 1")).fetchone()
                    self.layer_version = int(row[0]) if row else None
                    if self.connected.is_set():  # a reconnect: pages may have missed something
                        self.publish(LiveMessage("resync", {"reason": "reconnected"}))
                    self.connected.set()
                    while True:
                        # Leave the generator before delivering: the version query needs the
                        # connection, which the generator holds while it runs.
                        received = [(n.channel, n.payload) async for n in
                                    conn.notifies(timeout=60.0, stop_after=1)]
                        for channel, payload in received:
                            await self._deliver(conn, channel, payload)
            except asyncio.CancelledError:
                raise
            except Exception:  # keep listening through database restarts
                log.warning("live feed lost its connection; retrying", exc_info=True)
                await asyncio.sleep(2.0)
