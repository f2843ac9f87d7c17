"""The Voronoi planar graph of the city's cells, on integer coordinates (units of 2**-24 degree).

The Voronoi diagram is derived from shapely's Delaunay triangulation by hand (one circumcentre
per triangle, snapped once), so a vertex shared by three cells is one vertex with one set of
coordinates, never three nearly equal ones; every cell is a cycle of vertex ids and every edge is
shared by exactly the two cells on its sides (or one cell and the outside, -1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis.synth.geography import LON_SCALE, UNITS_PER_DEGREE
from gis.synth.seeds import Seeds

OUTSIDE = -1


@dataclass
class Partition:
    """Planar graph of the city cells: urban cells first, then rural ones."""

    vertices: np.ndarray  # (V, 2) int64, units of 2**-24 degree
    rings: list[np.ndarray]  # per cell: vertex ids, counter-clockwise, not closed
    neighbours: list[np.ndarray]  # per cell: the cell across ring edge i -> i+1, or OUTSIDE
    seeds_plane: np.ndarray  # (C, 2) plane coordinates of the cell seeds
    n_urban: int

    @property
    def n_cells(self) -> int:
        """Number of city cells."""
        return len(self.rings)

    def edge_keys(self) -> list[tuple[int, int]]:
        """Every undirected edge of the city cells once, as (low vertex id, high vertex id)."""
        keys: set[tuple[int, int]] = set()
        for ring in self.rings:
            nxt = np.roll(ring, -1)
            for a, b in zip(ring.tolist(), nxt.tolist(), strict=True):
                keys.add((a, b) if a < b else (b, a))
        return sorted(keys)

    def adjacency(self) -> list[list[int]]:
        """For each cell, the cells sharing an edge with it (sorted, no OUTSIDE)."""
        return [sorted({int(n) for n in nbrs if n != OUTSIDE}) for nbrs in self.neighbours]


def _triangles(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles as counter-clockwise index triples into points."""
    tris = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(points)))
    corners = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3]
    index = {xy: i for i, xy in enumerate(map(tuple, points.tolist()))}
    idx = np.array([[index[tuple(c)] for c in tri] for tri in corners.tolist()], dtype=np.int64)
    a, b, c = (points[idx[:, k]] for k in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    clockwise = cross < 0
    idx[clockwise, 1], idx[clockwise, 2] = idx[clockwise, 2], idx[clockwise, 1].copy()
    return idx


def _circumcentres_units(points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """Circumcentre of each triangle, in integer units of 2**-24 degree."""
    a = points[tris[:, 0]]
    b = points[tris[:, 1]] - a
    c = points[tris[:, 2]] - a
    d = 2.0 * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0])
    bb = (b * b).sum(axis=1)
    cc = (c * c).sum(axis=1)
    ux = (c[:, 1] * bb - b[:, 1] * cc) / d
    uy = (b[:, 0] * cc - c[:, 0] * bb) / d
    lon = (a[:, 0] + ux) / LON_SCALE
    lat = a[:, 1] + uy
    return np.rint(np.column_stack([lon, lat]) * UNITS_PER_DEGREE).astype(np.int64)


def build_partition(seeds: Seeds) -> Partition:
    """Voronoi cells of the city seeds as a planar graph on snapped vertices."""
    points = np.vstack([seeds.urban, seeds.rural, seeds.outside])
    n_city = len(seeds.urban) + len(seeds.rural)
    tris = _triangles(points)
    centres = _circumcentres_units(points, tris)
    vertices, vertex_of_tri = np.unique(centres, axis=0, return_inverse=True)
    vertex_of_tri = vertex_of_tri.ravel()

    # Fan around each city seed: the triangle where the seed's corner runs from b to c is
    # followed, counter-clockwise, by the triangle where it runs from c onwards.
    fan: dict[tuple[int, int], tuple[int, int]] = {}
    first: dict[int, int] = {}
    for t, (p, q, r) in enumerate(tris.tolist()):
        for corner, frm, to in ((p, q, r), (q, r, p), (r, p, q)):
            if corner < n_city:
                fan[(corner, frm)] = (to, t)
                first.setdefault(corner, frm)

    rings: list[np.ndarray] = []
    neighbours: list[np.ndarray] = []
    for cell in range(n_city):
        start = frm = first[cell]
        ids: list[int] = []
        across: list[int] = []
        while True:
            to, t = fan[(cell, frm)]
            ids.append(int(vertex_of_tri[t]))
            across.append(to if to < n_city else OUTSIDE)
            frm = to
            if frm == start:
                break
        ring, nbrs = _drop_collapsed_edges(ids, across)
        rings.append(np.array(ring, dtype=np.int64))
        neighbours.append(np.array(nbrs, dtype=np.int64))
    partition = Partition(vertices=vertices, rings=rings, neighbours=neighbours,
                          seeds_plane=points[:n_city], n_urban=len(seeds.urban))
    _check_twins(partition)
    return partition


def _drop_collapsed_edges(ids: list[int], across: list[int]) -> tuple[list[int], list[int]]:
    """Remove edges whose two ends snapped onto one vertex (cells meeting only at a point)."""
    ring, nbrs = list(ids), list(across)
    changed = True
    while changed and len(ring) > 3:
        changed = False
        for i in range(len(ring)):
            if ring[i] == ring[(i + 1) % len(ring)]:
                del ring[i]
                del nbrs[i]
                changed = True
                break
    if len(ring) < 3:
        raise RuntimeError("a Voronoi cell collapsed when snapped")
    return ring, nbrs


def _check_twins(partition: Partition) -> None:
    """Every inner edge is walked once each way, by the two cells on its sides."""
    owner: dict[tuple[int, int], tuple[int, int]] = {}
    for cell, (ring, nbrs) in enumerate(zip(partition.rings, partition.neighbours, strict=True)):
        nxt = np.roll(ring, -1)
        for a, b, n in zip(ring.tolist(), nxt.tolist(), nbrs.tolist(), strict=True):
            if (a, b) in owner:
                raise RuntimeError("a directed edge belongs to two cells")
            owner[(a, b)] = (cell, n)
    for (a, b), (cell, n) in owner.items():
        if n == OUTSIDE:
            if (b, a) in owner:
                raise RuntimeError("an outer edge is shared")
        elif owner.get((b, a)) != (n, cell):
            raise RuntimeError("an inner edge is not shared by its two cells")
