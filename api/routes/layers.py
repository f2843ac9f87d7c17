"""The red / yellow / blue layer: summary counts, event heat cells, warnings, recompute."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from api.auth import require_roles
from gis.auth import Caller
from gis.errors import InvalidInput
from gis.events.vocabulary import known_category
from layers.heat import heat_cells
from layers.refresh import refresh_all
from layers.rules import LayerRules, load_rules
from layers.summary import LEVELS, layer_summary
from layers.warnings import list_warnings

router = APIRouter(prefix="/api/v1", tags=["layers"])
AdminDep = Annotated[Caller, require_roles()]


def current_rules(request: Request) -> LayerRules:
    """The rules file in force (MINQING_LAYERS_RULES)."""
    return load_rules(request.app.state.settings.layers.rules)


RulesDep = Annotated[LayerRules, Depends(current_rules)]


def window_days(rules: RulesDep, window: Annotated[str | None, Query(
        description="7d or 30d (the rules' short and long windows)")] = None) -> int:
    """The window asked for, in days; one of the rules' two windows."""
    short, long = rules.windows.days()
    if window is None:
        return short
    text = window.strip().lower().removesuffix("d")
    if not text.isdigit() or int(text) not in (short, long):
        raise InvalidInput(f"window must be {short}d or {long}d (got {window!r})")
    return int(text)


WindowDep = Annotated[int, Depends(window_days)]


def bbox_query(bbox: Annotated[str | None, Query(
        description="minlon,minlat,maxlon,maxlat (WGS84)")] = None
        ) -> tuple[float, float, float, float] | None:
    """A WGS84 bounding box, checked."""
    if bbox is None:
        return None
    try:
        parts = [float(p) for p in bbox.split(",")]
    except ValueError:
        raise InvalidInput(f"bbox must be four numbers minlon,minlat,maxlon,maxlat "
                           f"(got {bbox!r})") from None
    if len(parts) != 4 or not all(abs(p) < float("inf") for p in parts):
        raise InvalidInput(f"bbox must be four finite numbers minlon,minlat,maxlon,maxlat "
                           f"(got {bbox!r})")
    minx, miny, maxx, maxy = parts
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise InvalidInput("bbox must have -180 <= minlon < maxlon <= 180 and "
                           "-90 <= minlat < maxlat <= 90")
    return minx, miny, maxx, maxy


def _district(value: str | None) -> str | None:
    if value is not None and (not value.isdigit() or len(value) != 6):
        raise InvalidInput(f"district must be a 6-digit county code (got {value!r})")
    return value


@router.get("/layers/summary", summary="Red / yellow / blue counts per district and level")
def summary(request: Request, rules: RulesDep, days: WindowDep,
            district: Annotated[str | None, Query(description="6-digit district code")] = None,
            level: Annotated[str | None, Query(description="large, medium or small")] = None,
            ) -> dict[str, Any]:
    """Counts of grids by shown colour (pins included) and window event totals."""
    if level is not None and level not in LEVELS:
        raise InvalidInput(f"level must be large, medium or small (got {level!r})")
    with request.app.state.engine.connect() as conn:
        return layer_summary(conn, district=_district(district), level=level,
                             window_days=days, short_days=rules.windows.short_days)


@router.get("/layers/heat", summary="Event density cells as GeoJSON")
def heat(request: Request, days: WindowDep,
         bbox: Annotated[tuple[float, float, float, float] | None, Depends(bbox_query)],
         category: Annotated[str | None, Query(max_length=16)] = None,
         shape: Annotated[Literal["hexagon", "square"], Query()] = "hexagon",
         size: Annotated[float, Query(ge=100, le=20000, description="Cell size, metres")]
         = 1000.0) -> dict[str, Any]:
    """Hexagon (or square) cells over the events of the window, with their counts."""
    with request.app.state.engine.connect() as conn:
        return heat_cells(conn, window_days=days, category=known_category(category), bbox=bbox,
                          shape=shape, size_m=size)


@router.get("/warnings", summary="Warnings (预警): grids whose events jump above their baseline")
def warnings(request: Request,
             district: Annotated[str | None, Query(description="6-digit district code")] = None,
             category: Annotated[str | None, Query(max_length=16)] = None,
             code: Annotated[str | None, Query(pattern=r"^[0-9]{9}([0-9]{3}){0,2}$",
                                               description="A grid code at any level")] = None,
             since: Annotated[dt.date | None, Query(description="First day (YYYY-MM-DD)")]
             = None,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Warnings newest first, each with its observed count, baseline and p-value."""
    with request.app.state.engine.connect() as conn:
        found = list_warnings(conn, district=_district(district),
                              category=known_category(category), code=code,
                              since=since, limit=limit)
    return {"warnings": found}


@router.post("/layers/refresh", summary="Recompute every colour, heat and warning (admin)")
def refresh(request: Request, caller: AdminDep, rules: RulesDep) -> dict[str, Any]:
    """A full recompute from all events; the answer says what changed and how long it took."""
    with request.app.state.engine.begin() as conn:
        return refresh_all(conn, rules=rules).to_json()
