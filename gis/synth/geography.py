"""Where the synthetic Lanzhou lies: city outline, Yellow River valley band, district anchors.

Seeds and Voronoi cells are built in a "plane" where x = lon * LON_SCALE and y = lat, so that a
unit of x is about as many metres as a unit of y at Lanzhou's latitude; every coordinate written
out is in WGS84 degrees snapped to a multiple of 2**-24 degree (see ``UNITS_PER_DEGREE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

# cos(36.25 deg), written as a literal so that no platform's cosine can change a byte of output.
LON_SCALE = 0.80644
METRES_PER_DEGREE = 111_320.0
# Coordinates are integers in units of 2**-24 degree: orientation tests on such coordinates (and on
# exact midpoints of their segments) are exact in float64, so every engine agrees on edge points.
UNITS_PER_DEGREE = 2**24

VALLEY_BBOX = (103.55, 36.0, 104.0, 36.15)
CITY_BBOX = (102.6, 35.6, 104.6, 37.1)

# Rough outline of the municipality (lon, lat), clockwise from the far west (红古).
OUTLINE_LONLAT = (
    (102.64, 36.30), (102.74, 36.52), (102.84, 36.80), (103.00, 37.05), (103.30, 37.06),
    (103.50, 36.90), (103.78, 36.80), (104.05, 36.66), (104.22, 36.48), (104.33, 36.27),
    (104.52, 36.12), (104.50, 35.86), (104.30, 35.68), (104.05, 35.63), (103.86, 35.74),
    (103.68, 35.84), (103.50, 35.94), (103.34, 36.03), (103.10, 36.11), (102.90, 36.14),
    (102.72, 36.18),
)
# Centre line of the Yellow River through the valley (lon, lat), west to east.
RIVER_LONLAT = (
    (103.560, 36.100), (103.630, 36.106), (103.700, 36.096), (103.760, 36.080),
    (103.820, 36.068), (103.880, 36.070), (103.930, 36.079), (103.990, 36.088),
)
# Half-width (degrees of latitude) of the built-up band around the river, by longitude.
BAND_HALF_WIDTH = (
    (103.575, 0.015), (103.650, 0.024), (103.720, 0.019), (103.800, 0.030),
    (103.880, 0.032), (103.975, 0.017),
)
BAND_WEST, BAND_EAST = 103.575, 103.975


@dataclass(frozen=True)
class District:
    """One of the nine district sub-centres and where its grids grow from."""

    code: str
    name: str
    urban_larges: int
    rural_larges: int
    urban_anchor: tuple[float, float] | None
    rural_anchor: tuple[float, float] | None
    rural_reach: float = 1.0  # how far the district's rural part grows relative to the others


DISTRICTS: tuple[District, ...] = (
    District("620102", "城关区", 24, 0, (103.86, 36.06), None),
    District("620103", "七里河区", 10, 4, (103.77, 36.055), (103.74, 35.92), 0.75),
    District("620104", "西固区", 9, 3, (103.61, 36.10), (103.38, 36.12), 0.55),
    District("620105", "安宁区", 8, 0, (103.72, 36.108), None),
    District("620111", "红古区", 0, 7, None, (102.80, 36.28), 1.0),
    District("620121", "永登县", 0, 15, None, (103.15, 36.80), 1.3),
    District("620122", "皋兰县", 0, 7, None, (103.95, 36.42), 0.95),
    District("620123", "榆中县", 0, 17, None, (104.18, 35.92), 1.3),
    District("620171", "兰州新区", 0, 6, None, (103.60, 36.55), 0.85),
)


def river_lat(lon: np.ndarray) -> np.ndarray:
    """Latitude of the river centre line at the given longitudes."""
    xs, ys = zip(*RIVER_LONLAT, strict=True)
    return np.interp(lon, xs, ys)


def band_half_width(lon: np.ndarray) -> np.ndarray:
    """Half-width (degrees of latitude) of the urban band at the given longitudes."""
    xs, ws = zip(*BAND_HALF_WIDTH, strict=True)
    return np.interp(lon, xs, ws)


def to_plane(lonlat: np.ndarray) -> np.ndarray:
    """WGS84 degrees -> isotropic plane coordinates."""
    out = np.array(lonlat, dtype=np.float64)
    out[..., 0] *= LON_SCALE
    return out


def urban_band_plane() -> Polygon:
    """The built-up valley band (plane coordinates)."""
    lon = np.linspace(BAND_WEST, BAND_EAST, 81)
    centre, half = river_lat(lon), band_half_width(lon)
    north = np.column_stack([lon, centre + half])
    south = np.column_stack([lon, centre - half])[::-1]
    return Polygon(to_plane(np.vstack([north, south])))


def outline_plane() -> Polygon:
    """The municipality outline (plane coordinates), smoothed once so it has no sharp corners."""
    ring = np.array(OUTLINE_LONLAT[::-1], dtype=np.float64)  # counter-clockwise
    nxt = np.roll(ring, -1, axis=0)
    smooth = np.empty((2 * len(ring), 2))
    smooth[0::2] = 0.75 * ring + 0.25 * nxt
    smooth[1::2] = 0.25 * ring + 0.75 * nxt
    outline = Polygon(to_plane(smooth))
    if not outline.is_valid:
        raise RuntimeError("city outline is not a valid polygon")
    return outline


def north_of_river(lonlat: np.ndarray) -> np.ndarray:
    """True where a point lies north of the river centre line."""
    return np.asarray(lonlat[:, 1] > river_lat(lonlat[:, 0]))


def area_plane(polygon: Polygon) -> float:
    """Area of a plane polygon (plane units squared)."""
    return float(shapely.area(polygon))
