"""Grid geometries flattened into plain arrays that the compiled point-in-polygon kernel reads.

Every ring keeps its coordinates exactly as given (no re-orientation, no snapping), because the
kernel must repeat PostGIS's arithmetic on the very same doubles PostGIS stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from gis.router import pip

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

# Edges per y-band of one grid: the kernel scans one band, like PostGIS's interval tree
# visits only the edges whose y-range holds the point.
EDGES_PER_BAND = 8


@dataclass(frozen=True)
class RingArrays:
    """All rings of all grids, flattened; row g of every per-grid array is grid g."""

    vxy: FloatArray  # (n_vertices, 2), every ring closed (last vertex == first)
    edge_ring: IntArray  # ring id of the edge starting at each vertex (-1: no edge starts there)
    ring_grid: IntArray  # grid row of each ring
    poly_ring: IntArray  # (n_polys, 2): ring id range, exterior ring first, then holes
    # (n_grids, 6): xmin, ymin, xmax, ymax (float32 box rounded outwards), band y0, bands/degree
    grid_f: FloatArray
    # (n_grids, 4): first polygon, polygon end, band count, first band's slot in band_ptr
    grid_i: IntArray
    band_ptr: IntArray  # CSR offsets into band_edge / band_xy
    band_edge: IntArray  # edge (start vertex) ids
    band_xy: FloatArray  # (n_entries, 5): x1, y1, x2, y2, ring id of each band entry
    max_rings: int  # most rings in one grid (scratch size for the kernel)
    n_vertices: int

    @property
    def n_grids(self) -> int:
        """Number of grids."""
        return int(self.grid_i.shape[0])

    def without_build_arrays(self) -> RingArrays:
        """A copy without the per-vertex arrays, which only the index build reads."""
        empty_f = np.zeros((0, 2), dtype=np.float64)
        empty_i = np.zeros(0, dtype=np.int64)
        return replace(self, vxy=empty_f, edge_ring=empty_i, band_edge=empty_i)

    @property
    def grid_box(self) -> FloatArray:
        """(n_grids, 4) float32-rounded boxes, as PostGIS keeps them."""
        return self.grid_f[:, :4]

    def kernel_args(self) -> tuple[IntArray, FloatArray, IntArray, IntArray, FloatArray]:
        """The arrays gis.router.pip.grid_covers reads, in its argument order."""
        return (self.poly_ring, self.grid_f, self.grid_i, self.band_ptr, self.band_xy)

    def nbytes(self) -> int:
        """Memory held by the arrays, in bytes."""
        return sum(
            int(getattr(self, name).nbytes)
            for name in self.__dataclass_fields__
            if isinstance(getattr(self, name), np.ndarray)
        )


def _float32_box_outwards(bounds: FloatArray) -> FloatArray:
    """PostGIS keeps a float32 bbox rounded outwards and short-circuits on it; so do we."""
    as32 = bounds.astype(np.float32)
    lo = as32[:, :2].copy()
    hi = as32[:, 2:].copy()
    too_high = lo.astype(np.float64) > bounds[:, :2]
    lo[too_high] = np.nextafter(lo[too_high], np.float32(-np.inf))
    too_low = hi.astype(np.float64) < bounds[:, 2:]
    hi[too_low] = np.nextafter(hi[too_low], np.float32(np.inf))
    return np.hstack([lo, hi]).astype(np.float64)


def _grid_array(geoms: Sequence[BaseGeometry]) -> npt.NDArray[np.object_]:
    """The geometries as a shapely array, refusing anything but (Multi)Polygons."""
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = list(geoms)
    types = shapely.get_type_id(arr)
    bad = np.flatnonzero((types != shapely.GeometryType.POLYGON)
                         & (types != shapely.GeometryType.MULTIPOLYGON))
    if bad.size:
        kind = getattr(arr[bad[0]], "geom_type", type(arr[bad[0]]).__name__)
        raise ValueError(f"grid geometry must be a Polygon or MultiPolygon, not {kind}")
    return arr


def _ranges(counts: IntArray) -> IntArray:
    """(n, 2) [first, end) ranges of consecutive runs with these lengths."""
    ends = np.cumsum(counts, dtype=np.int64)
    return np.column_stack([ends - counts, ends]).astype(np.int64).reshape(-1, 2)


def flatten_grids(geoms: Sequence[BaseGeometry]) -> RingArrays:
    """Flatten (Multi)Polygons into RingArrays, keeping every coordinate bit for bit."""
    arr = _grid_array(geoms)
    parts, part_grid = shapely.get_parts(arr, return_index=True)
    solid = ~shapely.is_empty(parts)  # PostGIS skips empty polygons
    parts, part_grid = parts[solid], part_grid[solid]
    # Exterior first, then the holes, as in the polygon.
    all_rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, coord_ring = shapely.get_coordinates(all_rings, return_index=True)
    ring_len = np.bincount(coord_ring, minlength=all_rings.size)
    ring_ok = ring_len >= 4  # an unclosed or collapsed ring: PostGIS skips it too
    xy = xy[ring_ok[coord_ring]]
    ring_part = ring_part[ring_ok]
    counts = ring_len[ring_ok]
    poly_ring_arr = _ranges(np.bincount(ring_part, minlength=parts.size))
    grid_poly_arr = _ranges(np.bincount(part_grid, minlength=len(geoms)))
    ring_grid_arr = part_grid[ring_part].astype(np.int64)
    ring_ids = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
    edge_ring = ring_ids.copy()
    edge_ring[np.cumsum(counts) - 1] = -1  # no edge starts at a ring's closing vertex
    vxy = np.ascontiguousarray(xy)
    vx = vxy[:, 0]
    vy = np.ascontiguousarray(vxy[:, 1])
    # Zero-length edges never decide anything in PostGIS (skipped); drop them from the bands.
    nxt = np.minimum(np.arange(len(xy)) + 1, max(len(xy) - 1, 0))
    usable = (edge_ring >= 0) & ~((vx == vx[nxt]) & (vy == vy[nxt]))

    bounds = shapely.bounds(arr).astype(np.float64).reshape(-1, 4)
    bounds = np.nan_to_num(bounds, nan=0.0)  # empty geometries: a degenerate box, never hit
    edge_ids = np.flatnonzero(usable)
    edge_grid = ring_grid_arr[edge_ring[edge_ids]]
    edge_count = np.bincount(edge_grid, minlength=len(geoms))
    band_count = np.maximum(1, edge_count // EDGES_PER_BAND).astype(np.int64)
    height = bounds[:, 3] - bounds[:, 1]
    band_scale = np.where(height > 0, band_count / np.where(height > 0, height, 1.0), 0.0)
    band_base = np.concatenate([[0], np.cumsum(band_count)[:-1]]).astype(np.int64)
    band_y0 = bounds[:, 1].copy()
    band_ptr, band_edge = pip.build_bands(
        vy,
        edge_ids,
        edge_grid,
        band_y0,
        band_scale,
        band_count,
        band_base,
        int(band_count.sum()),
    )
    rings_per_grid = ring_grid_arr.size and np.bincount(ring_grid_arr, minlength=len(geoms))
    grid_f = np.hstack([_float32_box_outwards(bounds), band_y0[:, None], band_scale[:, None]])
    grid_i = np.hstack([grid_poly_arr, band_count[:, None], band_base[:, None]])
    return RingArrays(
        vxy=vxy,
        edge_ring=edge_ring,
        ring_grid=ring_grid_arr,
        poly_ring=poly_ring_arr,
        grid_f=np.ascontiguousarray(grid_f),
        grid_i=np.ascontiguousarray(grid_i.astype(np.int64)),
        band_ptr=band_ptr,
        band_edge=band_edge,
        band_xy=pip.pack_band_edges(vxy, edge_ring, band_edge),
        max_rings=int(np.max(rings_per_grid)) if ring_grid_arr.size else 1,
        n_vertices=int(vxy.shape[0]),
    )
