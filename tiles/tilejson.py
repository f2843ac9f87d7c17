"""TileJSON 3.0.0 documents: one per layer, so a web map is pointed at a single URL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tiles.address import MAX_ZOOM

GRID_FIELDS = {
    "code": "String: grid code (9, 12 or 15 digits)",
    "name": "String: grid name",
    "level": "String: large, medium or small",
    "kind": "String: urban, rural or dedicated",
    "district": "String: district (county) name",
    "colour": "String: red, yellow or blue (blue until first computed)",
    "score": "Number: the colour score over the rules' window",
    "open_events": "Number: events not yet resolved",
}
HEAT_FIELDS = {
    "code": "String: small grid code",
    "events_7d": "Number: events in the last 7 days",
    "events_30d": "Number: events in the last 30 days",
}
DESCRIPTIONS = {
    "large": "大网格 (towns / streets) coloured red / yellow / blue",
    "medium": "中网格 (villages / communities) coloured red / yellow / blue",
    "small": "小网格 (groups / blocks / dedicated grids) coloured red / yellow / blue",
    "heat": "Event heat: one point per small grid with events in the last 30 days "
            "(?category= for one event category's counts)",
}


def city_bounds(conn: Connection) -> list[float]:
    """[west, south, east, north] of the grids in force (the whole of the world when none)."""
    row = conn.execute(sa.text(
        """SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
           FROM (SELECT ST_Extent(geom) AS e FROM grid
                 WHERE version_high IS NULL AND level = 'large') b""")).one()
    if row[0] is None:
        return [-180.0, -85.0511, 180.0, 85.0511]
    return [round(float(v), 6) for v in row]


def tilejson(layer: str, tiles_url: str, bounds: list[float]) -> dict[str, Any]:
    """The TileJSON document of ``layer`` whose tiles are at ``tiles_url`` ({z}/{x}/{y})."""
    fields = dict(HEAT_FIELDS) if layer == "heat" else dict(GRID_FIELDS)
    west, south, east, north = bounds
    return {
        "tilejson": "3.0.0",
        "name": f"minqing-{layer}",
        "description": DESCRIPTIONS[layer],
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": 0,
        "maxzoom": MAX_ZOOM,
        "bounds": bounds,
        "center": [round((west + east) / 2, 6), round((south + north) / 2, 6), 9],
        "vector_layers": [{"id": layer, "description": DESCRIPTIONS[layer],
                           "minzoom": 0, "maxzoom": MAX_ZOOM, "fields": fields}],
    }
