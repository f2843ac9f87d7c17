"""One place that turns errors into responses; database error text never reaches a client."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gis.errors import MinqingError, Unavailable

log = logging.getLogger(__name__)

RETRY_AFTER_S = "5"  # seconds; a restarted PostgreSQL answers again within a few


def _request_id(request: Request) -> str:
    given = getattr(request.state, "request_id", None)  # set by api.middleware.RequestGuard
    return str(given) if given else uuid.uuid4().hex[:16]


def _problem(err: dict[str, Any]) -> dict[str, str]:
    where = ".".join(str(p) for p in err.get("loc", ()))
    problem = str(err.get("msg"))
    if where == "body" and err.get("type") in ("dict_type", "model_attributes_type"):
        problem = "the body must be a JSON object"
    return {"where": where, "problem": problem}


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors, database outages and bugs to JSON answers."""

    @app.exception_handler(MinqingError)
    async def domain_error(request: Request, exc: MinqingError) -> JSONResponse:
        headers = {"Retry-After": RETRY_AFTER_S} if isinstance(exc, Unavailable) else None
        return JSONResponse({**exc.to_dict(), "request_id": _request_id(request)},
                            status_code=exc.http_status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "not_allowed",
                 413: "too_large"}
        message = str(exc.detail)
        where = f"{request.method} {request.url.path[:200]}"
        if exc.status_code == 404 and message == "Not Found":  # the router matched nothing
            message = f"no route {where}; the API is described at /docs"
        elif exc.status_code == 405 and message == "Method Not Allowed":
            message = f"{where}: method {request.method} not allowed on this path"
        return JSONResponse(
            {"error": kinds.get(exc.status_code, "http_error"), "message": message,
             "request_id": _request_id(request)},
            status_code=exc.status_code, headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        unreadable = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if unreadable is not None:
            at = unreadable.get("loc", ("body", "?"))[-1]
            reason = (unreadable.get("ctx") or {}).get("error", "")
            return JSONResponse(
                {"error": "bad_request", "message": f"the body is not valid JSON "
                                                    f"(at character {at}: {reason})",
                 "request_id": _request_id(request)}, status_code=400)
        problems = [_problem(err) for err in errors]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems)
        return JSONResponse(
            {"error": "invalid_input", "message": message, "details": problems,
             "request_id": _request_id(request)}, status_code=422
        )

    async def database_down(request: Request, exc: Exception) -> JSONResponse:
        request_id = _request_id(request)
        log.error(json.dumps({"request_id": request_id, "event": "database_unavailable",
                              "error": type(exc).__name__, "detail": str(exc)[:500]}))
        return JSONResponse(
            {"error": "unavailable", "message": "the database is unavailable; nothing was "
                                                "changed, retry shortly",
             "request_id": request_id},
            status_code=503, headers={"Retry-After": RETRY_AFTER_S},
        )

    app.add_exception_handler(OperationalError, database_down)
    app.add_exception_handler(InterfaceError, database_down)

    @app.exception_handler(DataError)
    async def unstorable_value(request: Request, exc: DataError) -> JSONResponse:
        # A value PostgreSQL refuses (a NUL in a JSON string, a number out of its range) that
        # the checks before the query did not catch: the client's fault, told without SQL.
        request_id = _request_id(request)
        log.warning("value refused by the database (request %s): %s", request_id, exc.orig)
        return JSONResponse(
            {"error": "bad_request", "request_id": request_id,
             "message": "a value in the request cannot be stored or compared "
                        "(a NUL character, or a number out of range)"}, status_code=400)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        request_id = _request_id(request)
        log.exception(json.dumps({"request_id": request_id, "event": "unhandled_error",
                                  "error": type(exc).__name__}))
        return JSONResponse(
            {"error": "internal_error", "message": "internal error", "request_id": request_id},
            status_code=500,
        )
