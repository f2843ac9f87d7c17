"""Every error answer leaves one JSON log line with its request id; bugs never reach the body."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from fastapi.testclient import TestClient

from api.log_format import JsonLogFormatter, logging_config


def _lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, object]]:
    formatter = JsonLogFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


@pytest.mark.parametrize(("method", "path", "params", "status"), [
    ("GET", "/api/v1/locate", {"lon": "36.06", "lat": "103.83"}, 422),
    ("GET", "/api/v1/grids/620102999999999/history", None, 404),
    ("GET", "/api/v1/grid-changes", None, 401),
    ("DELETE", "/api/v1/locate", None, 405),
])
def test_an_error_answer_is_logged_as_json_with_its_request_id(
        client: TestClient, caplog: pytest.LogCaptureFixture, method: str, path: str,
        params: dict[str, str] | None, status: int) -> None:
    with caplog.at_level(logging.INFO, logger="minqing.requests"):
        answer = client.request(method, path, params=params)
    assert answer.status_code == status
    request_id = answer.json()["request_id"]
    lines = [x for x in _lines(caplog, "minqing.requests") if x["request_id"] == request_id]
    assert len(lines) == 1
    assert lines[0]["status"] == status and lines[0]["path"] == path
    assert lines[0]["method"] == method and lines[0]["level"] == "info"
    assert isinstance(lines[0]["ms"], float)


def test_a_good_answer_is_not_logged(client: TestClient,
                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="minqing.requests"):
        answer = client.get("/api/v1/locate", params={"lon": 103.83, "lat": 36.06})
    assert answer.status_code == 200
    assert _lines(caplog, "minqing.requests") == []


def test_plain_messages_and_exceptions_become_fields() -> None:
    formatter = JsonLogFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("gis").makeRecord(
            "gis", logging.ERROR, __file__, 1, "rebuild of v%s failed", (7,), sys.exc_info())
    line = json.loads(formatter.format(record))
    assert line["message"] == "rebuild of v7 failed" and line["level"] == "error"
    assert "ValueError: boom" in line["exception"]
    assert logging_config(True)["formatters"]["service"] == {
        "()": "api.log_format.JsonLogFormatter"}
