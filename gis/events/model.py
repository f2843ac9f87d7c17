"""Typed event input: one event as a source system, a gridworker's phone or a CSV row gives it.

Times: ``reported_at`` and ``due_at`` should carry their offset (ISO 8601, ``+08:00``); a time
without one is taken as Beijing time (Asia/Shanghai), as people and the city's systems say it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gis.coords import CRS_NAMES, parse_crs
from gis.errors import InvalidInput
from gis.events.vocabulary import RESPONSE_HOURS, Category, Source, Status
from gis.grid_codes import is_digits

BEIJING = dt.timezone(dt.timedelta(hours=8))
TEXT_MAX = 4000
# Optional fields whose blank value ("", "  ") means "not given".
_BLANK_IS_MISSING = frozenset({"due_at", "lon", "lat", "grid_code", "reporter_name",
                               "reporter_phone", "text"})

Phone = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[0-9+\-() ]+$")]


def _beijing_if_naive(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=BEIJING) if value.tzinfo is None else value


class EventIn(BaseModel):
    """One event to ingest. A position (lon, lat, crs) or an explicit small grid code places it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    source: Source
    source_id: Annotated[str, Field(min_length=1, max_length=64)]
    category: Category
    severity: Annotated[int, Field(ge=1, le=4)]
    reported_at: dt.datetime
    status: Status = "open"
    due_at: dt.datetime | None = None
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    grid_code: str | None = None
    reporter_name: Annotated[str, Field(max_length=64)] | None = None
    reporter_phone: Phone | None = None
    text: Annotated[str, Field(max_length=TEXT_MAX)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _clean(cls, values: Any) -> Any:
        # One pass over the row (a validator per field costs more than the check): PostgreSQL
        # text cannot hold NUL, so such a row is refused here, by name, not at the COPY; and a
        # blank optional field is not given (every one of them defaults to None).
        if not isinstance(values, Mapping):
            return values
        blank = []
        for name, value in values.items():
            if isinstance(value, str):
                if "\x00" in value:
                    raise ValueError(f"{name} contains a NUL character (\\u0000)")
                if name in _BLANK_IS_MISSING and not value.strip():
                    blank.append(name)
        return {k: v for k, v in values.items() if k not in blank} if blank else values

    @field_validator("reported_at", "due_at")
    @classmethod
    def _zoned(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else _beijing_if_naive(value)

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, value: str) -> str:
        if value in CRS_NAMES:  # already canonical (nearly every row)
            return value
        try:
            return parse_crs(value or None)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None

    @field_validator("grid_code")
    @classmethod
    def _small_code(cls, value: str | None) -> str | None:
        if value is not None and not is_digits(value, 15):
            raise ValueError(f"grid_code must be a small grid's 15-digit code (got {value!r})")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EventIn:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("lon and lat go together: give both or neither")
        if self.due_at is not None and self.due_at < self.reported_at:
            raise ValueError(f"due_at {self.due_at.isoformat()} is before reported_at "
                             f"{self.reported_at.isoformat()}")
        return self

    @property
    def due(self) -> dt.datetime:
        """The due time: as given, or the report time plus the severity's response hours."""
        if self.due_at is not None:
            return self.due_at
        return self.reported_at + dt.timedelta(hours=RESPONSE_HOURS[self.severity])

    @property
    def has_position(self) -> bool:
        """Whether a position was given."""
        return self.lon is not None


def _problem_text(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item.get("loc", ()))
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if item.get("type") == "extra_forbidden":
            message = "unknown field"
        elif item.get("type") == "literal_error":
            message = f"{message} (got {item.get('input')!r})"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


@dataclass
class ParsedRows:
    """Rows read one by one: the good ones (with their input index) and why the others failed."""

    events: list[EventIn] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    rejects: dict[int, str] = field(default_factory=dict)


class Unreadable(str):
    """A row that could not even be read as an event: the text says why."""

    __slots__ = ()


def parse_rows(rows: Iterable[Mapping[str, Any] | Any], start: int = 0) -> ParsedRows:
    """Validate each row on its own; a bad row is kept as a reason, never raised.

    Rows are numbered from ``start`` (a part of a longer batch keeps the batch's numbers).
    """
    parsed = ParsedRows()
    for i, row in enumerate(rows, start):
        if isinstance(row, Unreadable):
            parsed.rejects[i] = str(row)
            continue
        if not isinstance(row, Mapping):
            parsed.rejects[i] = f"an event must be a JSON object (got {type(row).__name__})"
            continue
        try:
            event = EventIn.model_validate(row)
        except ValidationError as exc:
            parsed.rejects[i] = _problem_text(exc)
            continue
        parsed.events.append(event)
        parsed.indexes.append(i)
    return parsed


def rows_from_geojson(collection: Mapping[str, Any]) -> list[Any]:
    """Rows of a GeoJSON FeatureCollection: properties plus lon/lat from a Point geometry."""
    features = collection.get("features")
    if not isinstance(features, list):
        raise InvalidInput("a FeatureCollection needs a 'features' list")
    rows: list[Any] = []
    for feature in features:
        if not isinstance(feature, Mapping):
            rows.append(feature)
            continue
        row = dict(feature.get("properties") or {})
        geometry = feature.get("geometry")
        if isinstance(geometry, Mapping):
            coords = geometry.get("coordinates")
            if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
                rows.append(Unreadable("the geometry must be a Point [lon, lat]"))
                continue
            row["lon"], row["lat"] = coords[0], coords[1]
        rows.append(row)
    return rows
