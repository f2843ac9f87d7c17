"""Probe points with their expected owners, for checking the router against PostGIS.

Owner rule: a point covered by several small grids (on a shared edge or vertex, or on a
dedicated grid's ring) belongs to the covering small grid with the lowest code. Edge probes are
exact midpoints of shared segments (on the 2**-24 degree lattice a midpoint is exactly on its
segment); vertex probes are vertices shared by three or more grids. Outside probes carry the
nearest small grid and the distance to it in metres, measured in UTM zone 48N (EPSG:32648).
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Transformer

from gis.synth.catalogue import Grid
from gis.synth.dedicated import Carve
from gis.synth.edges import Polylines
from gis.synth.geography import UNITS_PER_DEGREE
from gis.synth.partition import OUTSIDE, Partition
from gis.synth.sampling import points_inside, points_outside

COUNTS = {"interior": 1200, "dedicated": 300, "hole_ring": 300, "edge": 800, "vertex": 400,
          "outside": 200}
METRIC_CRS = "EPSG:32648"
COLUMNS = ("probe_id", "kind", "lon", "lat", "expected_code", "covering_codes", "nearest_code",
           "nearest_m")


def _edge_midpoints(partition: Partition, lines: Polylines, edge_of: dict[tuple[int, int], int],
                    rng: np.random.Generator) -> np.ndarray:
    """Exact midpoints of random segments of edges shared by two cells (degrees)."""
    inner = sorted({edge_of[(min(a, b), max(a, b))]
                    for ring, nbrs in zip(partition.rings, partition.neighbours, strict=True)
                    for a, b, n in zip(ring.tolist(), np.roll(ring, -1).tolist(), nbrs.tolist(),
                                       strict=True) if n != OUTSIDE})
    chosen = rng.choice(inner, size=COUNTS["edge"], replace=False)
    out = []
    for edge in chosen.tolist():
        line = lines.line(edge)
        k = int(rng.integers(len(line) - 1))
        out.append((line[k] + line[k + 1]).astype(np.float64) / (2 * UNITS_PER_DEGREE))
    return np.array(out)


def _shared_vertices(partition: Partition, rng: np.random.Generator) -> np.ndarray:
    """Graph vertices where three or more cells meet (degrees)."""
    cells_at = np.zeros(len(partition.vertices), dtype=np.int64)
    for ring in partition.rings:
        cells_at[ring] += 1
    candidates = np.flatnonzero(cells_at >= 3)
    chosen = np.sort(rng.choice(candidates, size=COUNTS["vertex"], replace=False))
    return partition.vertices[chosen].astype(np.float64) / UNITS_PER_DEGREE


def _ring_points(carves: list[Carve], rng: np.random.Generator) -> np.ndarray:
    """Vertices and exact segment midpoints of dedicated grids' rings (degrees)."""
    chosen = rng.choice(len(carves), size=COUNTS["hole_ring"], replace=False)
    out = []
    for c in chosen.tolist():
        ring = carves[c].ring
        k = int(rng.integers(len(ring) - 1))
        if rng.random() < 0.5:
            out.append(ring[k].astype(np.float64) / UNITS_PER_DEGREE)
        else:
            out.append((ring[k] + ring[k + 1]).astype(np.float64) / (2 * UNITS_PER_DEGREE))
    return np.array(out)


def _nearest_metres(geoms: np.ndarray, tree: shapely.STRtree, pts: np.ndarray,
                    codes: list[str]) -> list[tuple[str, float]]:
    """Nearest grid (lowest code on ties) and distance in metres in the metric CRS."""
    transformer = Transformer.from_crs("EPSG:4326", METRIC_CRS, always_xy=True)

    def to_metres(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    points = np.asarray(shapely.points(pts), dtype=object)
    _, deg = tree.query_nearest(points, return_distance=True, all_matches=False)
    out = []
    for point, d in zip(points, deg.tolist(), strict=True):
        # Degree distance understates metres by up to cos(latitude); widen the search to match.
        near = tree.query(point, predicate="dwithin", distance=d * 1.4 + 1e-9)
        local = shapely.transform(np.append(geoms[near], point), to_metres)
        metres = shapely.distance(local[:-1], local[-1])
        best = min(range(len(near)), key=lambda i: (round(float(metres[i]), 1), codes[near[i]]))
        out.append((codes[near[best]], round(float(metres[best]), 1)))
    return out


def make_probes(smalls: list[Grid], partition: Partition, lines: Polylines,
                edge_of: dict[tuple[int, int], int], carves: list[Carve],
                rng: np.random.Generator) -> list[dict[str, str]]:
    """Probe rows with expected owners, in probe_id order."""
    geoms = np.array([g.geometry for g in smalls], dtype=object)
    codes = [g.code for g in smalls]
    dedicated = np.array([i for i, g in enumerate(smalls) if g.kind == "dedicated"])
    tree = shapely.STRtree(geoms)
    interior = points_inside(geoms, np.sort(rng.choice(len(smalls), COUNTS["interior"],
                                                       replace=False)), rng)
    inside_dedicated = points_inside(
        geoms, np.sort(rng.choice(dedicated, COUNTS["dedicated"], replace=False)), rng)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    outside = points_outside(tree, COUNTS["outside"],
                             (minx - 0.1, miny - 0.1, maxx + 0.1, maxy + 0.1), 0.1, rng)
    groups = {
        "interior": interior, "dedicated": inside_dedicated,
        "hole_ring": _ring_points(carves, rng),
        "edge": _edge_midpoints(partition, lines, edge_of, rng),
        "vertex": _shared_vertices(partition, rng), "outside": outside,
    }
    rows: list[dict[str, str]] = []
    for kind, pts in groups.items():
        pairs = tree.query(shapely.points(pts), predicate="covered_by")
        covering: list[list[str]] = [[] for _ in range(len(pts))]
        for p, g in zip(pairs[0].tolist(), pairs[1].tolist(), strict=True):
            covering[p].append(codes[g])
        _check_cover(kind, covering)
        nearest = _nearest_metres(geoms, tree, pts, codes) if kind == "outside" else None
        for k, (x, y) in enumerate(pts.tolist()):
            cover = sorted(covering[k])
            code, metres = nearest[k] if nearest is not None else (cover[0], 0.0)
            rows.append({
                "probe_id": f"P{len(rows) + 1:05d}", "kind": kind, "lon": repr(x),
                "lat": repr(y), "expected_code": cover[0] if cover else "",
                "covering_codes": ";".join(cover), "nearest_code": code,
                "nearest_m": f"{metres:.1f}",
            })
    return rows


def _check_cover(kind: str, covering: list[list[str]]) -> None:
    """Each kind of probe is covered by the number of grids its construction promises."""
    wanted = {"interior": (1, 1), "dedicated": (1, 1), "hole_ring": (2, 2), "edge": (2, 2),
              "vertex": (3, 99), "outside": (0, 0)}[kind]
    for cover in covering:
        if not wanted[0] <= len(cover) <= wanted[1]:
            raise RuntimeError(f"a {kind} probe is covered by {len(cover)} grids")
