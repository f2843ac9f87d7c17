"""Point-in-grid test that repeats PostGIS ST_Covers arithmetic exactly (compiled with numba).

PostGIS 3.3 (liblwgeom / postgis/lwgeom_functions_analytic.c, and the interval tree of 3.4+)
decides a point against a (multi)polygon like this, in plain IEEE double arithmetic:

- a float32 bounding box, rounded outwards, rejects points outside it;
- per ring, for every non-zero-length edge (x1,y1)->(x2,y2):
  side = (x2-x1)*(py-y1) - (px-x1)*(y2-y1);
  side == 0 and the point inside the edge's closed bounding box -> the ring's boundary;
  y1 <= py < y2 and side > 0 -> winding + 1;  y2 <= py < y1 and side < 0 -> winding - 1;
- per polygon: on the exterior ring's boundary -> covered; exterior winding 0 -> next polygon;
  then the holes in order: on a hole's boundary -> covered; inside a hole -> next polygon;
  otherwise covered.

We evaluate the same expression in the same order; numba does not fuse a*b - c*d into an FMA
unless fastmath is asked for (it is not), so every sign matches bit for bit. Edges whose
y-range does not hold py change nothing in that procedure, so scanning only the y-band of the
point (as PostGIS's own index does) gives the same answer.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba import njit

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@njit(cache=True, nogil=True, inline="always")
def band_of(y: float, y0: float, scale: float, count: int) -> int:
    """Band index of ordinate y for one grid; monotone in y, clamped to the grid's bands."""
    b = math.floor((y - y0) * scale)
    if b < 0:
        return 0
    if b >= count:
        return count - 1
    return int(b)


@njit(cache=True)
def pack_band_edges(vxy: FloatArray, edge_ring: IntArray, band_edge: IntArray) -> FloatArray:
    """Per band entry: x1, y1, x2, y2 and the ring id (as a double), contiguous for the scan."""
    out = np.empty((band_edge.size, 5), dtype=np.float64)
    for k in range(band_edge.size):
        i = band_edge[k]
        out[k, 0] = vxy[i, 0]
        out[k, 1] = vxy[i, 1]
        out[k, 2] = vxy[i + 1, 0]
        out[k, 3] = vxy[i + 1, 1]
        out[k, 4] = edge_ring[i]
    return out


@njit(cache=True)
def build_bands(
    vy: FloatArray,
    edge_ids: IntArray,
    edge_grid: IntArray,
    band_y0: FloatArray,
    band_scale: FloatArray,
    band_count: IntArray,
    band_base: IntArray,
    total_bands: int,
) -> tuple[IntArray, IntArray]:
    """CSR lists of the edges whose y-range meets each band (an edge may sit in several)."""
    counts = np.zeros(total_bands + 1, dtype=np.int64)
    for k in range(edge_ids.size):
        i = edge_ids[k]
        g = edge_grid[k]
        lo = band_of(min(vy[i], vy[i + 1]), band_y0[g], band_scale[g], band_count[g])
        hi = band_of(max(vy[i], vy[i + 1]), band_y0[g], band_scale[g], band_count[g])
        for b in range(lo, hi + 1):
            counts[band_base[g] + b + 1] += 1
    ptr = np.cumsum(counts)
    fill = ptr[:-1].copy()
    out = np.empty(ptr[-1], dtype=np.int64)
    for k in range(edge_ids.size):
        i = edge_ids[k]
        g = edge_grid[k]
        lo = band_of(min(vy[i], vy[i + 1]), band_y0[g], band_scale[g], band_count[g])
        hi = band_of(max(vy[i], vy[i + 1]), band_y0[g], band_scale[g], band_count[g])
        for b in range(lo, hi + 1):
            slot = band_base[g] + b
            out[fill[slot]] = i
            fill[slot] += 1
    return ptr, out


# Marks a ring whose boundary holds the point (a winding number can never get this large).
ON_BOUNDARY = 1 << 40


@njit(nogil=True, _nrt=False)  # type: ignore[call-overload]
def grid_covers(
    g: int,
    px: float,
    py: float,
    poly_ring: IntArray,
    grid_f: FloatArray,
    grid_i: IntArray,
    band_ptr: IntArray,
    band_xy: FloatArray,
    scratch: IntArray,
) -> bool:
    """PostGIS ST_Covers(grid g, POINT(px py)), bit for bit; scratch holds max_rings ints.

    Few arguments on purpose: every array passed to a compiled call costs time per call. The
    band's edges are read from one contiguous block (band_xy), not through vertex indices:
    scattered loads cost more than the arithmetic.
    """
    if px < grid_f[g, 0] or px > grid_f[g, 2] or py < grid_f[g, 1] or py > grid_f[g, 3]:
        return False
    p_first = grid_i[g, 0]
    p_end = grid_i[g, 1]
    if p_first == p_end:
        return False
    r0 = poly_ring[p_first, 0]
    n_rings = poly_ring[p_end - 1, 1] - r0
    for r in range(n_rings):
        scratch[r] = 0
    slot = grid_i[g, 3] + band_of(py, grid_f[g, 4], grid_f[g, 5], grid_i[g, 2])
    for k in range(band_ptr[slot], band_ptr[slot + 1]):
        r = int(band_xy[k, 4]) - r0
        if scratch[r] == ON_BOUNDARY:
            continue
        x1 = band_xy[k, 0]
        y1 = band_xy[k, 1]
        x2 = band_xy[k, 2]
        y2 = band_xy[k, 3]
        side = (x2 - x1) * (py - y1) - (px - x1) * (y2 - y1)
        if side == 0.0 and min(x1, x2) <= px <= max(x1, x2) and min(y1, y2) <= py <= max(y1, y2):
            scratch[r] = ON_BOUNDARY
        elif y1 <= py and py < y2 and side > 0.0:
            scratch[r] += 1
        elif y2 <= py and py < y1 and side < 0.0:
            scratch[r] -= 1
    for p in range(p_first, p_end):
        exterior = poly_ring[p, 0] - r0
        if exterior == poly_ring[p, 1] - r0:
            continue  # every ring of this part was unusable
        if scratch[exterior] == ON_BOUNDARY:
            return True
        if scratch[exterior] == 0:
            continue
        in_hole = False
        for h in range(exterior + 1, poly_ring[p, 1] - r0):
            if scratch[h] == ON_BOUNDARY:
                return True
            if scratch[h] != 0:
                in_hole = True
                break
        if not in_hole:
            return True
    return False


@njit(cache=True)
def covers_pairs(
    grids: IntArray,
    px: FloatArray,
    py: FloatArray,
    poly_ring: IntArray,
    grid_f: FloatArray,
    grid_i: IntArray,
    band_ptr: IntArray,
    band_xy: FloatArray,
    max_rings: int,
) -> npt.NDArray[np.bool_]:
    """grid_covers for many (grid, point) pairs."""
    scratch = np.zeros(max_rings, dtype=np.int64)
    out = np.zeros(grids.size, dtype=np.bool_)
    for k in range(grids.size):
        out[k] = grid_covers(
            grids[k], px[k], py[k], poly_ring, grid_f, grid_i, band_ptr, band_xy, scratch
        )
    return out
