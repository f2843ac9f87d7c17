"""The PostGIS reference lookup: ST_Covers on the stored geometry, lowest code on ties.

Subdivided parts (``grid_part``) only narrow the candidates by bounding box; the decision is
``ST_Covers`` on the whole grid geometry, so it is exactly PostGIS's answer for that geometry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_OWNERS = sa.text(
    """
    SELECT p.i, min(g.code)
    FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS p(lon, lat, i)
    CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS pt) AS q
    JOIN grid_part gp ON gp.level = 'small' AND gp.geom && q.pt
    JOIN grid g ON g.id = gp.grid_id AND g.version_high IS NULL AND ST_Covers(g.geom, q.pt)
    GROUP BY p.i
    """
)


def owners_by_postgis(conn: Connection, lons: Sequence[float],
                      lats: Sequence[float]) -> list[str | None]:
    """Owning small-grid code of each point by PostGIS (None where no grid covers it)."""
    found: dict[int, str] = dict(conn.execute(_OWNERS, {"lons": list(map(float, lons)),
                                        "lats": list(map(float, lats))}).all())
    return [found.get(i + 1) for i in range(len(lons))]
