"""A grid in force as a GeoJSON feature: what a map draws when it highlights one grid."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import InvalidInput, NotFound

_FEATURE = sa.text(
    """
    SELECT g.code, g.name, g.level, g.kind, g.parent_code, g.district_code, g.version_low,
           d.name AS district_name,
           ST_AsGeoJSON(CASE WHEN :tolerance > 0
                             THEN ST_SimplifyPreserveTopology(g.geom, :tolerance)
                             ELSE g.geom END, 7) AS geometry
    FROM grid_current g
    JOIN district d ON d.code = g.district_code
    WHERE g.code = :code
    """
)


def check_grid_code(code: str) -> str:
    """The code itself when it has the shape of a grid code (9, 12 or 15 digits), else 422."""
    if not code.isdigit() or len(code) not in (9, 12, 15):
        raise InvalidInput(f"{code!r} is not a grid code (9, 12 or 15 digits)")
    return code


def current_grid_feature(conn: Connection, code: str, *, tolerance: float = 0.0) -> dict[str, Any]:
    """The grid in force with this code as a GeoJSON Feature (WGS84); NotFound when none."""
    row = conn.execute(_FEATURE, {"code": check_grid_code(code),
                                  "tolerance": tolerance}).mappings().first()
    if row is None:
        raise NotFound(f"no grid {code} in force")
    return {
        "type": "Feature",
        "id": row["code"],
        "geometry": json.loads(row["geometry"]),
        "properties": {
            "code": row["code"], "name": row["name"], "level": row["level"],
            "kind": row["kind"], "parent_code": row["parent_code"],
            "district": {"code": row["district_code"], "name": row["district_name"]},
            "grid_version": row["version_low"],
        },
    }
