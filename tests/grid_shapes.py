"""Canonical small geometries and a clean lattice grid hierarchy, for grid-file and topology tests.

Coordinates sit in Lanzhou (about 103.8 E, 36.05 N). Every vertex of the lattice hierarchy is
ORIGIN + integer * unit, computed by one expression, so an edge shared by two grids has
bit-identical vertices on both sides, as the real grid set has.
"""

from __future__ import annotations

import geopandas
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

ORIGIN = (103.80, 36.05)
DISTRICT_CODE = "620102"
DISTRICT_NAME = "城关区"

SQUARE = Polygon([(103.80, 36.05), (103.81, 36.05), (103.81, 36.06), (103.80, 36.06)])
WITH_HOLE = Polygon(
    SQUARE.exterior.coords,
    [[(103.803, 36.053), (103.803, 36.057), (103.807, 36.057), (103.807, 36.053)]],
)
MULTIPART = MultiPolygon(
    [SQUARE, Polygon([(103.82, 36.05), (103.83, 36.05), (103.83, 36.06), (103.82, 36.06)])]
)
# Edges cross at (103.805, 36.055): GEOS says "Self-intersection[103.805 36.055]".
BOWTIE = Polygon([(103.80, 36.05), (103.81, 36.06), (103.81, 36.05), (103.80, 36.06)])
BOWTIE_CROSSING = (103.805, 36.055)
EMPTY = Polygon()
Z_POLYGON = Polygon([(x, y, 1520.0) for x, y in SQUARE.exterior.coords])
LINE = shapely.LineString([(103.80, 36.05), (103.81, 36.06)])
POINT_ON_EDGE = Point(103.805, 36.05)  # on SQUARE's southern edge
POINT_ON_VERTEX = Point(103.81, 36.06)  # SQUARE's north-east corner


def lattice_hierarchy(
    large: tuple[int, int] = (2, 1),
    medium: tuple[int, int] = (2, 1),
    small: tuple[int, int] = (2, 2),
    *,
    units: int = 1,
    unit: float = 0.005,
) -> geopandas.GeoDataFrame:
    """A clean hierarchy of rectangles: (columns, rows) of each level inside its parent.

    Each small grid is a square of `units` x `units` lattice steps of `unit` degrees, with a vertex
    at every step (units=25 gives 100 vertices); parents are the unions of their children.
    Default: 2 large, 4 medium, 16 small.
    """
    rows: list[dict[str, object]] = []
    small_rows: dict[str, list[Polygon]] = {}
    columns, lines = large[0] * medium[0] * small[0], large[1] * medium[1] * small[1]
    for col in range(columns):
        for line in range(lines):
            big = (col // (medium[0] * small[0]), line // (medium[1] * small[1]))
            mid = ((col // small[0]) % medium[0], (line // small[1]) % medium[1])
            low = (col % small[0], line % small[1])
            large_code = f"{DISTRICT_CODE}{big[1] * large[0] + big[0] + 1:03d}"
            medium_code = f"{large_code}{mid[1] * medium[0] + mid[0] + 1:03d}"
            code = f"{medium_code}{low[1] * small[0] + low[0] + 1:03d}"
            square = _lattice_square(col * units, line * units, units, unit)
            small_rows[code] = [square]
            rows.append(_row(code, medium_code, "small", MultiPolygon([square])))
    for parent_level, length in (("medium", 12), ("large", 9)):
        children = [r for r in rows if len(str(r["code"])) == length + 3]
        by_parent: dict[str, list[object]] = {}
        for child in children:
            by_parent.setdefault(str(child["code"])[:length], []).append(child["geometry"])
        for code, parts in sorted(by_parent.items()):
            # GEOS gives union shells clockwise; grids hold them counter-clockwise (RFC 7946).
            union = shapely.orient_polygons(shapely.union_all(np.array(parts, dtype=object)))
            parent_code = code[:9] if parent_level == "medium" else None
            rows.append(_row(code, parent_code, parent_level, _as_multi(union)))
    rows.sort(key=lambda r: (len(str(r["code"])), str(r["code"])))
    gdf = geopandas.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    gdf["parent_code"] = gdf["parent_code"].astype(object).where(gdf["parent_code"].notna(), None)
    return gdf


def _lattice_square(x0: int, y0: int, units: int, unit: float) -> Polygon:
    steps = (
        [(x0 + k, y0) for k in range(units)]
        + [(x0 + units, y0 + k) for k in range(units)]
        + [(x0 + units - k, y0 + units) for k in range(units)]
        + [(x0, y0 + units - k) for k in range(units)]
    )
    return Polygon([(ORIGIN[0] + i * unit, ORIGIN[1] + j * unit) for i, j in steps])


def _as_multi(geometry: object) -> MultiPolygon:
    if isinstance(geometry, MultiPolygon):
        return geometry
    assert isinstance(geometry, Polygon)
    return MultiPolygon([geometry])


def _row(
    code: str, parent_code: str | None, level: str, geometry: MultiPolygon
) -> dict[str, object]:
    names = {"large": "街道", "medium": "社区", "small": "网格"}
    return {
        "code": code,
        "parent_code": parent_code,
        "name": f"兰州{code[-3:]}{names[level]}",
        "level": level,
        "kind": "urban",
        "district_code": DISTRICT_CODE,
        "district_name": DISTRICT_NAME,
        "geometry": geometry,
    }
