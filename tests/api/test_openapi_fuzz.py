"""schemathesis over the app's own OpenAPI document, in process (ASGI): no 5xx, answers conform.

Bounded and deterministic (derandomized Hypothesis, few examples per operation) so it costs
seconds in the suite. It runs as a planner on the shared city: no generated request can make a
change (there is no stored proposal to commit), and the row counts are checked afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token

WATCHED = ("grid", "grid_version", "grid_change", "event", "api_token")
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = 25
OPERATIONS = 33


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one())
                for t in WATCHED}


@pytest.fixture(scope="module")
def fuzzed_app(app_settings: Settings, engine: Engine) -> Iterator[dict[str, Any]]:
    """The app with its lifespan run, a planner token, and the row counts before fuzzing."""
    with engine.begin() as conn:
        token = issue_token(conn, "fuzz planner", "planner")
    app: FastAPI = create_app(app_settings)
    before = _counts(engine)
    with TestClient(app):
        yield {"app": app, "token": token}
    assert _counts(engine) == before, "a generated request changed stored rows"
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_token WHERE name = 'fuzz planner'"))


def _fuzz(schema: Any, operation: Any, mode: GenerationMode, token: str) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_error_and_answers_conform(mode: GenerationMode,
                                             fuzzed_app: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app["app"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == OPERATIONS  # a new route is fuzzed too; update the count
    fuzzed = 0
    for operation in operations:
        try:
            _fuzz(schema, operation, mode, fuzzed_app["token"])
            fuzzed += 1
        except Unsatisfiable:  # nothing to make invalid (no parameters): nothing to fuzz
            assert mode is GenerationMode.NEGATIVE
    assert fuzzed >= 8
