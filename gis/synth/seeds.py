"""Seed points of the small-grid Voronoi cells: dense in the valley band, sparse over the counties.

Seeds sit on jittered hexagonal lattices (more regular than uniform random points, so cells have
plausible shapes). A ring of medium-density rural seeds around the band keeps the band's edge cells
from stretching out towards the sparse rural seeds; a margin of "outside" seeds beyond the outline
and a far frame make every city cell bounded, and the city is exactly the cells of inside seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon

from gis.synth.geography import area_plane, outline_plane, urban_band_plane

URBAN_CELLS = 2945
RURAL_CELLS = 3823
JITTER = 0.33  # of the lattice spacing: keeps any two seeds at least 0.34 spacing apart
TRANSITION_SPACING = 2.5  # in urban spacings
TRANSITION_INNER, TRANSITION_OUTER = 0.6, 5.6  # distance band of the ring, in urban spacings
RURAL_CLEARANCE = 7.0  # in urban spacings: no sparse rural seed closer to the band than this


@dataclass(frozen=True)
class Seeds:
    """Plane coordinates of urban, rural and outside seeds."""

    urban: np.ndarray
    rural: np.ndarray
    outside: np.ndarray


def hex_lattice(bounds: tuple[float, float, float, float], spacing: float,
                rng: np.random.Generator) -> np.ndarray:
    """Jittered hexagonal lattice points covering bounds (plane coordinates)."""
    minx, miny, maxx, maxy = bounds
    row_step = spacing * np.sqrt(3.0) / 2.0
    ys = np.arange(miny, maxy + row_step, row_step)
    xs = np.arange(minx, maxx + spacing, spacing)
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + (np.arange(len(ys)) % 2)[:, None] * (spacing / 2.0)
    pts = np.column_stack([gx.ravel(), gy.ravel()])
    return pts + rng.uniform(-JITTER * spacing, JITTER * spacing, size=pts.shape)


def _keep_exactly(pts: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Drop randomly chosen points so that exactly count remain (order kept)."""
    keep = np.sort(rng.choice(len(pts), size=count, replace=False))
    return pts[keep]


def _urban_seeds(band: Polygon, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Exactly URBAN_CELLS seeds inside the band, and the lattice spacing used."""
    spacing = float(np.sqrt(2.0 * area_plane(band) / (np.sqrt(3.0) * URBAN_CELLS)))
    for _ in range(40):
        pts = hex_lattice(band.bounds, spacing, rng)
        pts = pts[shapely.contains_xy(band, pts[:, 0], pts[:, 1])]
        if URBAN_CELLS <= len(pts) <= URBAN_CELLS * 1.01:
            return _keep_exactly(pts, URBAN_CELLS, rng), spacing
        spacing *= float(np.sqrt(len(pts) / (URBAN_CELLS * 1.005)))
    raise RuntimeError("could not place the urban seeds")


def _transition_seeds(band: Polygon, outline: Polygon, spacing: float,
                      rng: np.random.Generator) -> np.ndarray:
    """Medium-density rural seeds in a ring around the band."""
    outer = TRANSITION_OUTER * spacing
    minx, miny, maxx, maxy = band.bounds
    bounds = (minx - outer, miny - outer, maxx + outer, maxy + outer)
    pts = hex_lattice(bounds, TRANSITION_SPACING * spacing, rng)
    dist = shapely.distance(band, shapely.points(pts))
    ring = (dist > TRANSITION_INNER * spacing) & (dist < outer)
    pts = pts[ring]
    return pts[shapely.contains_xy(outline, pts[:, 0], pts[:, 1])]


def _rural_and_outside_seeds(band: Polygon, outline: Polygon, transition: np.ndarray,
                             urban_spacing: float,
                             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exactly RURAL_CELLS rural seeds (transition ring included) and the outside seeds."""
    wanted = RURAL_CELLS - len(transition)
    spacing = float(np.sqrt(2.0 * area_plane(outline) / (np.sqrt(3.0) * RURAL_CELLS)))
    minx, miny, maxx, maxy = outline.bounds
    for _ in range(40):
        margin = 2.5 * spacing
        bounds = (minx - margin, miny - margin, maxx + margin, maxy + margin)
        pts = hex_lattice(bounds, spacing, rng)
        points = shapely.points(pts)
        inside = shapely.contains_xy(outline, pts[:, 0], pts[:, 1])
        far_from_band = shapely.distance(band, points) > RURAL_CLEARANCE * urban_spacing
        rural = pts[inside & far_from_band]
        if wanted <= len(rural) <= wanted * 1.01:
            near_outline = shapely.distance(outline, points) < margin
            outside = pts[~inside & near_outline]
            rural = _keep_exactly(rural, wanted, rng)
            return np.vstack([transition, rural]), np.vstack([outside, _frame(bounds)])
        spacing *= float(np.sqrt(len(rural) / (wanted * 1.005)))
    raise RuntimeError("could not place the rural seeds")


def _frame(bounds: tuple[float, float, float, float]) -> np.ndarray:
    """Sparse points on a rectangle well beyond the lattice, so no city cell is unbounded."""
    minx, miny, maxx, maxy = bounds
    pad = 0.5
    xs = np.linspace(minx - pad, maxx + pad, 13)
    ys = np.linspace(miny - pad, maxy + pad, 13)[1:-1]
    top = np.column_stack([xs, np.full_like(xs, maxy + pad)])
    bottom = np.column_stack([xs, np.full_like(xs, miny - pad)])
    left = np.column_stack([np.full_like(ys, minx - pad), ys])
    right = np.column_stack([np.full_like(ys, maxx + pad), ys])
    return np.vstack([top, bottom, left, right])


def sample_seeds(rng: np.random.Generator) -> Seeds:
    """All seeds of the synthetic city (plane coordinates)."""
    band, outline = urban_band_plane(), outline_plane()
    urban, spacing = _urban_seeds(band, rng)
    transition = _transition_seeds(band, outline, spacing, rng)
    rural, outside = _rural_and_outside_seeds(band, outline, transition, spacing, rng)
    return Seeds(urban=urban, rural=rural, outside=outside)
