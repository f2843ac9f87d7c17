"""Boundary changes: propose (checked, with impact), commit, roll back; grid history."""

from __future__ import annotations

import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.auth import require_roles
from gis.auth import Caller, Role
from gis.errors import BadRequest, InvalidInput, NotFound, TooLarge
from gis.grid_change_commit import propose
from gis.grid_change_proposal import fault_json, grids_from_geojson, grids_from_upload
from gis.grid_codes import CODE_LENGTH, is_digits
from gis.grid_history import grid_history
from layers.grid_changes import commit_and_recolour, rollback_and_recolour

router = APIRouter(prefix="/api/v1", tags=["boundary changes"])

MAX_BODY = 50 * 2**20
PlannerDep = Annotated[Caller, require_roles(Role.PLANNER)]
# Ids are PostgreSQL bigints: anything else is refused before it reaches the database.
ChangeId = Annotated[int, Path(ge=1, le=2**63 - 1, description="A boundary change's id")]


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"a proposal is at most {MAX_BODY // 2**20} MiB")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise TooLarge(f"a proposal is at most {MAX_BODY // 2**20} MiB")
    return body


def _int_or_fail(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"{name} must be an integer grid version")
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer grid version (got {value!r})") from None


def _proposal_parts(request: Request, body: bytes) -> tuple[Any, list[str], int, str]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/json", "application/geo+json")) or not content_type:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise BadRequest(f"the body is not JSON: {error}") from None
        if not isinstance(payload, dict):
            raise BadRequest("the body must be a JSON object with base_version, reason, "
                             "features and/or retire")
        retire = payload.get("retire", [])
        if not isinstance(retire, list) or not all(isinstance(c, str) for c in retire):
            raise InvalidInput("retire must be a list of grid codes")
        base = payload.get("base_version")
        if base is None:
            raise InvalidInput("base_version is required: the grid version the change is drawn on")
        reason = payload.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("reason is required: say why the boundaries change")
        return (grids_from_geojson(payload.get("features", [])), retire,
                _int_or_fail(base, "base_version"), reason)
    query = request.query_params
    if "base_version" not in query or not query.get("reason", "").strip():
        raise InvalidInput("an uploaded file needs ?base_version=…&reason=… (and optional "
                           "retire=code,code)")
    retire = [c for c in query.get("retire", "").split(",") if c]
    base = _int_or_fail(query["base_version"], "base_version")  # before the file is read
    return grids_from_upload(body, content_type), retire, base, query["reason"]


def _propose(request: Request, body: bytes, caller: Caller) -> dict[str, Any]:
    grids, retire, base, reason = _proposal_parts(request, body)
    with request.app.state.engine.begin() as conn:
        change_id, state, impact = propose(conn, grids, retire, base_version=base,
                                           reason=reason, author=caller.name)
    return {"id": change_id, "status": "proposed", "kind": state.kind, "base_version": base,
            "added": state.added, "changed": state.changed, "retired": state.retire,
            "faults": [fault_json(f) for f in state.faults], "impact": impact.to_json()}


@router.post("/grid-changes", status_code=201, summary="Propose a boundary change")
async def create_change(request: Request, caller: PlannerDep) -> JSONResponse:
    """Check a proposal (JSON/GeoJSON body, or a GeoPackage / zipped Shapefile upload).

    A sound proposal is stored with its impact (events changing owner, areas, gridworkers);
    an unsound one answers 422 with every fault and nothing is stored.
    """
    body = await _read_body(request)
    answer = await run_in_threadpool(_propose, request, body, caller)
    return JSONResponse(answer, status_code=201)


def _change(request: Request, change_id: int) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        row = conn.execute(sa.text(
            """SELECT id, kind, base_version, status, reason, proposed_by, proposed_at, retire,
                      touched, impact, committed_version, committed_by, committed_at,
                      rollback_of, rolled_back_by
               FROM grid_change WHERE id = :id"""), {"id": change_id}).mappings().first()
    if row is None:
        raise NotFound(f"no boundary change {change_id}")
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@router.get("/grid-changes/{change_id}", summary="A boundary change and its impact")
def get_change(request: Request, change_id: ChangeId, caller: PlannerDep) -> dict[str, Any]:
    """The proposal, its status and its impact preview."""
    return _change(request, change_id)


@router.get("/grid-changes", summary="Boundary changes, newest first")
def list_changes(request: Request, caller: PlannerDep,
                 status: Annotated[str | None, Query(pattern="^(proposed|committed|rolled_back)$")]
                 = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict[str, Any]:
    """Changes with their status, kind and who proposed them."""
    with request.app.state.engine.connect() as conn:
        rows = conn.execute(sa.text(
            """SELECT id, kind, status, base_version, committed_version, reason, proposed_by,
                      proposed_at, touched FROM grid_change
               WHERE CAST(:status AS text) IS NULL OR status = :status
               ORDER BY id DESC LIMIT :limit"""), {"status": status, "limit": limit}).mappings()
        changes = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
                   for r in rows]
    return {"changes": changes}


@router.post("/grid-changes/{change_id}/commit", summary="Commit a proposed change")
def commit(request: Request, change_id: ChangeId, caller: PlannerDep) -> dict[str, Any]:
    """Apply as a new grid version; 409 when the grids changed since the proposal was drawn."""
    with request.app.state.engine.begin() as conn:
        result = commit_and_recolour(conn, change_id, author=caller.name)
    request.app.state.snapshots.refresh()  # this worker at once; the others follow NOTIFY
    return result.to_json()


@router.post("/grid-changes/{change_id}/rollback", status_code=201,
             summary="Roll back a committed change")
def rollback(request: Request, change_id: ChangeId, caller: PlannerDep,
             reason: Annotated[str, Query(min_length=1, description="Why it is undone")]
             ) -> dict[str, Any]:
    """Undo a change as a new version (the history keeps both)."""
    with request.app.state.engine.begin() as conn:
        result = rollback_and_recolour(conn, change_id, author=caller.name, reason=reason)
    request.app.state.snapshots.refresh()
    return result.to_json()


@router.get("/grids/{code}/history", summary="A grid's versions over time")
def history(request: Request, code: str,
            geometry: Annotated[bool, Query(description="Include each version's geometry")]
            = False) -> dict[str, Any]:
    """Every version of the grid with its validity period, area, author and reason."""
    if not any(is_digits(code, n) for n in CODE_LENGTH.values()):  # ASCII digits only
        shown = code if len(code) <= 32 else code[:32] + "…"
        raise InvalidInput(f"{shown!r} is not a grid code (9, 12 or 15 digits)")
    with request.app.state.engine.connect() as conn:
        return {"code": code, "versions": grid_history(conn, code, geometry=geometry)}
