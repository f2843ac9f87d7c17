"""Point density of events for the map: hexagon or square cells (PostGIS grids in UTM 48N)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# Metres, not degrees: UTM zone 48N covers 102-108 E, the whole of Lanzhou.
METRIC_SRID = 32648
CELL_SQL = {
    "hexagon": ("ST_HexagonGrid", "ST_Hexagon"),
    "square": ("ST_SquareGrid", "ST_Square"),
}


def heat_cells(conn: Connection, *, window_days: int, category: str | None,
               bbox: tuple[float, float, float, float] | None,
               shape: Literal["hexagon", "square"] = "hexagon", size_m: float = 1000.0,
               now: dt.datetime | None = None) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of cells with their event counts (empty cells left out)."""
    now = now or dt.datetime.now(dt.UTC)
    grid_fn, cell_fn = CELL_SQL[shape]
    box = bbox or (-180.0, -90.0, 180.0, 90.0)
    # Each event falls in the cell that covers it (the lowest i, j on a shared edge).
    rows = conn.execute(sa.text(
        f"""WITH pts AS (
                SELECT ST_Transform(e.geom, {METRIC_SRID}) AS g FROM event e
                WHERE e.grid_code IS NOT NULL AND e.geom IS NOT NULL
                  AND e.reported_at > :start AND e.reported_at <= :now
                  AND (CAST(:category AS text) IS NULL OR e.category = :category)
                  AND e.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4326)
            ), cells AS (
                SELECT c.i, c.j, count(*) AS events FROM pts
                CROSS JOIN LATERAL (
                    SELECT h.i, h.j FROM {grid_fn}(CAST(:size AS float8), pts.g) AS h
                    WHERE ST_Intersects(h.geom, pts.g) ORDER BY h.i, h.j LIMIT 1) AS c
                GROUP BY c.i, c.j
            )
            SELECT i, j, events, ST_AsGeoJSON(ST_Transform({cell_fn}(CAST(:size AS float8), i, j,
                       ST_SetSRID(ST_MakePoint(0, 0), {METRIC_SRID})), 4326), 7) AS geometry
            FROM cells ORDER BY i, j"""),
        {"start": now - dt.timedelta(days=window_days), "now": now, "category": category,
         "minx": box[0], "miny": box[1], "maxx": box[2], "maxy": box[3], "size": size_m}).all()
    features = [{"type": "Feature", "id": f"{r.i}_{r.j}",
                 "properties": {"i": r.i, "j": r.j, "events": int(r.events)},
                 "geometry": json.loads(r.geometry)} for r in rows]
    return {"type": "FeatureCollection", "features": features,
            "properties": {"shape": shape, "size_m": size_m, "window_days": window_days,
                           "category": category, "as_of": now.isoformat(),
                           "events": sum(f["properties"]["events"] for f in features)}}
