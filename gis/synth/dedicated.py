"""Dedicated grids (专属网格): small carve-outs of urban cells for offices, markets and campuses.

Each is a jittered, rotated rectangle of 8-20 vertices around the centre of its host cell's
largest inscribed circle, sized from that circle, so it lies strictly inside the host; the host
keeps it as a hole whose ring has the same coordinates, walked the other way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

from gis.synth.geography import LON_SCALE, UNITS_PER_DEGREE

DEDICATED_CELLS = 739


@dataclass(frozen=True)
class Carve:
    """One dedicated grid: its host cell and its closed counter-clockwise ring (int units)."""

    host: int
    ring: np.ndarray


def _rectangle(centre: np.ndarray, half_long: float, half_short: float, rng: np.random.Generator,
               ) -> np.ndarray:
    """A jittered rotated rectangle of 8-20 vertices, counter-clockwise, closed (plane)."""
    direction = rng.standard_normal(2)
    along = direction / np.sqrt(direction @ direction)
    across = np.array([-along[1], along[0]])
    corners = [(1, -1), (1, 1), (-1, 1), (-1, -1)]  # counter-clockwise in (along, across)
    extra = rng.multinomial(int(rng.integers(4, 17)), [0.25] * 4)
    pts = []
    for side, (c0, c1) in enumerate(zip(corners, corners[1:] + corners[:1], strict=True)):
        p0 = np.array(c0, dtype=np.float64)
        p1 = np.array(c1, dtype=np.float64)
        pts.append(p0)
        for k in range(int(extra[side])):
            t = (k + 1 + rng.uniform(-0.3, 0.3)) / (extra[side] + 1)
            nudge = rng.uniform(-0.03, 0.03) * np.array([-(p1 - p0)[1], (p1 - p0)[0]]) / 2.0
            pts.append(p0 + t * (p1 - p0) + nudge)
    local = np.array(pts)
    plane = (centre + local[:, :1] * half_long * along + local[:, 1:] * half_short * across)
    return np.vstack([plane, plane[:1]])


def carve_dedicated(shells: list[np.ndarray], n_urban: int,
                    rng: np.random.Generator) -> list[Carve]:
    """DEDICATED_CELLS carve-outs in distinct urban cells, sorted by host cell."""
    hosts = np.sort(rng.choice(n_urban, size=DEDICATED_CELLS, replace=False))
    carves = []
    for host in hosts.tolist():
        shell = Polygon(shells[host].astype(np.float64) / UNITS_PER_DEGREE)
        radius = shapely.maximum_inscribed_circle(shell, tolerance=2e-5)
        centre_deg = shapely.get_coordinates(radius)[0]
        # Degrees of longitude are the shorter ones, so this clearance is a safe plane distance.
        clearance = float(shapely.length(radius)) * LON_SCALE
        centre = np.array([centre_deg[0] * LON_SCALE, centre_deg[1]])
        half_long = clearance * rng.uniform(0.35, 0.55)
        half_short = half_long * rng.uniform(0.45, 0.9)
        for _ in range(8):
            plane = _rectangle(centre, half_long, half_short, rng)
            lonlat = plane.copy()
            lonlat[:, 0] /= LON_SCALE
            ring = np.rint(lonlat * UNITS_PER_DEGREE).astype(np.int64)
            keep = np.ones(len(ring), dtype=bool)
            keep[1:] = np.any(ring[1:] != ring[:-1], axis=1)
            ring = ring[keep]
            carve = Polygon(ring.astype(np.float64) / UNITS_PER_DEGREE)
            if carve.is_valid and shapely.contains_properly(shell, carve):
                carves.append(Carve(host=host, ring=ring))
                break
            half_long, half_short = half_long * 0.7, half_short * 0.7
        else:
            raise RuntimeError("could not fit a dedicated grid in its host")
    return carves
