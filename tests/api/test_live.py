"""GET /api/v1/live: server-sent events from LISTEN layer_version / events, over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from live_server import LiveServer, free_port, serve_app

from api.app import create_app
from api.live_feed import message_for
from api.routes import live
from api.settings import Settings
from gis.settings import PROJECT_ROOT


class Stream:
    """An open event stream read line by line: (event name, data) pairs and comments."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next_event(self, timeout_s: float = 10) -> tuple[str, dict]:
        """The next event (skipping comments), or fail after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        name, data = "message", ""
        for line in self.lines:
            assert time.monotonic() < deadline, "no event in time"
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()
            elif line == "" and data:
                return name, json.loads(data)
        raise AssertionError("the stream ended")


@pytest.fixture(scope="module")
def server(app_settings: Settings) -> Iterator[LiveServer]:
    with serve_app(create_app(app_settings)) as running:
        yield running


def _stream(server: LiveServer) -> Iterator[Stream]:
    with httpx.Client(timeout=httpx.Timeout(10, read=20)) as http, \
            http.stream("GET", server.url + "/api/v1/live") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


def _notify(engine: sa.Engine, channel: str, payload: str) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})
        conn.commit()


def test_hello_then_each_layer_version(server: LiveServer, engine: sa.Engine) -> None:
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT layer_version FROM layer_state")).scalar_one()
    first, second = _stream(server), _stream(server)
    a, b = next(first), next(second)
    assert a.next_event() == ("hello", {"layer_version": version,
                                        "server_time": pytest.approx(time.time(), abs=30)})
    assert b.next_event()[0] == "hello"
    assert server.app.state.live_feed.subscriber_count == 2
    _notify(engine, "layer_version", "41")
    _notify(engine, "layer_version", json.dumps({"layer_version": 42}))
    _notify(engine, "layer_version", "")  # no payload: the feed reads layer_state
    for stream in (a, b):  # every page gets every message, in order
        seen = [stream.next_event() for _ in range(3)]
        assert [(name, data["layer_version"]) for name, data in seen] == [
            ("layer_version", 41), ("layer_version", 42), ("layer_version", version)]
    for generator in (first, second):
        generator.close()
    deadline = time.monotonic() + 10
    while server.app.state.live_feed.subscriber_count:
        assert time.monotonic() < deadline, "a closed page is still subscribed"
        time.sleep(0.05)


def test_event_notifications_carry_no_personal_data(server: LiveServer,
                                                    engine: sa.Engine) -> None:
    generator = _stream(server)
    stream = next(generator)
    assert stream.next_event()[0] == "hello"
    _notify(engine, "events", json.dumps({
        "id": 5, "grid_code": "620102001001008", "category": "劳资欠薪", "source": "12345",
        "reporter_name": "张三", "reporter_phone": "13912345678", "text": "工地拖欠工资"}))
    _notify(engine, "events", "17")
    name, data = stream.next_event()
    assert name == "event"
    assert {k: v for k, v in data.items() if k != "server_time"} == {
        "id": 5, "grid_code": "620102001001008", "category": "劳资欠薪", "source": "12345"}
    assert stream.next_event()[1]["id"] == 17
    generator.close()


def test_idle_streams_get_heartbeat_comments(server: LiveServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "HEARTBEAT_S", 0.3)
    generator = _stream(server)
    stream = next(generator)
    assert stream.next_event()[0] == "hello"
    deadline = time.monotonic() + 5
    for line in stream.lines:
        if line.startswith(":"):
            break
        assert time.monotonic() < deadline
    generator.close()


@pytest.mark.parametrize(("channel", "payload", "event", "data"), [
    ("layer_version", "7", "layer_version", {"layer_version": 7}),
    ("layer_version", "not a number", "layer_version", {"layer_version": None}),
    ("events", "", "event", {}),
    ("events", "[1, 2]", "event", {}),
    ("events", '{"codes": ["620102001001008"], "count": 3, "text": "x"}', "event",
     {"codes": ["620102001001008"], "count": 3}),
])
def test_notification_payloads(channel: str, payload: str, event: str, data: dict) -> None:
    message = message_for(channel, payload, 1.5)
    assert message.event == event
    assert message.data == {**data, "server_time": 1.5}


@pytest.mark.slow
def test_sigterm_with_open_streams_stops_the_service(app_settings: Settings,
                                                     tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "MINQING_DB_URL": app_settings.db.url or ""}
    code = ("import uvicorn; from api.app import create_app; "
            f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                               stdout=(tmp_path / "serve.log").open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.3)
        with httpx.Client(timeout=httpx.Timeout(10, read=20)) as http, \
                http.stream("GET", f"http://127.0.0.1:{port}/api/v1/live") as response:
            stream = Stream(response)
            assert stream.next_event()[0] == "hello"
            process.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            # The stream ends (cleanly or cut) instead of holding the shutdown.
            with pytest.raises((AssertionError, httpx.RemoteProtocolError),
                               match=r"the stream ended|peer closed"):
                stream.next_event(timeout_s=15)
        # uvicorn re-raises SIGTERM once it has shut down (minqing serve turns it into exit 143).
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
        assert time.monotonic() - stopped < 10
        assert "Traceback" not in (tmp_path / "serve.log").read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
