"""Events: ingest one or a batch (idempotent), list with filters, read one, change status/grid."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import InterfaceError, OperationalError

from api.auth import require_roles
from api.event_params import event_filter
from gis.auth import CHANGES_EVENT_STATUS, LISTS_EVENTS, POSTS_EVENTS, Caller, Role
from gis.errors import BadRequest, InvalidInput, TooLarge, Unavailable
from gis.events.ingest import CREATED, REJECTED, IngestResult, StaleGridVersion
from gis.events.ingest import ingest_events as store_events
from gis.events.model import rows_from_geojson
from gis.events.query import Cursor, EventFilter, get_event, list_events, status_history
from gis.events.status import update_event
from gis.events.view import event_feature, event_json
from gis.events.vocabulary import GRIDWORKER_SOURCE
from gis.grid_snapshot import GridSnapshot

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["events"])

MAX_BATCH = 10_000


PosterDep = Annotated[Caller, require_roles(*POSTS_EVENTS)]
ReaderDep = Annotated[Caller, require_roles(*LISTS_EVENTS)]
ChangerDep = Annotated[Caller, require_roles(*CHANGES_EVENT_STATUS)]
FilterDep = Annotated[EventFilter, Depends(event_filter)]


COMMIT_LOST = ("the database is unavailable: the connection was lost while committing, so "
               "this may have been stored; send the same request again (events already stored "
               "are answered 'already had it')")


def _store(request: Request, snapshot: GridSnapshot, rows: list[Any], only: str | None
           ) -> IngestResult:
    """One transaction; a connection lost in COMMIT may have stored it, and the answer says so."""
    committing = False
    try:
        with request.app.state.engine.begin() as conn:
            result = store_events(conn, snapshot, rows, only_source=only)
            committing = True
    except (OperationalError, InterfaceError) as error:
        if not committing:
            raise  # nothing was stored: the generic 503
        log.error(json.dumps({"request_id": getattr(request.state, "request_id", None),
                              "event": "commit_outcome_unknown", "rows": len(rows),
                              "error": type(error).__name__, "detail": str(error)[:500]}))
        raise Unavailable(COMMIT_LOST) from error
    return result


def _ingest(request: Request, caller: Caller, rows: list[Any]) -> IngestResult:
    """Store in one transaction (rebuilding a stale router once), then refresh the layers."""
    holder = request.app.state.snapshots
    only = GRIDWORKER_SOURCE if caller.role is Role.GRIDWORKER else None
    for attempt in (1, 2):
        snapshot: GridSnapshot = holder.get()
        try:
            result = _store(request, snapshot, rows, only)
            break
        except StaleGridVersion:
            if attempt == 2:
                raise
            holder.refresh()
    _after_commit(request, result.touched)
    return result


def _after_commit(request: Request, codes: set[str]) -> None:
    request.app.state.grid_refresher.refresh(codes)  # pooled with concurrent requests' grids


@router.post("/events", summary="Ingest one event (idempotent on source + source_id)",
             responses={201: {"description": "created"}, 200: {"description": "already had it"}})
def post_event(request: Request, caller: PosterDep, body: dict[str, Any]) -> JSONResponse:
    """201 with the new event's id and grid, 200 "already had it" for a repeat, 422 if bad."""
    if body.get("type") == "Feature":
        body = rows_from_geojson({"features": [body]})[0]
    outcome = _ingest(request, caller, [body]).outcomes[0]
    if outcome.result == REJECTED:
        raise InvalidInput(f"event refused: {outcome.reason}", details={"reason": outcome.reason})
    status = 201 if outcome.result == CREATED else 200
    headers = {"Location": f"/api/v1/events/{outcome.id}"}
    return JSONResponse(outcome.to_json(), status_code=status, headers=headers)


def _batch_rows(body: Any) -> list[Any]:
    if isinstance(body, dict) and body.get("type") == "FeatureCollection":
        features = body.get("features")
        if isinstance(features, list) and len(features) > MAX_BATCH:
            raise TooLarge(f"a batch holds at most {MAX_BATCH} events (got {len(features)}); "
                           "use `minqing events import` for files")
        return rows_from_geojson(body)
    rows = body.get("events") if isinstance(body, dict) else body
    if not isinstance(rows, list):
        raise BadRequest("the body must be a JSON list of events, {\"events\": [...]}, or a "
                         "GeoJSON FeatureCollection")
    if len(rows) > MAX_BATCH:
        raise TooLarge(f"a batch holds at most {MAX_BATCH} events (got {len(rows)}); "
                       "use `minqing events import` for files")
    return rows


@router.post("/events/batch", summary=f"Ingest up to {MAX_BATCH} events, row by row")
def post_batch(request: Request, caller: PosterDep, body: Annotated[Any, Body()]
               ) -> dict[str, Any]:
    """JSON list (or ``{"events": [...]}``) or a GeoJSON FeatureCollection of Points.

    Every row answers: created / already had it (with id, grid, route) or rejected (reason).
    """
    rows = _batch_rows(body)
    if not rows:
        raise InvalidInput("the batch is empty")
    result = _ingest(request, caller, rows)
    return {"grid_version": result.grid_version, **result.summary(),
            "results": [o.to_json() for o in result.outcomes]}


def _page(request: Request, caller: Caller, flt: EventFilter, limit: int, after: str | None,
          total: bool, fmt: str) -> dict[str, Any]:
    cursor = Cursor.decode(after) if after else None
    with request.app.state.engine.connect() as conn:
        page = list_events(conn, flt, limit=limit, after=cursor, with_total=total)
    following = None
    if page.next_cursor is not None:
        following = str(request.url.include_query_params(after=page.next_cursor.encode()))
    extra = {"next": following, "count": len(page.events), "as_of": page.now.isoformat()}
    if total:
        extra["total"] = page.total
    if fmt == "geojson":
        return {"type": "FeatureCollection", **extra,
                "features": [event_feature(r, caller) for r in page.events]}
    return {**extra, "events": [event_json(r, caller) for r in page.events]}


PageLimit = Annotated[int, Query(ge=1, le=1000, description="Events per page")]
PageAfter = Annotated[str | None, Query(description="Cursor from the previous page's next link")]
WithTotal = Annotated[bool, Query(description="Also count every matching event")]
Format = Annotated[Literal["json", "geojson"], Query(description="json or geojson")]


@router.get("/events", summary="Events with filters, newest report first, paged")
def get_events(request: Request, caller: ReaderDep, flt: FilterDep, limit: PageLimit = 100,
               after: PageAfter = None, total: WithTotal = False, f: Format = "json"
               ) -> dict[str, Any]:
    """Filter by grid code (any level), district, category, source, status, time, bbox, overdue."""
    return _page(request, caller, flt, limit, after, total, f)


@router.get("/events/unrouted", summary="Events no grid could take, for staff to place by hand")
def get_unrouted(request: Request, caller: ReaderDep, flt: FilterDep, limit: PageLimit = 100,
                 after: PageAfter = None, total: WithTotal = False, f: Format = "json"
                 ) -> dict[str, Any]:
    """Unrouted events with the reason in route_note (the other filters apply as well)."""
    unrouted = dataclasses.replace(flt, routes=("unrouted",))
    return _page(request, caller, unrouted, limit, after, total, f)


@router.get("/events/{event_id}", summary="One event and its status history")
def get_one(request: Request, caller: ReaderDep, event_id: int) -> dict[str, Any]:
    """The event (personal data per role) and every status change."""
    with request.app.state.engine.connect() as conn:
        row = get_event(conn, event_id)
        history = status_history(conn, event_id)
    return {**event_json(row, caller), "status_history": history}


class EventPatch(BaseModel):
    """A status change and/or a placement by hand onto a small grid."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "in_progress", "resolved", "closed"] | None = None
    grid_code: str | None = None


@router.patch("/events/{event_id}", summary="Change an event's status or place it by hand")
def patch_event(request: Request, caller: ChangerDep, event_id: int, body: EventPatch
                ) -> dict[str, Any]:
    """Allowed transitions (409 otherwise) are recorded; placing needs admin (route manual)."""
    snapshot: GridSnapshot = request.app.state.snapshots.get()
    with request.app.state.engine.begin() as conn:
        update = update_event(conn, snapshot, event_id, caller, status=body.status,
                              grid_code=body.grid_code)
        row = get_event(conn, event_id)
        history = status_history(conn, event_id)
    _after_commit(request, update.touched)
    return {**event_json(row, caller), "status_history": history,
            "changed": {"status": update.status_changed, "placed": update.placed}}

