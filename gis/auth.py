"""Roles and API tokens: who may see what. Tokens are random, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import InvalidInput, NotFound


class Role(StrEnum):
    """What a caller is; anonymous callers have no token."""

    ANONYMOUS = "anonymous"
    VIEWER = "viewer"
    GRIDWORKER = "gridworker"
    PLANNER = "planner"
    # Command-centre staff: everything a viewer sees, and they pin grid colours.
    COMMAND = "command"
    INGEST = "ingest"
    ADMIN = "admin"


# Gridworker phones are for staff who dispatch or work grids, not the public or machine clients.
SEES_GRIDWORKER_PHONE = frozenset({Role.VIEWER, Role.GRIDWORKER, Role.PLANNER, Role.COMMAND,
                                   Role.ADMIN})

# Events. Machine clients of the source systems (ingest), gridworkers and admins post events;
# staff list them; status changes come from the source systems, gridworkers (their own grid)
# and admins; only admins place an event on a grid by hand.
POSTS_EVENTS = frozenset({Role.INGEST, Role.GRIDWORKER, Role.ADMIN})
LISTS_EVENTS = frozenset({Role.VIEWER, Role.PLANNER, Role.GRIDWORKER, Role.ADMIN})
CHANGES_EVENT_STATUS = frozenset({Role.INGEST, Role.GRIDWORKER, Role.ADMIN})
PLACES_EVENTS = frozenset({Role.ADMIN})
# Reporter contact (name and phone) and complaint text: admins everywhere, a gridworker for the
# events of their own grid (see Caller.sees_event_personal_data); command-centre viewers read
# the text and a masked phone but never the name; planners see neither.
SEES_EVENT_PERSONAL_DATA = frozenset({Role.ADMIN})
SEES_EVENT_TEXT = frozenset({Role.ADMIN, Role.VIEWER})
SEES_MASKED_REPORTER_PHONE = frozenset({Role.VIEWER})


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a request."""

    role: Role
    name: str = "anonymous"
    grid_code: str | None = None
    # False when a token was given but could not be checked (database down): treated as
    # anonymous where anonymous callers may go, refused with 503 where a role is needed.
    verified: bool = True

    @property
    def sees_gridworker_phone(self) -> bool:
        """Whether gridworker phone numbers are shown unmasked."""
        return self.role in SEES_GRIDWORKER_PHONE

    @property
    def places_events(self) -> bool:
        """Whether the caller may place an event on a grid by hand."""
        return self.role in PLACES_EVENTS

    def sees_event_personal_data(self, grid_code: str | None) -> bool:
        """Whether reporter name, phone and text of an event in ``grid_code`` are shown."""
        if self.role in SEES_EVENT_PERSONAL_DATA:
            return True
        return (self.role is Role.GRIDWORKER and self.grid_code is not None
                and self.grid_code == grid_code)

    def sees_event_text(self, grid_code: str | None) -> bool:
        """Whether the complaint text of an event in ``grid_code`` is shown."""
        return self.role in SEES_EVENT_TEXT or self.sees_event_personal_data(grid_code)

    @property
    def sees_masked_reporter_phone(self) -> bool:
        """Whether the reporter's phone is shown masked (when not shown in full)."""
        return self.role in SEES_MASKED_REPORTER_PHONE


ANONYMOUS = Caller(role=Role.ANONYMOUS)
UNVERIFIED = Caller(role=Role.ANONYMOUS, name="unverified token", verified=False)


def mask_phone(phone: str) -> str:
    """138****1234: the first three and last four digits, the rest hidden."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(conn: Connection, name: str, role: str, grid_code: str | None = None) -> str:
    """Create a token for ``name`` with ``role``; the clear token is returned once, never stored."""
    try:
        parsed = Role(role)
    except ValueError as exc:
        allowed = ", ".join(r.value for r in Role if r is not Role.ANONYMOUS)
        raise InvalidInput(f"unknown role {role!r}; roles are {allowed}") from exc
    if parsed is Role.ANONYMOUS:
        raise InvalidInput("anonymous is not a role a token can have")
    if not name.strip():
        raise InvalidInput("a token needs the name of who (or which system) holds it")
    _check_grid(conn, parsed, grid_code)
    token = "mq_" + secrets.token_urlsafe(32)
    conn.execute(
        sa.text("""INSERT INTO api_token (name, role, grid_code, token_sha256)
                   VALUES (:name, :role, :grid_code, :digest)"""),
        {"name": name, "role": parsed.value, "grid_code": grid_code, "digest": _digest(token)},
    )
    return token


def _check_grid(conn: Connection, role: Role, grid_code: str | None) -> None:
    """A gridworker token names the small grid in force it works; no other role names one."""
    if role is not Role.GRIDWORKER:
        if grid_code is not None:
            raise InvalidInput(f"only gridworker tokens name a grid (role {role.value})")
        return
    if grid_code is None:
        raise InvalidInput("a gridworker token needs the small grid it works (--grid CODE)")
    found = conn.execute(sa.text(
        """SELECT 1 FROM grid WHERE code = :code AND level = 'small'
           AND version_high IS NULL"""), {"code": grid_code}).first()
    if found is None:
        raise InvalidInput(f"{grid_code!r} is not a small grid in force")


def caller_for_token(conn: Connection, token: str) -> Caller | None:
    """The caller a token stands for, or None when unknown or revoked."""
    row = conn.execute(
        sa.text("""SELECT name, role, grid_code FROM api_token
                   WHERE token_sha256 = :digest AND revoked_at IS NULL"""),
        {"digest": _digest(token)},
    ).first()
    return None if row is None else Caller(role=Role(row.role), name=row.name,
                                           grid_code=row.grid_code)


def revoke_tokens(conn: Connection, name: str) -> int:
    """Revoke every live token of ``name``; NotFound when there is none."""
    revoked = conn.execute(
        sa.text("""UPDATE api_token SET revoked_at = now()
                   WHERE name = :name AND revoked_at IS NULL"""), {"name": name},
    ).rowcount
    if not revoked:
        raise NotFound(f"no live token for {name!r}")
    return int(revoked)
