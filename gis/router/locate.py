"""Compiled batch lookups over a CellTable + RingArrays: owner of each point, or all coverers."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from gis.router.cells import NO_GRID, cell_value
from gis.router.pip import grid_covers

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


# Points are visited grouped by a coarse square (4**GROUP_DEPTH of them over the root): the
# edges and table blocks of neighbouring points then stay in cache. Input order is random
# memory access otherwise, which costs more than the arithmetic.
GROUP_DEPTH = 7
GROUP_MIN_POINTS = 4096  # fewer points: not worth clearing the 4**GROUP_DEPTH counters


@njit(cache=True, nogil=True)
def _spatial_order(px: FloatArray, py: FloatArray, x0: float, y0: float, size: float) -> IntArray:
    """Indices of the points grouped by coarse square (a counting sort: O(n))."""
    if px.size < GROUP_MIN_POINTS:
        return np.arange(px.size)
    side = 1 << GROUP_DEPTH
    scale = side / size
    key = np.empty(px.size, dtype=np.int64)
    counts = np.zeros(side * side + 1, dtype=np.int64)
    for i in range(px.size):
        fx = (px[i] - x0) * scale
        fy = (py[i] - y0) * scale
        k = 0  # outside the root or not finite: any square will do, the lookup says -1
        if fx >= 0.0 and fx < side and fy >= 0.0 and fy < side:
            k = int(fy) * side + int(fx)
        key[i] = k
        counts[k + 1] += 1
    for k in range(side * side):
        counts[k + 1] += counts[k]
    order = np.empty(px.size, dtype=np.int64)
    for i in range(px.size):
        order[counts[key[i]]] = i
        counts[key[i]] += 1
    return order


@njit(cache=True, nogil=True)
def locate_points(
    px: FloatArray,
    py: FloatArray,
    x0: float,
    y0: float,
    size: float,
    n_grids: int,
    top: npt.NDArray[np.int32],
    block_ptr: IntArray,
    block_depth: IntArray,
    sub: npt.NDArray[np.int32],
    cand_ptr: IntArray,
    cand_grid: IntArray,
    cand_always: BoolArray,
    poly_ring: IntArray,
    grid_f: FloatArray,
    grid_i: IntArray,
    band_ptr: IntArray,
    band_xy: FloatArray,
    max_rings: int,
) -> IntArray:
    """Owning grid row per point (covering grid with the lowest code), -1 where none covers."""
    scratch = np.zeros(max_rings, dtype=np.int64)
    out = np.empty(px.size, dtype=np.int64)
    for i in _spatial_order(px, py, x0, y0, size):
        x = px[i]
        y = py[i]
        value = cell_value(x, y, x0, y0, size, n_grids, top, block_ptr, block_depth, sub)
        if value >= NO_GRID:
            out[i] = value
            continue
        listed = -(value + 2)
        owner = NO_GRID
        for k in range(cand_ptr[listed], cand_ptr[listed + 1]):
            g = cand_grid[k]
            if cand_always[k] or grid_covers(
                g, x, y, poly_ring, grid_f, grid_i, band_ptr, band_xy, scratch
            ):
                owner = g
                break
        out[i] = owner
    return out


@njit(cache=True, nogil=True)
def covering_grids(
    x: float,
    y: float,
    n_grids: int,
    poly_ring: IntArray,
    grid_f: FloatArray,
    grid_i: IntArray,
    band_ptr: IntArray,
    band_xy: FloatArray,
    max_rings: int,
) -> IntArray:
    """Every grid row whose geometry covers (x, y), by the exact kernel (bbox-filtered scan)."""
    scratch = np.zeros(max_rings, dtype=np.int64)
    hits = np.empty(n_grids, dtype=np.int64)
    n = 0
    for g in range(n_grids):
        if grid_covers(g, x, y, poly_ring, grid_f, grid_i, band_ptr, band_xy, scratch):
            hits[n] = g
            n += 1
    return hits[:n]
