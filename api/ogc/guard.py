"""Checks on an items request that pygeoapi would otherwise answer with a 500 or get wrong."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from gis.errors import BadRequest

# Past this, PostgreSQL's OFFSET (bigint) overflows; no collection here comes near it.
MAX_OFFSET = 1_000_000_000
CRS84_NAMES = {"http://www.opengis.net/def/crs/OGC/1.3/CRS84", "OGC:CRS84",
               "urn:ogc:def:crs:OGC:1.3:CRS84", "urn:ogc:def:crs:OGC::CRS84"}
_BBOX_CALL = re.compile(r"\bBBOX\s*\(", re.IGNORECASE)
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")


def check_items_request(params: Mapping[str, str]) -> None:
    """Raise BadRequest for parameters pygeoapi does not turn into a 4xx itself."""
    offset = params.get("offset")
    if offset is not None and offset.strip().lstrip("+").isdigit() and int(offset) > MAX_OFFSET:
        raise BadRequest(f"offset must be at most {MAX_OFFSET}")
    if "datetime" in params:
        # pygeoapi's SQL provider answers 500 on a collection without a time field.
        raise BadRequest("these collections have no time dimension: use at=YYYY-MM-DD for "
                         "the grids as they were on a date")
    bbox = params.get("bbox")
    if bbox is not None:
        try:
            numbers = [float(v) for v in bbox.split(",")]
        except ValueError:
            numbers = []  # pygeoapi names the problem itself
        if any(not math.isfinite(v) for v in numbers):
            raise BadRequest("bbox values must be finite numbers")
    text = params.get("filter")
    filter_crs = params.get("filter-crs")
    if (text is not None and filter_crs is not None and filter_crs not in CRS84_NAMES
            and _BBOX_CALL.search(_STRING_LITERAL.sub("''", text))):
        # pygeoapi converts geometry literals to the storage CRS but not BBOX() corners.
        raise BadRequest("BBOX() inside a filter takes CRS84 corners only: drop filter-crs, "
                         "or use S_INTERSECTS(geometry, POLYGON((…))) in that CRS")
