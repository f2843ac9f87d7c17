"""Random points inside given grids, or outside the city, for sample events and probes."""

from __future__ import annotations

import numpy as np
import shapely

DECIMALS = 7  # written coordinates: 1e-7 degree, about 1 cm
MARGIN_DEGREES = 5e-6  # sampled points keep about half a metre from every grid boundary


def points_inside(geoms: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One point per target grid index, strictly inside and clear of the boundary (rounded)."""
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    boundaries = shapely.boundary(geoms)
    out = np.full((len(targets), 2), np.nan)
    pending = np.arange(len(targets))
    for _ in range(200):
        if len(pending) == 0:
            return out
        g = targets[pending]
        x = np.round(rng.uniform(bounds[g, 0], bounds[g, 2]), DECIMALS)
        y = np.round(rng.uniform(bounds[g, 1], bounds[g, 3]), DECIMALS)
        ok = shapely.contains_xy(geoms[g], x, y)
        ok[ok] = shapely.distance(boundaries[g[ok]], shapely.points(x[ok], y[ok])) > MARGIN_DEGREES
        out[pending[ok]] = np.column_stack([x[ok], y[ok]])
        pending = pending[~ok]
    raise RuntimeError("could not sample points inside some grids")


def points_outside(tree: shapely.STRtree, count: int, bbox: tuple[float, float, float, float],
                   max_distance: float, rng: np.random.Generator) -> np.ndarray:
    """count points (rounded) outside every grid of tree, within max_distance degrees of one."""
    found: list[np.ndarray] = []
    total = 0
    minx, miny, maxx, maxy = bbox
    for _ in range(200):
        x = np.round(rng.uniform(minx, maxx, size=4 * count), DECIMALS)
        y = np.round(rng.uniform(miny, maxy, size=4 * count), DECIMALS)
        _, dist = tree.query_nearest(shapely.points(x, y), return_distance=True, all_matches=False)
        ok = (dist > MARGIN_DEGREES) & (dist < max_distance)
        found.append(np.column_stack([x[ok], y[ok]]))
        total += int(ok.sum())
        if total >= count:
            return np.vstack(found)[:count]
    raise RuntimeError("could not sample points outside the city")
