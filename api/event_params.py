"""Query parameters of the event list as one dependency returning a typed EventFilter."""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated

from fastapi import Query

from gis.errors import InvalidInput
from gis.events.query import EventFilter, code_range
from gis.events.vocabulary import CATEGORIES, ROUTES, SOURCES, STATUSES

BEIJING = dt.timezone(dt.timedelta(hours=8))


def _listed(raw: list[str] | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    values = tuple(v.strip() for item in raw or [] for v in item.split(",") if v.strip())
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidInput(f"unknown {name} {', '.join(map(repr, unknown))}: use "
                           f"{', '.join(allowed)}")
    return values


def parse_moment(text: str | None, name: str) -> dt.datetime | None:
    """An ISO 8601 date or time; without an offset it is Beijing time."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{name} must be an ISO 8601 date or time such as 2026-11-01 or "
                           f"2026-11-01T08:00:00+08:00 (got {text!r})") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=BEIJING)


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """minx,miny,maxx,maxy in WGS84 degrees."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidInput(f"bbox must be minlon,minlat,maxlon,maxlat (got {text!r})")
    x0, y0, x1, y1 = values
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise InvalidInput(f"bbox {text!r} is not minlon,minlat,maxlon,maxlat within range")
    return x0, y0, x1, y1


def event_filter(
    grid: Annotated[str | None, Query(description="A large (9), medium (12) or small (15) "
                                      "grid code: events in it and its children")] = None,
    district: Annotated[str | None, Query(description="6-digit district code")] = None,
    category: Annotated[list[str] | None, Query(description="Categories (repeat or comma)")]
    = None,
    source: Annotated[list[str] | None, Query(description="Sources (repeat or comma)")] = None,
    status: Annotated[list[str] | None, Query(description="Statuses (repeat or comma)")] = None,
    route: Annotated[list[str] | None, Query(description="exact, snapped, given, manual, "
                                             "unrouted")] = None,
    reported_from: Annotated[str | None, Query(alias="from", description="Reported at or "
                                               "after (ISO 8601; Beijing time if no offset)")]
    = None,
    reported_to: Annotated[str | None, Query(alias="to", description="Reported before")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS84)")]
    = None,
    overdue: Annotated[bool | None, Query(description="Only overdue (true) or not (false)")]
    = None,
) -> EventFilter:
    """The list filters, checked; a bad value is a 422 that says which and why."""
    prefixes = []
    if grid is not None:
        if len(grid) not in (9, 12, 15):
            raise InvalidInput(f"grid must be a 9, 12 or 15-digit grid code (got {grid!r})")
        prefixes.append(code_range(grid)[0])
    if district is not None:
        if len(district) != 6:
            raise InvalidInput(f"district must be a 6-digit code (got {district!r})")
        prefixes.append(code_range(district)[0])
    start, end = parse_moment(reported_from, "from"), parse_moment(reported_to, "to")
    if start is not None and end is not None and end <= start:
        raise InvalidInput("to must be after from")
    return EventFilter(
        code_prefixes=tuple(prefixes), categories=_listed(category, CATEGORIES, "category"),
        sources=_listed(source, SOURCES, "source"), statuses=_listed(status, STATUSES, "status"),
        routes=_listed(route, ROUTES, "route"), reported_from=start, reported_to=end,
        bbox=parse_bbox(bbox), overdue=overdue)
