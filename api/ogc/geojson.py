"""GeoJSON of the OGC answers: coordinate precision, geometries as dicts, and JSON text by orjson.

pygeoapi prints every answer with the standard library's ``json.dumps``; for a page of 1000
small grids (~330 000 coordinates) that was 40 % of the request. ``install_fast_json`` points
the name ``to_json`` in ``pygeoapi.api.itemtypes`` (the items, item and queryables answers) at
``to_json_fast``, which gives the same document through orjson. pygeoapi 0.24 has no hook for
its serialiser, so this one assignment is the single place the project changes pygeoapi's
code at run time (docs/OGC.md, Decisions).

When the answer is that GeoJSON, the provider hands PostGIS's geometry text on as an
``orjson.Fragment`` (written as it is, never parsed into Python lists); the HTML, CSV and
JSON-LD answers, which pygeoapi builds from Python objects, get parsed geometries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import orjson
import pygeoapi.api.itemtypes as itemtypes_api
import shapely
from pygeoapi import util as pygeoapi_util

log = logging.getLogger(__name__)

# Decimals of every coordinate served: 1e-9° is 0.1 mm on the ground, PostGIS's own default
# for ST_AsGeoJSON; each number is within 5e-10° of the stored one.
COORDINATE_DECIMALS = 9
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME  # dates as pygeoapi writes them (isoformat)
# Set (per request, in the thread that runs pygeoapi) when the answer is written by orjson.
_GEOMETRY_AS_TEXT: ContextVar[bool] = ContextVar("ogc_geometry_as_text", default=False)


def geometry_mapping(geom: Any) -> dict[str, Any]:
    """GeoJSON geometry of a shapely (multi)polygon, at the served precision, a ring per call.

    shapely's ``__geo_interface__`` walks every coordinate in Python; ``get_coordinates`` does
    a ring at once.
    """
    kind = geom.geom_type
    if kind == "MultiPolygon":
        return {"type": kind, "coordinates": [_rings(part) for part in geom.geoms]}
    if kind == "Polygon":
        return {"type": kind, "coordinates": _rings(geom)}
    rounded = shapely.transform(geom, lambda xy: xy.round(COORDINATE_DECIMALS))
    return dict(shapely.geometry.mapping(rounded))


def _rings(polygon: Any) -> list[list[list[float]]]:
    return [shapely.get_coordinates(ring).round(COORDINATE_DECIMALS).tolist()
            for ring in (polygon.exterior, *polygon.interiors)]


def served_geometry(text: str | None) -> Any:
    """A geometry PostGIS printed as GeoJSON: the text itself for orjson, else a dict."""
    if text is None:
        return None
    return orjson.Fragment(text) if _GEOMETRY_AS_TEXT.get() else orjson.loads(text)


@contextmanager
def geometry_text_passed_on(wanted: bool) -> Iterator[None]:
    """Within the block, pages carry geometry text if ``wanted`` and orjson writes them."""
    token = _GEOMETRY_AS_TEXT.set(wanted and itemtypes_api.to_json is to_json_fast)
    try:
        yield
    finally:
        _GEOMETRY_AS_TEXT.reset(token)


def to_json_fast(dict_: dict[str, Any], pretty: bool = False) -> str:
    """pygeoapi's ``to_json`` (compact, ``<``/``>`` escaped) written by orjson."""
    if pretty:
        return pygeoapi_util.to_json(dict_, pretty)
    try:
        text = orjson.dumps(dict_, default=pygeoapi_util.json_serial, option=_OPTIONS)
    except TypeError:  # what orjson refuses (a non-string key, a huge integer) json still takes
        return pygeoapi_util.to_json(dict_, pretty)
    return text.replace(b"<", b"&lt;").replace(b">", b"&gt;").decode()


def install_fast_json() -> None:
    """Have pygeoapi's items, item and queryables answers written by ``to_json_fast``."""
    current = getattr(itemtypes_api, "to_json", None)
    if current is to_json_fast:
        return
    if current is not pygeoapi_util.to_json:
        log.warning("pygeoapi.api.itemtypes.to_json is not pygeoapi's own: left as it is")
        return
    itemtypes_api.to_json = to_json_fast
