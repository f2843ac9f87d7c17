"""Which tile is asked for: the layer, z/x/y and filters, checked before any query runs."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from gis.errors import BadRequest, NotFound
from gis.events.vocabulary import CATEGORIES

MAX_ZOOM = 22
LAYERS = ("large", "medium", "small", "heat")
BEIJING = dt.timezone(dt.timedelta(hours=8))

_NUMBER = re.compile(r"[0-9]{1,8}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DISTRICT = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class TileAddress:
    """One tile of one layer, with the optional district filter and past date."""

    layer: str
    z: int
    x: int
    y: int
    district: str | None = None
    at: dt.date | None = None
    category: str | None = None  # heat only: one event category's counts

    @property
    def moment(self) -> dt.datetime | None:
        """The start of ``at`` in Beijing time (how people mean a bare date), or None."""
        if self.at is None:
            return None
        return dt.datetime.combine(self.at, dt.time(), tzinfo=BEIJING)


def check_layer(layer: str) -> str:
    """The layer name, or NotFound listing the layers there are."""
    if layer not in LAYERS:
        raise NotFound(f"no tile layer {layer!r}; the layers are {', '.join(LAYERS)}",
                       details={"layers": list(LAYERS)})
    return layer


def _tile_number(name: str, text: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise BadRequest(f"{name} must be a whole number such as 12 (got {text[:40]!r})")
    return int(text)


def parse_address(layer: str, z: str, x: str, y: str, district: str | None = None,
                  at: str | None = None, known_districts: dict[str, str] | None = None,
                  category: str | None = None) -> TileAddress:
    """Check every part of a tile request; BadRequest or NotFound says what is wrong."""
    check_layer(layer)
    if category is not None:
        if layer != "heat":
            raise BadRequest("category filters the heat layer only")
        if category not in CATEGORIES:
            raise BadRequest(f"unknown category {category[:40]!r}: use {', '.join(CATEGORIES)}")
    zoom, column, row = _tile_number("z", z), _tile_number("x", x), _tile_number("y", y)
    if zoom > MAX_ZOOM:
        raise NotFound(f"zoom {zoom} is beyond the deepest zoom {MAX_ZOOM}")
    size = 2 ** zoom
    if column >= size or row >= size:
        raise NotFound(f"tile {zoom}/{column}/{row} does not exist: at zoom {zoom} "
                       f"x and y run from 0 to {size - 1}")
    return TileAddress(layer, zoom, column, row, parse_district(district, known_districts),
                       parse_date(at), category)


def parse_district(text: str | None, known: dict[str, str] | None = None) -> str | None:
    """A 6-digit district code among the known ones, or BadRequest."""
    if text is None:
        return None
    if not _DISTRICT.fullmatch(text):
        raise BadRequest(f"district must be a 6-digit county code such as 620102 "
                         f"(got {text[:40]!r})")
    if known is not None and text not in known:
        raise BadRequest(f"no district {text}; the districts are "
                         + ", ".join(f"{c} {n}" for c, n in sorted(known.items())))
    return text


def parse_date(text: str | None) -> dt.date | None:
    """A YYYY-MM-DD date, or BadRequest."""
    if text is None:
        return None
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"at must be a date written YYYY-MM-DD such as 2026-06-01 "
                         f"(got {text[:40]!r})") from None
