"""Every case of the bad-input corpus (tests/corpus/*.yaml) against the app on the loaded city.

Each case states the request and the answer it must get: a 4xx status, words the message must
contain, a request id in the body, and (for anything but GET) no row written anywhere.
The format is described in docs/HARDENING.md; adding an endpoint means adding one YAML file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import ApiSettings, Settings
from gis.auth import issue_token, revoke_tokens

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CASE_KEYS = {"id", "method", "path", "query", "json", "body", "content_type", "headers", "auth",
             "body_mb", "stream", "expand", "status", "message", "error", "note", "item_errors"}
ROLES = ("viewer", "command", "gridworker", "planner", "ingest", "admin")
# Tables a refused request must leave as they were (counted before and after each write case).
WATCHED = ("grid", "grid_version", "grid_change", "event", "api_token", "gridworker")
BODY_LIMIT_MB = 1


def _load_cases() -> list[Any]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            unknown = set(case) - CASE_KEYS
            assert not unknown, f"{path.name} {case.get('id')}: unknown keys {unknown}"
            cases.append(pytest.param(case, id=f"{path.stem}:{case['id']}"))
    return cases


CASES = _load_cases()


@pytest.fixture(scope="module")
def corpus_client(app_settings: Settings) -> Iterator[TestClient]:
    """The app on the shared city with a small body limit, so 'huge' stays cheap to send."""
    settings = Settings(api=ApiSettings(max_body_mb=BODY_LIMIT_MB), db=app_settings.db)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(engine: Engine) -> Iterator[dict[str, str]]:
    """A token per role, plus a revoked one; all removed afterwards."""
    with engine.begin() as conn:
        issued = {role: issue_token(conn, f"corpus {role}", role,
                                    "620102001001001" if role == "gridworker" else None)
                  for role in ROLES}
        issued["revoked"] = issue_token(conn, "corpus revoked", "admin")
        revoke_tokens(conn, "corpus revoked")
    issued["unknown"] = "mq_" + "x" * 43
    yield issued
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_token WHERE name LIKE 'corpus %'"))


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in WATCHED}


def _streamed(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), 64 * 1024):  # no Content-Length: chunked transfer
        yield data[start:start + 64 * 1024]


def _request_args(case: dict[str, Any], tokens: dict[str, str]) -> dict[str, Any]:
    headers = dict(case.get("headers") or {})
    if "auth" in case:
        headers["Authorization"] = f"Bearer {tokens[case['auth']]}"
    content: Any = None
    if "json" in case:
        payload = case["json"]
        if "expand" in case:  # one listed item repeated, for oversize batches
            key, times = case["expand"]["key"], case["expand"]["times"]
            payload = {**payload, key: payload[key][:1] * times}
        content = json.dumps(payload, ensure_ascii=False).encode()
        headers.setdefault("Content-Type", "application/json")
    if "body" in case:
        content = str(case["body"]).encode()
    if "body_mb" in case:  # a well-formed batch just over the size
        point = b'{"lon": 103.83, "lat": 36.06},'
        repeats = int(case["body_mb"] * 2**20 / len(point)) + 1
        content = b'{"points": [' + point * repeats + b'{"lon": 103.83, "lat": 36.06}]}'
        headers.setdefault("Content-Type", "application/json")
    if "content_type" in case:
        headers["Content-Type"] = case["content_type"]
    if case.get("stream") and content is not None:
        content = _streamed(content)
    return {"params": case.get("query"), "headers": headers, "content": content}


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_a_clear_4xx(case: dict[str, Any], corpus_client: TestClient,
                                    tokens: dict[str, str], engine: Engine) -> None:
    method = case.get("method", "GET")
    writes = method not in ("GET", "HEAD", "OPTIONS")
    before = _counts(engine) if writes else None
    answer = corpus_client.request(method, case["path"], **_request_args(case, tokens))
    assert answer.status_code < 500, answer.text
    assert answer.status_code == case["status"], answer.text
    body = answer.json()
    if "item_errors" in case:  # a batch answered per point: each bad point says what is wrong
        errors = [r.get("error", "") for r in body["results"]]
        assert len(errors) == len(case["item_errors"])
        for got, words in zip(errors, case["item_errors"], strict=True):
            assert words.lower() in got.lower(), (got, words)
    else:
        assert body["request_id"] == answer.headers["x-request-id"]
        assert case["message"].lower() in body["message"].lower(), body["message"]
    if "error" in case:
        assert body["error"] == case["error"]
    if before is not None:
        assert _counts(engine) == before, "a refused request changed stored rows"


def test_the_corpus_is_large_enough_and_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60
