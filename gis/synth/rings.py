"""Polygons from the planar graph: cells, and unions of cells traced along their outer edges.

A parent's boundary is made of the edges whose two sides carry different labels, so its
coordinates are exactly its children's. Rings are traced keeping the region on the left; where
several boundary edges leave one vertex (regions touching at a point), the walk takes the first
edge clockwise from the one it came in by, which splits the boundary into simple rings.
Shells come out counter-clockwise and holes clockwise, as RFC 7946 asks.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import shapely
from shapely.geometry import Polygon

from gis.synth.edges import Polylines
from gis.synth.geography import UNITS_PER_DEGREE
from gis.synth.partition import OUTSIDE, Partition

PolygonRings = tuple[np.ndarray, list[np.ndarray]]  # closed shell, closed holes (int units)


def _half_edge(lines: Polylines, edge_of: dict[tuple[int, int], int], a: int, b: int) -> np.ndarray:
    """Coordinates of the edge walked from vertex a to vertex b."""
    if a < b:
        return lines.line(edge_of[(a, b)])
    return lines.line(edge_of[(b, a)])[::-1]


def cell_shell(partition: Partition, lines: Polylines, edge_of: dict[tuple[int, int], int],
               cell: int) -> np.ndarray:
    """The closed counter-clockwise ring of one cell (int units)."""
    ring = partition.rings[cell].tolist()
    parts = [_half_edge(lines, edge_of, a, b)[:-1] for a, b in zip(ring, ring[1:] + ring[:1],
                                                                  strict=True)]
    parts.append(parts[0][:1])
    return np.vstack(parts)


def signed_area_units(ring: np.ndarray) -> float:
    """Twice the signed area of a closed ring (positive when counter-clockwise)."""
    rel = (ring - ring[0]).astype(np.float64)
    return float(np.sum(rel[:-1, 0] * rel[1:, 1] - rel[1:, 0] * rel[:-1, 1]))


def _pseudo_angle(dx: float, dy: float) -> float:
    """A number in [0, 4) that grows with the direction's counter-clockwise angle."""
    p = dy / (abs(dx) + abs(dy))
    if dx < 0:
        return 2.0 - p
    if dy < 0:
        return 4.0 + p
    return p


def _trace(halves: list[tuple[int, int, np.ndarray]]) -> list[np.ndarray]:
    """Closed rings from directed boundary edges that keep the region on their left."""
    leaving: dict[int, list[int]] = defaultdict(list)
    for h, (a, _, _) in enumerate(halves):
        leaving[a].append(h)
    used = [False] * len(halves)
    rings = []
    for start in range(len(halves)):
        if used[start]:
            continue
        parts, h = [], start
        while True:
            used[h] = True
            a, b, coords = halves[h]
            parts.append(coords[:-1])
            options = leaving[b]
            if len(options) == 1:
                h = options[0]
            else:
                back = coords[-2] - coords[-1]
                ref = _pseudo_angle(float(back[0]), float(back[1]))

                def clockwise_turn(o: int, ref: float = ref) -> float:
                    d = halves[o][2][1] - halves[o][2][0]
                    turn = (ref - _pseudo_angle(float(d[0]), float(d[1]))) % 4.0
                    return turn if turn > 0 else 4.0

                h = min(options, key=clockwise_turn)
            if h == start:
                break
            if used[h]:
                raise RuntimeError("boundary walk re-entered a used edge")
        parts.append(parts[0][:1])
        rings.append(np.vstack(parts))
    return rings


def _assemble(rings: list[np.ndarray]) -> list[PolygonRings]:
    """Group traced rings into polygons: each hole goes to the shell that contains it."""
    shells = [r for r in rings if signed_area_units(r) > 0]
    holes = [r for r in rings if signed_area_units(r) < 0]
    shells.sort(key=lambda r: (int(r[:, 0].min()), int(r[:, 1].min())))
    if len(shells) == 1:
        return [(shells[0], holes)]
    shapes = [Polygon(s.astype(np.float64)) for s in shells]
    grouped: list[list[np.ndarray]] = [[] for _ in shells]
    for hole in holes:
        x, y = hole[0].astype(np.float64)
        inside = [i for i, s in enumerate(shapes) if shapely.contains_xy(s, x, y)]
        if len(inside) != 1:
            # A hole ring's first vertex may touch its shell; fall back to an inner point.
            probe = Polygon(hole[::-1].astype(np.float64)).representative_point()
            inside = [i for i, s in enumerate(shapes) if s.contains(probe)]
        grouped[min(inside, key=lambda i: shapes[i].area)].append(hole)
    return list(zip(shells, grouped, strict=True))


def region_polygons(partition: Partition, lines: Polylines, edge_of: dict[tuple[int, int], int],
                    labels: np.ndarray, n_labels: int) -> list[list[PolygonRings]]:
    """Polygons of each label's union of cells, traced along the graph (label -1 = none)."""
    halves: list[list[tuple[int, int, np.ndarray]]] = [[] for _ in range(n_labels)]
    for cell in range(partition.n_cells):
        label = int(labels[cell])
        if label < 0:
            continue
        ring = partition.rings[cell].tolist()
        for a, b, n in zip(ring, ring[1:] + ring[:1], partition.neighbours[cell].tolist(),
                           strict=True):
            if n == OUTSIDE or labels[n] != label:
                halves[label].append((a, b, _half_edge(lines, edge_of, a, b)))
    return [_assemble(_trace(h)) for h in halves]


def to_shapely(polygons: list[PolygonRings]) -> shapely.MultiPolygon:
    """A shapely MultiPolygon (degrees) of a list of polygons' rings."""
    scale = 1.0 / UNITS_PER_DEGREE
    return shapely.MultiPolygon([
        Polygon(shell.astype(np.float64) * scale, [h.astype(np.float64) * scale for h in holes])
        for shell, holes in polygons
    ])
