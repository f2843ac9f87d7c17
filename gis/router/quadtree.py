"""Compiled breadth-first build of the cell quadtree (see gis.router.cells for what it means).

One pass per level over the level's nodes, each node carrying two lists: the grid edges that
come near its box (within MARGIN_DEG) and the grids whose box meets it. A node with edges that
is large against its smallest grid splits into four children (x-major quadrant order, so nodes
of a level come out in the order of their quadrant path); every other node is a leaf. A leaf
gets its candidates at once: the grids whose edges reach it, plus the grids whose box holds the
whole leaf and that cover its centre (those cover all of it). Leaves are emitted level by level
in that node order, which the candidate list numbering depends on.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from gis.router.pip import grid_covers

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]

NO_GRID = -1


@njit(cache=True, inline="always")
def _room(buf, need):  # type: ignore[no-untyped-def]
    """buf, or a copy with room for `need` items (doubling keeps appends O(1) amortised)."""
    if need <= buf.size:
        return buf
    grown = np.empty(max(need, 2 * buf.size), dtype=buf.dtype)
    grown[: buf.size] = buf
    return grown


@njit(cache=True, inline="always")
def _edge_meets_box(
    x1: float, y1: float, x2: float, y2: float, bx0: float, by0: float, bx1: float, by1: float
) -> bool:
    """Conservative: False only when the edge surely stays away from the (expanded) box."""
    if not (min(x1, x2) <= bx1 and max(x1, x2) >= bx0):
        return False
    if not (min(y1, y2) <= by1 and max(y1, y2) >= by0):
        return False
    dx = x2 - x1
    dy = y2 - y1
    s0 = dx * (by0 - y1) - (bx0 - x1) * dy
    s1 = dx * (by0 - y1) - (bx1 - x1) * dy
    s2 = dx * (by1 - y1) - (bx0 - x1) * dy
    s3 = dx * (by1 - y1) - (bx1 - x1) * dy
    if s0 > 0.0 and s1 > 0.0 and s2 > 0.0 and s3 > 0.0:
        return False
    return not (s0 < 0.0 and s1 < 0.0 and s2 < 0.0 and s3 < 0.0)


@njit(cache=True)
def build_leaves(  # type: ignore[no-untyped-def]
    x0,
    y0,
    size,
    margin,
    cells_per_grid_side,
    max_depth,
    edge_xy,
    edge_grid,
    grid_scale,
    grid_box,
    code_rank,
    poly_ring,
    grid_f,
    grid_i,
    band_ptr,
    band_xy,
    max_rings,
):
    """Leaves of the quadtree in breadth-first order and their candidate lists.

    Returns (level, ix, iy, value, cand_ptr, cand_grid, cand_always, depth): a leaf's value is
    a grid row, NO_GRID, or -(2 + m) for candidate list m (lists numbered in leaf order).
    """
    n_grids = grid_box.shape[0]
    n_edges = edge_grid.size
    scratch = np.zeros(max(max_rings, 1), dtype=np.int64)
    seen = np.full(max(n_grids, 1), -1, dtype=np.int64)

    # The current level: node boxes, their edges and grids (CSR).
    node_ix = np.zeros(1, dtype=np.int64)
    node_iy = np.zeros(1, dtype=np.int64)
    e_ptr = np.array([0, n_edges], dtype=np.int64)
    e_list = np.arange(n_edges).astype(np.int32)
    g_ptr = np.array([0, n_grids], dtype=np.int64)
    g_list = np.arange(n_grids).astype(np.int32)

    leaf_level = np.empty(1024, dtype=np.int64)
    leaf_ix = np.empty(1024, dtype=np.int64)
    leaf_iy = np.empty(1024, dtype=np.int64)
    leaf_value = np.empty(1024, dtype=np.int64)
    cand_grid = np.empty(1024, dtype=np.int64)
    cand_always = np.empty(1024, dtype=np.bool_)
    cand_ptr = np.zeros(1024, dtype=np.int64)
    n_leaves = 0
    n_lists = 0
    n_cand = 0
    local_grid = np.empty(max(n_grids, 1), dtype=np.int64)
    local_always = np.empty(max(n_grids, 1), dtype=np.bool_)

    depth = 0
    while True:
        n_nodes = node_ix.size
        cell = size / 2.0**depth
        half = cell / 2.0
        next_ix = np.empty(4 * n_nodes, dtype=np.int64)
        next_iy = np.empty(4 * n_nodes, dtype=np.int64)
        next_e_ptr = np.zeros(4 * n_nodes + 1, dtype=np.int64)
        next_g_ptr = np.zeros(4 * n_nodes + 1, dtype=np.int64)
        next_e = np.empty(max(16, e_list.size), dtype=np.int32)
        next_g = np.empty(max(16, g_list.size), dtype=np.int32)
        n_next = 0
        n_next_e = 0
        n_next_g = 0
        for k in range(n_nodes):
            x = x0 + node_ix[k] * cell
            y = y0 + node_iy[k] * cell
            smallest = np.inf
            for j in range(e_ptr[k], e_ptr[k + 1]):
                smallest = min(smallest, grid_scale[edge_grid[e_list[j]]])
            has_edges = e_ptr[k + 1] > e_ptr[k]
            if has_edges and cell * cells_per_grid_side > smallest and depth < max_depth:
                for q in range(4):
                    cx = x + half if q & 1 else x
                    cy = y + half if q & 2 else y
                    bx0 = cx - margin
                    by0 = cy - margin
                    bx1 = cx + half + margin
                    by1 = cy + half + margin
                    next_e = _room(next_e, n_next_e + e_ptr[k + 1] - e_ptr[k])
                    for j in range(e_ptr[k], e_ptr[k + 1]):
                        e = e_list[j]
                        if _edge_meets_box(
                            edge_xy[e, 0], edge_xy[e, 1], edge_xy[e, 2], edge_xy[e, 3],
                            bx0, by0, bx1, by1,
                        ):
                            next_e[n_next_e] = e
                            n_next_e += 1
                    next_g = _room(next_g, n_next_g + g_ptr[k + 1] - g_ptr[k])
                    for j in range(g_ptr[k], g_ptr[k + 1]):
                        g = g_list[j]
                        # Closed overlap: keeps every grid whose box may hold a descendant.
                        if (
                            grid_box[g, 0] <= cx + half
                            and grid_box[g, 2] >= cx
                            and grid_box[g, 1] <= cy + half
                            and grid_box[g, 3] >= cy
                        ):
                            next_g[n_next_g] = g
                            n_next_g += 1
                    next_ix[n_next] = 2 * node_ix[k] + (q & 1)
                    next_iy[n_next] = 2 * node_iy[k] + (q >> 1)
                    n_next += 1
                    next_e_ptr[n_next] = n_next_e
                    next_g_ptr[n_next] = n_next_g
                continue

            # A leaf: grids whose edges reach it, then grids holding it whole that cover it.
            n_local = 0
            for j in range(e_ptr[k], e_ptr[k + 1]):
                g = edge_grid[e_list[j]]
                if seen[g] != n_leaves:
                    seen[g] = n_leaves
                    local_grid[n_local] = g
                    local_always[n_local] = False
                    n_local += 1
            for j in range(g_ptr[k], g_ptr[k + 1]):
                g = g_list[j]
                if seen[g] == n_leaves:
                    continue
                if (
                    grid_box[g, 0] <= x
                    and x + cell <= grid_box[g, 2]
                    and grid_box[g, 1] <= y
                    and y + cell <= grid_box[g, 3]
                    and grid_covers(
                        g, x + cell / 2.0, y + cell / 2.0,
                        poly_ring, grid_f, grid_i, band_ptr, band_xy, scratch,
                    )
                ):
                    local_grid[n_local] = g
                    local_always[n_local] = True
                    n_local += 1
            # Lowest code first (insertion sort: lists are short).
            for a in range(1, n_local):
                g = local_grid[a]
                al = local_always[a]
                b = a - 1
                while b >= 0 and code_rank[local_grid[b]] > code_rank[g]:
                    local_grid[b + 1] = local_grid[b]
                    local_always[b + 1] = local_always[b]
                    b -= 1
                local_grid[b + 1] = g
                local_always[b + 1] = al
            # Behind a candidate that covers the whole cell, no later (higher-code) one can win.
            for a in range(n_local):
                if local_always[a]:
                    n_local = a + 1
                    break
            if n_local == 0:
                value = NO_GRID
            elif local_always[0]:
                value = local_grid[0]
            else:
                value = -(2 + n_lists)
                cand_grid = _room(cand_grid, n_cand + n_local)
                cand_always = _room(cand_always, n_cand + n_local)
                for a in range(n_local):
                    cand_grid[n_cand] = local_grid[a]
                    cand_always[n_cand] = local_always[a]
                    n_cand += 1
                n_lists += 1
                cand_ptr = _room(cand_ptr, n_lists + 1)
                cand_ptr[n_lists] = n_cand
            leaf_level = _room(leaf_level, n_leaves + 1)
            leaf_ix = _room(leaf_ix, n_leaves + 1)
            leaf_iy = _room(leaf_iy, n_leaves + 1)
            leaf_value = _room(leaf_value, n_leaves + 1)
            leaf_level[n_leaves] = depth
            leaf_ix[n_leaves] = node_ix[k]
            leaf_iy[n_leaves] = node_iy[k]
            leaf_value[n_leaves] = value
            n_leaves += 1

        if n_next == 0:
            break
        node_ix = next_ix[:n_next].copy()
        node_iy = next_iy[:n_next].copy()
        e_ptr = next_e_ptr[: n_next + 1].copy()
        g_ptr = next_g_ptr[: n_next + 1].copy()
        e_list = next_e[:n_next_e].copy()
        g_list = next_g[:n_next_g].copy()
        depth += 1

    return (
        leaf_level[:n_leaves].copy(),
        leaf_ix[:n_leaves].copy(),
        leaf_iy[:n_leaves].copy(),
        leaf_value[:n_leaves].copy(),
        cand_ptr[: n_lists + 1].copy(),
        cand_grid[:n_cand].copy(),
        cand_always[:n_cand].copy(),
        depth,
    )
