"""The caller of a request, from ``Authorization: Bearer <token>``; no token means anonymous."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.concurrency import run_in_threadpool

from gis.auth import ANONYMOUS, UNVERIFIED, Caller, Role, caller_for_token
from gis.errors import Unavailable


def _caller_from_store(request: Request, token: str) -> Caller | None:
    with request.app.state.engine.connect() as conn:
        return caller_for_token(conn, token)


async def current_caller(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    """Resolve the bearer token; a wrong or revoked token is a 401, not anonymous access."""
    # async, so an anonymous request costs no worker-thread hop; the token lookup goes to one.
    if not authorization:
        return ANONYMOUS
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Authorization must be 'Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        caller = await run_in_threadpool(_caller_from_store, request, token.strip())
    except (OperationalError, InterfaceError):
        # The database is down: the caller gets what an anonymous one would (masked phones on
        # locate), and anything needing a role answers 503 (require_roles).
        return UNVERIFIED
    if caller is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


def require_roles(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets only ``roles`` (and admin) through, 403 otherwise."""
    allowed = {*roles, Role.ADMIN}

    async def check(caller: CallerDep) -> Caller:
        if not caller.verified:
            raise Unavailable("the database is unavailable, so the token cannot be checked; "
                              "retry shortly")
        if caller.role is Role.ANONYMOUS:
            raise HTTPException(401, "this needs a token", headers={"WWW-Authenticate": "Bearer"})
        if caller.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"role {caller.role.value} may not do this (needs {names})")
        return caller

    return Depends(check)
