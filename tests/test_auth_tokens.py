"""Tokens: issued hashed, checked per role (a gridworker's names its grid), revoked for good."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from gis.auth import Role, caller_for_token, issue_token, revoke_tokens
from gis.errors import InvalidInput, NotFound


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection whose writes are rolled back afterwards."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


def test_a_token_is_stored_only_as_its_hash_and_names_its_caller(conn: Connection) -> None:
    token = issue_token(conn, "东岗网格员", "gridworker", "620102001001001")
    stored = conn.execute(sa.text("SELECT token_sha256 FROM api_token WHERE name = '东岗网格员'"
                                  )).scalar_one()
    assert token not in stored and len(stored) == 64
    caller = caller_for_token(conn, token)
    assert caller is not None
    assert (caller.role, caller.grid_code, caller.verified) == (
        Role.GRIDWORKER, "620102001001001", True)
    assert revoke_tokens(conn, "东岗网格员") == 1
    assert caller_for_token(conn, token) is None
    with pytest.raises(NotFound, match="no live token"):
        revoke_tokens(conn, "东岗网格员")


@pytest.mark.parametrize(("role", "grid", "words"), [
    ("superuser", None, "unknown role 'superuser'"),
    ("anonymous", None, "not a role a token can have"),
    ("gridworker", None, "needs the small grid it works"),
    ("gridworker", "620102001001", "is not a small grid in force"),
    ("gridworker", "620102999999999", "is not a small grid in force"),
    ("viewer", "620102001001001", "only gridworker tokens name a grid"),
])
def test_wrong_roles_and_grids_are_refused(conn: Connection, role: str, grid: str | None,
                                           words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        issue_token(conn, "someone", role, grid)
    assert conn.execute(sa.text("SELECT count(*) FROM api_token WHERE name = 'someone'")
                        ).scalar_one() == 0
