"""The SQL behind each tile layer: MVT straight from PostGIS (ST_AsMVT over ST_AsMVTGeom).

Shapes come pre-simplified per zoom band from ``grid_tile_shape`` (migration 0008) up to zoom 13,
and from the stored geometry from zoom 14; levels and bands are written into the SQL from code
(never from a request) so that each query meets its partial GiST index.
"""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from tiles.address import TileAddress

EXTENT = 4096
BUFFER = 64
MERCATOR_HALF = 20037508.342789244  # half the EPSG:3857 world, as ST_TileEnvelope has it
# Bands with their own simplified shape (the migration writes the same list): a band serves its
# zoom and the next; from RAW_FROM the stored geometry is used as it is.
BANDS = (6, 8, 10, 12)
RAW_FROM = 14

_ENVELOPE = "ST_TileEnvelope(:z, :x, :y)"
_SEARCH = f"ST_TileEnvelope(:z, :x, :y, margin => {BUFFER / EXTENT})"

_GRID_LAYER = """
SELECT ST_AsMVT(t, '{layer}', {extent}, 'geom') FROM (
  SELECT g.code, g.name, g.level, g.kind, d.name AS district,
         COALESCE(c.colour, 'blue') AS colour, COALESCE(c.score, 0)::float8 AS score,
         COALESCE(c.open_events, 0) AS open_events,
         ST_AsMVTGeom({geom}, {envelope}, {extent}, {buffer}, true) AS geom
  FROM {source}
  JOIN district d ON d.code = g.district_code
  LEFT JOIN grid_colour c ON c.code = g.code
  WHERE {where}
) t WHERE t.geom IS NOT NULL
"""

# Points first (the tile's small grids), then their heat in one grouped pass: a per-grid lateral
# aggregate costs three times as much on a z9 tile of the valley. A point needs no clipping, so
# its tile coordinates are plain arithmetic: ST_AsMVTGeom (clip, validate) costs 5-10 times more.
_HEAT_LAYER = """
WITH p AS MATERIALIZED (
  SELECT g.code, ST_MakePoint(round((ST_X(a.geom) - :tile_x0) * :tile_k),
                              round((:tile_y0 - ST_Y(a.geom)) * :tile_k)) AS geom
  FROM grid_tile_anchor a
  JOIN grid g ON g.id = a.grid_id
  WHERE a.level = 'small' AND a.geom && {search} AND {where}
), h AS (
  SELECT code, sum(events_7d)::int AS events_7d, sum(events_30d)::int AS events_30d
  FROM grid_heat WHERE code IN (SELECT code FROM p) {category}
  GROUP BY code
)
SELECT ST_AsMVT(t, 'heat', {extent}, 'geom') FROM (
  SELECT p.code, h.events_7d, h.events_30d, p.geom
  FROM p JOIN h ON h.code = p.code
  WHERE h.events_30d > 0
) t
"""


def band_for(z: int) -> int | None:
    """The simplified band serving zoom ``z``, or None where the stored geometry is used."""
    if z >= RAW_FROM:
        return None
    return max((b for b in BANDS if b <= z), default=BANDS[0])


def _conditions(past: bool, district: bool) -> str:
    when = ("g.valid_from <= :at AND (g.valid_to IS NULL OR g.valid_to > :at)" if past
            else "g.version_high IS NULL")
    return when + (" AND g.district_code = :district" if district else "")


@cache
def _statement(layer: str, band: int | None, past: bool, district: bool, category: bool
               ) -> sa.TextClause:
    where = _conditions(past, district)
    common = {"extent": EXTENT, "buffer": BUFFER, "envelope": _ENVELOPE}
    if layer == "heat":
        return sa.text(_HEAT_LAYER.format(
            search=_SEARCH, where=where, category="AND category = :category" if category else "",
            **common))
    if band is None:  # the stored 4326 geometry: transform the envelope, never the column
        source, geom = "grid g", "ST_Transform(g.geom, 3857)"
        where = (f"g.level = '{layer}' AND g.geom && ST_Transform({_SEARCH}, 4326) "
                 f"AND {where}")
    else:
        source, geom = "grid_tile_shape s JOIN grid g ON g.id = s.grid_id", "s.geom"
        where = f"s.level = '{layer}' AND s.band = {band} AND s.geom && {_SEARCH} AND {where}"
    return sa.text(_GRID_LAYER.format(layer=layer, geom=geom, source=source, where=where,
                                      **common))


# After five runs of one prepared statement PostgreSQL may switch to a generic plan, blind to
# the tile's size: a z9 heat tile then takes 8-11 s instead of 20 ms (measured). Tile queries are
# planned for their own envelope every time, for the rest of the caller's transaction.
_CUSTOM_PLANS = sa.text("SET LOCAL plan_cache_mode = force_custom_plan")


def render_tile(conn: Connection, address: TileAddress) -> bytes:
    """The MVT bytes of one tile (empty bytes when no feature reaches it)."""
    conn.execute(_CUSTOM_PLANS)
    band = None if address.layer == "heat" else band_for(address.z)
    statement = _statement(address.layer, band, address.at is not None,
                           address.district is not None, address.category is not None)
    params: dict[str, object] = {"z": address.z, "x": address.x, "y": address.y}
    if address.layer == "heat":
        size = 2 * MERCATOR_HALF / 2 ** address.z
        params.update(tile_x0=-MERCATOR_HALF + address.x * size,
                      tile_y0=MERCATOR_HALF - address.y * size, tile_k=EXTENT / size)
    if address.at is not None:
        params["at"] = address.moment
    if address.district is not None:
        params["district"] = address.district
    if address.category is not None:
        params["category"] = address.category
    data: bytes | None = conn.execute(statement, params).scalar_one()
    return bytes(data) if data is not None else b""
