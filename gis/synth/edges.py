"""Realistic boundaries: each graph edge becomes one wiggly polyline shared by both its cells.

The wiggle is a perpendicular offset made of a few random knots (linearly interpolated) plus a
small per-point jitter, tapered to zero at both ends, with an amplitude that is a small fraction
of the edge's length; longer edges get more points. Only arithmetic is used (no platform
transcendental functions), so the bytes are the same on every machine. Edges whose polylines
cross any other edge are re-drawn with half the amplitude, and at last straight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from gis.synth.geography import LON_SCALE, METRES_PER_DEGREE, UNITS_PER_DEGREE

AMPLITUDE = 0.07  # of the edge length
POINTS_PER_METRE_POWER = 0.4  # inner points ~ length_m ** 0.4
MIN_STEP_M = 3.0
MAX_ROUNDS = 6


@dataclass
class Polylines:
    """One polyline per edge, from the low vertex id to the high one, as a CSR int64 array."""

    keys: list[tuple[int, int]]
    coords: np.ndarray  # (P, 2) int64 units
    starts: np.ndarray  # (E + 1,) offsets into coords

    def line(self, edge: int) -> np.ndarray:
        """The polyline of one edge (units)."""
        return self.coords[self.starts[edge]:self.starts[edge + 1]]


@dataclass
class _Wiggle:
    """The random shape of every edge, before scaling by amplitude."""

    edge_of_point: np.ndarray
    t: np.ndarray
    offset: np.ndarray


def _shapes(lengths_m: np.ndarray, rng: np.random.Generator) -> _Wiggle:
    """Random parameters and unit offsets of the inner points of every edge."""
    n_inner = np.minimum(np.rint(lengths_m ** POINTS_PER_METRE_POWER), lengths_m / MIN_STEP_M)
    n_inner = np.maximum(n_inner, 0).astype(np.int64)
    edge_of_point = np.repeat(np.arange(len(lengths_m)), n_inner)
    first = np.concatenate([[0], np.cumsum(n_inner)[:-1]])
    rank = np.arange(len(edge_of_point)) - first[edge_of_point]
    slots = (n_inner + 1)[edge_of_point]
    t = (rank + 1 + rng.uniform(-0.3, 0.3, size=len(rank))) / slots

    knots = 2 + n_inner // 6  # knots at both ends and between, per edge
    knot_first = np.concatenate([[0], np.cumsum(knots)[:-1]])
    knot_values = np.clip(rng.standard_normal(int(knots.sum())), -2.0, 2.0)
    pos = t * (knots[edge_of_point] - 1)
    left = np.minimum(np.floor(pos).astype(np.int64), knots[edge_of_point] - 2)
    frac = pos - left
    base = knot_first[edge_of_point] + left
    smooth = knot_values[base] * (1.0 - frac) + knot_values[base + 1] * frac
    jitter = rng.uniform(-0.25, 0.25, size=len(t))
    taper = 4.0 * t * (1.0 - t)
    return _Wiggle(edge_of_point=edge_of_point, t=t, offset=taper * (smooth + jitter))


def _polylines(keys: list[tuple[int, int]], vertices: np.ndarray, wiggle: _Wiggle,
               scale: np.ndarray) -> Polylines:
    """Edge polylines for the given per-edge amplitude scale (0 = straight)."""
    ends = np.array(keys, dtype=np.int64)
    u = vertices[ends[:, 0]].astype(np.float64) / UNITS_PER_DEGREE
    v = vertices[ends[:, 1]].astype(np.float64) / UNITS_PER_DEGREE
    u[:, 0] *= LON_SCALE
    v[:, 0] *= LON_SCALE
    along = v - u
    normal = np.column_stack([-along[:, 1], along[:, 0]])  # length = edge length
    e = wiggle.edge_of_point
    amp = (AMPLITUDE * scale)[e] * wiggle.offset
    inner = u[e] + wiggle.t[:, None] * along[e] + amp[:, None] * normal[e]
    inner[:, 0] /= LON_SCALE
    inner_units = np.rint(inner * UNITS_PER_DEGREE).astype(np.int64)

    # Lay out [start vertex, inner points..., end vertex] per edge, then drop points that
    # snapped onto their predecessor (the end vertex's coordinates stay last either way).
    counts = np.bincount(e, minlength=len(keys)) + 2
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    coords = np.empty((int(counts.sum()), 2), dtype=np.int64)
    coords[first] = vertices[ends[:, 0]]
    coords[first + counts - 1] = vertices[ends[:, 1]]
    inner_slot = np.ones(len(coords), dtype=bool)
    inner_slot[first] = False
    inner_slot[first + counts - 1] = False
    coords[inner_slot] = inner_units
    keep = np.ones(len(coords), dtype=bool)
    keep[1:] = np.any(coords[1:] != coords[:-1], axis=1)
    keep[first] = True
    edge_of_slot = np.repeat(np.arange(len(keys)), counts)
    kept = np.bincount(edge_of_slot[keep], minlength=len(keys))
    return Polylines(keys=keys, coords=coords[keep],
                     starts=np.concatenate([[0], np.cumsum(kept)]))


def _crossing_edges(lines: Polylines, candidates: np.ndarray | None) -> np.ndarray:
    """Edges whose polyline meets another edge anywhere but at a shared end vertex."""
    n = len(lines.keys)
    index = np.repeat(np.arange(n), np.diff(lines.starts))
    geoms = np.asarray(shapely.linestrings(lines.coords.astype(np.float64) / UNITS_PER_DEGREE,
                                           indices=index), dtype=object)
    tree = shapely.STRtree(geoms)
    query = np.arange(n) if candidates is None else candidates
    pairs = tree.query(geoms[query], predicate="intersects")
    i, j = query[pairs[0]], pairs[1]
    distinct = i != j
    i, j = i[distinct], j[distinct]
    ends = np.array(lines.keys, dtype=np.int64)
    shares = ((ends[i, 0] == ends[j, 0]) | (ends[i, 0] == ends[j, 1])
              | (ends[i, 1] == ends[j, 0]) | (ends[i, 1] == ends[j, 1]))
    bad = set(i[~shares].tolist()) | set(j[~shares].tolist())
    # Edges sharing an end vertex must meet only there: their interiors stay apart ("touches").
    # (An end vertex lying on another edge's interior also makes that vertex's other edges
    # cross it, which the test above catches.)
    si, sj = i[shares], j[shares]
    both_ends = (((ends[si, 0] == ends[sj, 0]) | (ends[si, 0] == ends[sj, 1]))
                 & ((ends[si, 1] == ends[sj, 0]) | (ends[si, 1] == ends[sj, 1])))
    ok = shapely.touches(geoms[si], geoms[sj]) & ~both_ends
    bad |= set(si[~ok].tolist()) | set(sj[~ok].tolist())
    return np.array(sorted(bad), dtype=np.int64)


def wiggle_edges(keys: list[tuple[int, int]], vertices: np.ndarray,
                 rng: np.random.Generator) -> Polylines:
    """Wiggly polylines for all edges, no two meeting except at a shared end vertex."""
    ends = np.array(keys, dtype=np.int64)
    delta = (vertices[ends[:, 1]] - vertices[ends[:, 0]]).astype(np.float64) / UNITS_PER_DEGREE
    delta[:, 0] *= LON_SCALE
    lengths_m = np.hypot(delta[:, 0], delta[:, 1]) * METRES_PER_DEGREE
    wiggle = _shapes(lengths_m, rng)
    scale = np.ones(len(keys))
    lines = _polylines(keys, vertices, wiggle, scale)
    candidates: np.ndarray | None = None
    for _ in range(MAX_ROUNDS):
        bad = _crossing_edges(lines, candidates)
        if len(bad) == 0:
            return lines
        scale[bad] = np.where(scale[bad] > 0.2, scale[bad] * 0.5, 0.0)
        lines = _polylines(keys, vertices, wiggle, scale)
        candidates = bad
    raise RuntimeError("edge polylines still cross after straightening")


def straighten(lines: Polylines, vertices: np.ndarray, edges: np.ndarray) -> Polylines:
    """The same polylines with the given edges made straight (a last resort for a bad cell)."""
    coords = [lines.line(i) for i in range(len(lines.keys))]
    for edge in edges.tolist():
        a, b = lines.keys[edge]
        coords[edge] = np.vstack([vertices[a:a + 1], vertices[b:b + 1]])
    starts = np.concatenate([[0], np.cumsum([len(c) for c in coords])])
    return Polylines(keys=lines.keys, coords=np.vstack(coords), starts=starts)
