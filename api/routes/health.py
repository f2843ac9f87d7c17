"""Health: liveness, readiness, and a page with the grid counts and the database in use."""

from __future__ import annotations

import html
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError

from api.errors import RETRY_AFTER_S
from gis.store import current_version, grid_counts, postgis_version

router = APIRouter(tags=["health"])


def _facts(request: Request) -> dict[str, Any]:
    database = request.app.state.database
    with request.app.state.engine.connect() as conn:
        return {
            "status": "ok",
            "grids": grid_counts(conn),
            "grid_version": current_version(conn),
            "database": {
                "url": database.display_url(),
                "embedded": database.embedded,
                "postgis": postgis_version(conn),
            },
        }


@router.get("/health", summary="Grid counts per level and the database in use",
            response_class=JSONResponse,
            responses={200: {"content": {"application/json": {}, "text/html": {}}}})
def health(request: Request, f: str | None = None) -> Response:
    """JSON by default; HTML for browsers (Accept: text/html) or ``?f=html``."""
    facts = _facts(request)
    wants_html = f == "html" or (f is None and "text/html" in request.headers.get("accept", ""))
    if not wants_html:
        return JSONResponse(facts)
    names = {"large": "大网格 (镇街)", "medium": "中网格 (村社区)", "small": "小网格 (组小区)"}
    rows = "".join(
        f"<tr><td>{names[level]}</td><td id='count-{level}'>{count}</td></tr>"
        for level, count in facts["grids"].items()
    )
    db = facts["database"]
    kind = "embedded (project-local cluster)" if db["embedded"] else "configured URL"
    page = f"""<!doctype html><html lang="zh"><head><meta charset="utf-8">
<title>民情地图 health</title></head><body>
<h1>民情地图 · service health</h1>
<table><tr><th>level</th><th>grids</th></tr>{rows}</table>
<p>grid version: {facts['grid_version']}</p>
<p>database: <code>{html.escape(db['url'])}</code> ({kind}),
PostGIS {html.escape(db['postgis'])}</p>
</body></html>"""
    return HTMLResponse(page)


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    """Always ok while the process runs."""
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers and the grid index is built",
            responses={503: {"description": "Not ready; `reasons` says why"}})
def readyz(request: Request) -> JSONResponse:
    """Ready when PostGIS answers, the router index is built and grid changes reach this worker."""
    reasons: list[str] = []
    grids = None
    try:
        with request.app.state.engine.connect() as conn:
            grids = grid_counts(conn)
    except (OperationalError, InterfaceError) as error:
        reasons.append(f"database unreachable ({type(error.orig).__name__}); locate answers "
                       "from the in-memory index, flagged degraded")
    snapshot = request.app.state.snapshots.current
    if snapshot is None:
        reasons.append("grid index not built yet")
    listener = request.app.state.listener
    if not listener.connected.is_set():
        why = f" ({listener.last_failure})" if listener.last_failure else ""
        reasons.append(f"not listening for grid changes{why}: the index may fall behind")
    body: dict[str, Any] = {"status": "not_ready" if reasons else "ready",
                            "worker": os.getpid(),  # which process answered, of several
                            "grid_version": None if snapshot is None else snapshot.version,
                            "grids": grids}
    if not reasons:
        return JSONResponse(body)
    body.update(error="unavailable", reasons=reasons, message="; ".join(reasons),
                request_id=getattr(request.state, "request_id", None))
    return JSONResponse(body, status_code=503, headers={"Retry-After": RETRY_AFTER_S})
