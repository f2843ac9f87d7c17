"""Quadtree of cells over the grids' extent: most cells answer alone, the rest name candidates.

A leaf cell that no grid edge comes near (within MARGIN_DEG of its closed box) has the same
ST_Covers answer for every point in it, so its owner is computed once, at the cell's centre.
PostGIS's double-precision side test can only differ from exact geometry for points within
~1e-13 degree of an edge (its rounding error is ~1e-16 times the ring's extent), far inside the
margin. A leaf that an edge comes near keeps its candidate grids in code order; a point there
is decided by the exact kernel (gis.router.pip), stopping at the first grid that covers it.
Cells are refined until they are small against the grids they touch, so few points need that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from gis.router import quadtree
from gis.router.rings import RingArrays

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MARGIN_DEG = 1e-9
# A cell touching grid edges is split until it is this many times smaller than the smallest
# grid it touches (sqrt of its bbox area): a square grid then has ~2.6/16 = 16 % of its area in
# cells that need the exact test.
CELLS_PER_GRID_SIDE = 16
# The top table has 4**TOP_DEPTH cells (4 MiB of int32); below it, blocks go MAX_BLOCK_DEPTH
# levels deeper at most (256 cells a block).
TOP_DEPTH = 10
MAX_BLOCK_DEPTH = 4
MAX_DEPTH = TOP_DEPTH + MAX_BLOCK_DEPTH

NO_GRID = -1


@dataclass(frozen=True)
class CellTable:
    """The quadtree's leaves flattened: a top table of 4**TOP_DEPTH cells over the root square
    [x0, x0+size)^2, and for each top cell that was split further, a dense block of
    4**block_depth cells. A cell value is a grid row, NO_GRID, or -(2 + m): candidate list m.
    A top value >= n_grids means "look in block (value - n_grids)"."""

    x0: float
    y0: float
    size: float
    top: npt.NDArray[np.int32]
    block_ptr: IntArray
    block_depth: IntArray
    sub: npt.NDArray[np.int32]
    cand_ptr: IntArray  # CSR per candidate list into cand_grid
    cand_grid: IntArray  # candidate grid rows, lowest code first
    cand_always: npt.NDArray[np.bool_]  # this candidate covers the whole cell
    depth: int
    n_grids: int
    leaf_cells: int
    mixed_cells: int

    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        arrays = (
            self.top,
            self.block_ptr,
            self.block_depth,
            self.sub,
            self.cand_ptr,
            self.cand_grid,
            self.cand_always,
        )
        return sum(int(a.nbytes) for a in arrays)


def _root_square(box: FloatArray) -> tuple[float, float, float]:
    """A power-of-two square on a multiple of its size, holding every grid box with room."""
    xmin, ymin = float(box[:, 0].min()), float(box[:, 1].min())
    xmax, ymax = float(box[:, 2].max()), float(box[:, 3].max())
    extent = max(xmax - xmin, ymax - ymin, 1e-6)
    # x0, y0 on multiples of 2**-10 keep every cell corner an exact double.
    x0 = math.floor(xmin * 1024.0 - 1.0) / 1024.0
    y0 = math.floor(ymin * 1024.0 - 1.0) / 1024.0
    size = 2.0 ** math.ceil(math.log2(extent * 1.01))
    while not (x0 + size > xmax and y0 + size > ymax):
        size *= 2.0
    return x0, y0, size


def build_cell_table(rings: RingArrays, code_rank: IntArray) -> CellTable:
    """Build the quadtree for these rings; code_rank[g] orders grids by code (0 = lowest)."""
    x0, y0, size = _root_square(rings.grid_box) if rings.n_grids else (0.0, 0.0, 1.0)
    # Every usable edge sits in at least one band: these are the edges, in vertex order.
    usable = np.zeros(rings.vxy.shape[0], dtype=bool)
    usable[rings.band_edge] = True
    edge_ids = np.flatnonzero(usable)
    edge_grid = rings.ring_grid[rings.edge_ring[edge_ids]]
    edge_xy = np.column_stack([rings.vxy[edge_ids], rings.vxy[edge_ids + 1]])
    bounds_w = rings.grid_box[:, 2] - rings.grid_box[:, 0]
    bounds_h = rings.grid_box[:, 3] - rings.grid_box[:, 1]
    grid_scale = np.sqrt(np.maximum(bounds_w * bounds_h, 0.0))
    level, ix, iy, value, cand_ptr, cand_grid, cand_always, depth = quadtree.build_leaves(
        x0,
        y0,
        size,
        MARGIN_DEG,
        float(CELLS_PER_GRID_SIDE),
        MAX_DEPTH,
        np.ascontiguousarray(edge_xy, dtype=np.float64).reshape(-1, 4),
        edge_grid.astype(np.int64),
        grid_scale,
        np.ascontiguousarray(rings.grid_box),
        code_rank.astype(np.int64),
        *rings.kernel_args(),
        rings.max_rings,
    )
    top, block_ptr, block_depth, sub = _flatten(level, ix, iy, value, rings.n_grids)
    return CellTable(
        x0=x0,
        y0=y0,
        size=size,
        top=top,
        block_ptr=block_ptr,
        block_depth=block_depth,
        sub=sub,
        cand_ptr=cand_ptr,
        cand_grid=cand_grid,
        cand_always=cand_always,
        depth=int(depth),
        n_grids=rings.n_grids,
        leaf_cells=int(level.size),
        mixed_cells=int(cand_ptr.size - 1),
    )


def _flatten(
    level: IntArray, ix: IntArray, iy: IntArray, value: IntArray, n_grids: int
) -> tuple[npt.NDArray[np.int32], IntArray, IntArray, npt.NDArray[np.int32]]:
    """Quadtree leaves -> a top table at TOP_DEPTH plus one dense block per deeper top cell."""
    top_x = ix >> np.maximum(level - TOP_DEPTH, 0)
    top_y = iy >> np.maximum(level - TOP_DEPTH, 0)
    deep = level > TOP_DEPTH
    top_key = top_y[deep] * (1 << TOP_DEPTH) + top_x[deep]
    keys, block_of = np.unique(top_key, return_inverse=True)
    block_depth = np.zeros(keys.size, dtype=np.int64)
    np.maximum.at(block_depth, block_of, level[deep] - TOP_DEPTH)
    block_ptr = np.concatenate([[0], np.cumsum(4**block_depth)]).astype(np.int64)
    block = np.full(level.size, -1, dtype=np.int64)
    block[deep] = block_of
    top = np.full(4**TOP_DEPTH, NO_GRID, dtype=np.int32)
    top[keys] = n_grids + np.arange(keys.size)
    sub = np.full(int(block_ptr[-1]), NO_GRID, dtype=np.int32)
    _fill(level, ix, iy, value, block, block_ptr, block_depth, top, sub)
    return top, block_ptr, block_depth, sub


@njit(cache=True)
def _fill(level, ix, iy, value, block, block_ptr, block_depth, top, sub):  # type: ignore[no-untyped-def]
    top_side = 1 << TOP_DEPTH
    for k in range(level.size):
        if block[k] < 0:
            span = 1 << (TOP_DEPTH - level[k])
            for a in range(span):
                row = (iy[k] * span + a) * top_side
                for b in range(span):
                    top[row + ix[k] * span + b] = value[k]
        else:
            blk = block[k]
            d = block_depth[blk]
            rel = level[k] - TOP_DEPTH
            span = 1 << (d - rel)
            side = 1 << d
            lx = ix[k] - ((ix[k] >> rel) << rel)
            ly = iy[k] - ((iy[k] >> rel) << rel)
            for a in range(span):
                row = block_ptr[blk] + (ly * span + a) * side
                for b in range(span):
                    sub[row + lx * span + b] = value[k]


@njit(cache=True, nogil=True, inline="always")
def cell_value(
    px: float,
    py: float,
    x0: float,
    y0: float,
    size: float,
    n_grids: int,
    top: npt.NDArray[np.int32],
    block_ptr: IntArray,
    block_depth: IntArray,
    sub: npt.NDArray[np.int32],
) -> int:
    """Value of the cell holding (px, py): grid row, NO_GRID, or -(2 + candidate list id)."""
    if not (px >= x0 and px < x0 + size and py >= y0 and py < y0 + size):
        return NO_GRID  # also NaN
    side = 1 << TOP_DEPTH
    # size is a power of two and x0 a multiple of 2**-10: these products are exact.
    fx = (px - x0) * (side / size)
    fy = (py - y0) * (side / size)
    tx = min(int(fx), side - 1)
    ty = min(int(fy), side - 1)
    v = int(top[ty * side + tx])
    if v < n_grids:
        return v
    blk = v - n_grids
    d = block_depth[blk]
    bside = 1 << d
    sx = min(int((fx - tx) * bside), bside - 1)
    sy = min(int((fy - ty) * bside), bside - 1)
    return int(sub[block_ptr[blk] + sy * bside + sx])
