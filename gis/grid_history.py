"""Grids through time: a grid's versions, and which grid owned a point on a past date."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import NotFound

_HISTORY = sa.text(
    """
    SELECT g.version_low, g.version_high, g.valid_from, g.valid_to, g.name, g.kind,
           g.parent_code, round(ST_Area(g.geom::geography)::numeric, 1) AS area_m2,
           v.author, v.reason, c.id AS change_id,
           CASE WHEN :geometry THEN ST_AsGeoJSON(g.geom, 7) END AS geometry
    FROM grid g
    JOIN grid_version v ON v.id = g.version_low
    LEFT JOIN grid_change c ON c.committed_version = g.version_low
    WHERE g.code = :code
    ORDER BY g.version_low
    """
)


def grid_history(conn: Connection, code: str, *, geometry: bool = False) -> list[dict[str, Any]]:
    """Every version of a grid, oldest first, with who changed it and why (NotFound if none)."""
    rows = conn.execute(_HISTORY, {"code": code, "geometry": geometry}).mappings().all()
    if not rows:
        raise NotFound(f"no grid {code} in any version")
    history = []
    for row in rows:
        entry = {
            "version_from": row["version_low"], "version_to": row["version_high"],
            "valid_from": row["valid_from"].isoformat(),
            "valid_to": row["valid_to"].isoformat() if row["valid_to"] else None,
            "name": row["name"], "kind": row["kind"], "parent_code": row["parent_code"],
            "area_m2": float(row["area_m2"]), "author": row["author"], "reason": row["reason"],
            "change_id": row["change_id"],
        }
        if geometry:
            entry["geometry"] = json.loads(row["geometry"])
        history.append(entry)
    return history


_OWNER_AT = sa.text(
    """
    SELECT s.code, s.name, s.kind,
           (SELECT max(id) FROM grid_version WHERE valid_from <= :at) AS version,
           m.code AS medium_code, m.name AS medium_name,
           l.code AS large_code, l.name AS large_name
    FROM grid s
    LEFT JOIN grid m ON m.code = s.parent_code AND m.valid_from <= :at
         AND (m.valid_to IS NULL OR m.valid_to > :at)
    LEFT JOIN grid l ON l.code = m.parent_code AND l.valid_from <= :at
         AND (l.valid_to IS NULL OR l.valid_to > :at)
    WHERE s.level = 'small' AND s.valid_from <= :at AND (s.valid_to IS NULL OR s.valid_to > :at)
      AND s.geom && ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
      AND ST_Covers(s.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
    ORDER BY s.code
    LIMIT 1
    """
)


def owner_at(conn: Connection, lon: float, lat: float, at: dt.datetime) -> dict[str, Any]:
    """The small grid that owned a WGS84 point at ``at`` (same rule: covers, lowest code)."""
    row = conn.execute(_OWNER_AT, {"lon": lon, "lat": lat, "at": at}).mappings().first()
    if row is None:
        raise NotFound(f"no small grid covered ({lon}, {lat}) on {at.isoformat()}")
    return {
        "as_of": at.isoformat(),
        "grid_version": row["version"],
        "small": {"code": row["code"], "name": row["name"], "kind": row["kind"]},
        "medium": {"code": row["medium_code"], "name": row["medium_name"]},
        "large": {"code": row["large_code"], "name": row["large_name"]},
    }
