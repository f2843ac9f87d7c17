"""Locate: which small grid owns a position (one point, or a batch)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from api.auth import CallerDep
from api.database_state import degraded_headers
from gis.auth import Caller, mask_phone
from gis.coords import parse_crs, to_wgs84, validate_lonlat
from gis.errors import BadRequest, InvalidInput, TooLarge
from gis.grid_history import owner_at
from gis.grid_snapshot import GridRecord, GridSnapshot
from gis.position_lookup import PositionAnswer, locate_position, locate_positions

router = APIRouter(prefix="/api/v1", tags=["locate"])

MAX_BATCH = 10_000
CrsName = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]


def _number(raw: str) -> float | str:
    # Keep text that is not a number, so the coordinate check can say so in words.
    try:
        return float(raw)
    except ValueError:
        return raw


def _grid(record: GridRecord) -> dict[str, Any]:
    return {"code": record.code, "name": record.name, "kind": record.kind}


def position_body(answer: PositionAnswer, caller: Caller) -> dict[str, Any]:
    """JSON body of a locate answer; gridworker phones masked unless the caller may see them."""
    worker = None
    if answer.gridworker is not None:
        phone = answer.gridworker.phone
        shown = phone if caller.sees_gridworker_phone else mask_phone(phone)
        worker = {"name": answer.gridworker.name, "phone": shown,
                  "phone_masked": not caller.sees_gridworker_phone}
    return {
        "input": {"lon": answer.lon, "lat": answer.lat, "crs": answer.crs},
        "wgs84": {"lon": answer.wgs84[0], "lat": answer.wgs84[1]},
        "grid_version": answer.version,
        "small": _grid(answer.small),
        "medium": _grid(answer.medium),
        "large": _grid(answer.large),
        "district": {"code": answer.small.district_code, "name": answer.district_name},
        "gridworker": worker,
        "distance_to_edge_m": round(answer.distance_to_edge_m, 1),
        "ambiguous": answer.ambiguous,
        "candidates": [_grid(c) for c in answer.candidates],
    }


def _snapshot(request: Request) -> GridSnapshot:
    snapshot: GridSnapshot = request.app.state.snapshots.get()
    return snapshot


@router.get("/locate", summary="The small grid that owns a position")
async def locate(
    request: Request,
    caller: CallerDep,
    lon: Annotated[str, Query(description="Longitude (degrees, in `crs`)")],
    lat: Annotated[str, Query(description="Latitude (degrees, in `crs`)")],
    crs: Annotated[str, Query(description="wgs84 (default), cgcs2000, gcj02 or bd09")] = "wgs84",
    accuracy: Annotated[float | None, Query(description="GPS accuracy radius, metres")] = None,
    at: Annotated[str | None, Query(description="Owner as of this date or time (ISO 8601), "
                                    "for an old event; answered from the stored history")] = None,
) -> JSONResponse:
    """Small, medium and large grid, district, gridworker, distance to the edge, ambiguity."""
    if at is not None:
        return JSONResponse(await run_in_threadpool(_locate_as_of, request, lon, lat, crs, at))
    # In the event loop on purpose: the in-memory lookup takes ~0.2 ms, less than a thread hop.
    answer = locate_position(_snapshot(request), _number(lon), _number(lat), crs,
                             accuracy)
    body = position_body(answer, caller)
    headers = degraded_headers(request, body)  # the index answers even with the database down
    # The body is plain JSON types already; skipping FastAPI's re-encoding saves a third.
    return JSONResponse(body, headers=headers)


BEIJING = dt.timezone(dt.timedelta(hours=8))
EARLIEST_AT = dt.datetime(1970, 1, 1, tzinfo=BEIJING)


def _parse_moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"at must be an ISO 8601 date or time such as 2026-06-01 "
                           f"(got {text[:40]!r})") from None
    if moment.tzinfo is None:  # a bare date or time is Beijing time, as people say it
        moment = moment.replace(tzinfo=BEIJING)
    # The history holds the past: a far date (or an offset pushing it past year 1 or 9999)
    # is a typing slip, and the future has no owner yet.
    if moment < EARLIEST_AT:
        raise InvalidInput(f"at must be after {EARLIEST_AT.date()} (got {text!r})")
    if moment > dt.datetime.now(BEIJING) + dt.timedelta(days=1):
        raise InvalidInput(f"at is in the future ({text!r}); an as-of answer covers the past "
                           "and today, the current owner comes without at")
    return moment


def _locate_as_of(request: Request, lon: str, lat: str, crs: str, at: str) -> dict[str, Any]:
    moment = _parse_moment(at)
    x, y = validate_lonlat(_number(lon), _number(lat))
    wx, wy = to_wgs84(np.array([x]), np.array([y]), parse_crs(crs))
    with request.app.state.engine.connect() as conn:
        return owner_at(conn, float(wx[0]), float(wy[0]), moment)


class BatchPoint(BaseModel):
    """One point of a batch; ``id`` is echoed back."""

    id: str | int | None = None
    lon: float | str | None
    lat: float | str | None

    @field_validator("lon", "lat", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # JSON true would otherwise pass as 1.0
            raise ValueError("must be a number, not true or false")
        return value


class BatchRequest(BaseModel):
    """A list of points in one CRS."""

    crs: CrsName = "wgs84"
    points: list[BatchPoint] = Field(max_length=MAX_BATCH)


def _coordinate(value: Any) -> float | str:
    # A list or object where a number belongs is reported per point, as text, like "abc".
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return value
    return json.dumps(value)[:40]


def _feature_id(feature: dict[str, Any], i: int) -> str | int:
    given = feature.get("id", i)
    return given if isinstance(given, str | int) else i


def _points_from_body(body: dict[str, Any]) -> tuple[str, list[BatchPoint]]:
    if body.get("type") == "FeatureCollection":
        features = body.get("features")
        if not isinstance(features, list):
            raise BadRequest("a FeatureCollection needs a 'features' list")
        if len(features) > MAX_BATCH:
            raise TooLarge(f"a batch holds at most {MAX_BATCH} points (got {len(features)}); "
                           "use `minqing route` for files")
        points = []
        for i, feature in enumerate(features):
            if not isinstance(feature, dict):
                raise InvalidInput(f"feature {i} is not a GeoJSON Feature object")
            geometry = feature.get("geometry") or {}
            if not isinstance(geometry, dict):
                raise InvalidInput(f"feature {i}: geometry must be a GeoJSON object or null")
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                points.append(BatchPoint(id=_feature_id(feature, i), lon=None, lat=None))
                continue
            points.append(BatchPoint(id=_feature_id(feature, i), lon=_coordinate(coords[0]),
                                     lat=_coordinate(coords[1])))
        return str(body.get("crs", "wgs84")), points
    listed = body.get("points")
    if isinstance(listed, list) and len(listed) > MAX_BATCH:
        raise TooLarge(f"a batch holds at most {MAX_BATCH} points (got {len(listed)}); "
                       "use `minqing route` for files")
    try:
        parsed = BatchRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"bad batch: {problems}") from exc
    return parsed.crs, parsed.points


@router.post("/locate/batch", summary=f"Locate up to {MAX_BATCH} points")
def locate_batch(
    request: Request,
    response: Response,
    body: dict[str, Any],
    crs: Annotated[str | None, Query(description="Overrides the body's crs")] = None,
) -> dict[str, Any]:
    """JSON ``{"crs", "points": [{"id", "lon", "lat"}]}`` or a GeoJSON FeatureCollection."""
    body_crs, points = _points_from_body(body)
    snapshot = _snapshot(request)
    lon = np.array([p.lon for p in points], dtype=object)
    lat = np.array([p.lat for p in points], dtype=object)
    found = locate_positions(snapshot, lon, lat, crs or body_crs)
    results: list[dict[str, Any]] = []
    for i, point in enumerate(points):
        item: dict[str, Any] = {"id": point.id if point.id is not None else i}
        row = int(found.rows[i])
        if found.problems[i] is not None:
            item["error"] = f"bad coordinate: {found.problems[i]}"
        elif row < 0:
            nearest, metres = snapshot.index.nearest(found.wgs84_lon[i], found.wgs84_lat[i])
            item["error"] = "outside every grid"
            item["nearest"] = {"code": snapshot.index.codes[nearest],
                               "distance_m": round(metres, 1)}
        else:
            code = snapshot.index.codes[row]
            item.update({"small": code, "medium": code[:12], "large": code[:9],
                         "district": code[:6]})
        results.append(item)
    located = sum(1 for r in results if "small" in r)
    answer = {"grid_version": snapshot.version, "count": len(results), "located": located,
              "results": results}
    response.headers.update(degraded_headers(request, answer))
    return answer
