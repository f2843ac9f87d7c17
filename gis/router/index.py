"""GridIndex: in-process point -> small grid lookups that agree exactly with PostGIS ST_Covers.

Owner rule (the same everywhere): a point is owned by the grids whose geometry COVERS it
(PostGIS ST_Covers: a point on an edge or a vertex counts); when several cover it (a shared
edge or vertex), the one with the lowest code wins. Codes compare as text (plain code-point
order), which for the equal-length digit codes of the grid standard is numeric order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from gis.router import distance, locate
from gis.router.cells import CellTable, build_cell_table
from gis.router.rings import RingArrays, flatten_grids

IntArray = npt.NDArray[np.int64]


class GridIndex:
    """Exact, fast point -> grid index over one version of the small grids."""

    def __init__(
        self,
        codes: list[str],
        geoms: list[BaseGeometry],
        version: int,
        rings: RingArrays,
        cells: CellTable,
    ) -> None:
        self.codes = codes
        self.geoms = geoms
        self.version = version
        self._rings = rings
        self._cells = cells
        self._nearest = distance.NearestGrid(geoms)

    @classmethod
    def build(cls, codes: Sequence[str], geoms: Sequence[BaseGeometry], version: int) -> GridIndex:
        """Index these grids (EPSG:4326 (Multi)Polygons, row i has code codes[i])."""
        codes = [str(c) for c in codes]
        geoms = list(geoms)
        if len(codes) != len(geoms):
            raise ValueError(f"{len(codes)} codes but {len(geoms)} geometries")
        if len(set(codes)) != len(codes):
            raise ValueError("grid codes must be unique")
        rank = np.empty(len(codes), dtype=np.int64)
        rank[np.argsort(np.array(codes, dtype=object), kind="stable")] = np.arange(len(codes))
        rings = flatten_grids(geoms)
        cells = build_cell_table(rings, rank)
        # Lookups read the packed band copies only; the vertex arrays served the build.
        return cls(codes, geoms, version, rings.without_build_arrays(), cells)

    @classmethod
    def build_from_wkb(cls, codes: Sequence[str], wkbs: Sequence[bytes], version: int) -> GridIndex:
        """Index grids given as WKB (what ST_AsBinary returns: the stored doubles, unchanged)."""
        return cls.build(codes, list(shapely.from_wkb(np.asarray(wkbs, dtype=object))), version)

    # ------------------------------------------------------------------ lookups

    def _ring_args(self) -> tuple[Any, ...]:
        return self._rings.kernel_args()

    def locate(self, lon: npt.ArrayLike, lat: npt.ArrayLike) -> IntArray:
        """Owner row (index into codes) per WGS84 point; -1 where no grid covers the point."""
        x = np.ascontiguousarray(lon, dtype=np.float64).ravel()
        y = np.ascontiguousarray(lat, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise ValueError("lon and lat must have the same length")
        c = self._cells
        return locate.locate_points(  # type: ignore[call-arg]
            x,
            y,
            c.x0,
            c.y0,
            c.size,
            c.n_grids,
            c.top,
            c.block_ptr,
            c.block_depth,
            c.sub,
            c.cand_ptr,
            c.cand_grid,
            c.cand_always,
            *self._ring_args(),
            self._rings.max_rings,
        )

    def locate_one(self, lon: float, lat: float) -> int:
        """Owner row of one point, or -1."""
        return int(self.locate(np.array([lon]), np.array([lat]))[0])

    def covering(self, lon: float, lat: float) -> list[int]:
        """Every row covering the point, lowest code first (the first one is the owner)."""
        rows = locate.covering_grids(  # type: ignore[call-arg]
            float(lon),
            float(lat),
            self._rings.n_grids,
            *self._ring_args(),
            self._rings.max_rings,
        )
        return sorted((int(r) for r in rows), key=lambda r: self.codes[r])

    def nearest(self, lon: float, lat: float) -> tuple[int, float]:
        """Nearest grid row to a point and the distance to it in metres (0 if it covers it)."""
        return self._nearest.nearest(float(lon), float(lat))

    def nearest_rough(self, lon: npt.ArrayLike, lat: npt.ArrayLike
                      ) -> tuple[IntArray, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Batch nearest grid by plain degrees: (rows, metres to it, lower bound on the nearest)."""
        x = np.ascontiguousarray(lon, dtype=np.float64).ravel()
        y = np.ascontiguousarray(lat, dtype=np.float64).ravel()
        return self._nearest.nearest_rough(x, y)

    def within_m(self, lon: float, lat: float, metres: float) -> list[int]:
        """Rows of every grid within ``metres`` of the point, in row order."""
        return self._nearest.within(float(lon), float(lat), float(metres))

    def distance_to_edge_m(self, row: int, lon: float, lat: float) -> float:
        """Metres from the point to the boundary of grid `row` (inside or outside it)."""
        return distance.distance_to_boundary_m(self.geoms[row], float(lon), float(lat))

    # ------------------------------------------------------------------ facts

    @property
    def size_bytes(self) -> int:
        """Memory held by the index arrays (rings, bands and cells), in bytes."""
        return self._rings.nbytes() + self._cells.nbytes()

    def stats(self) -> dict[str, int]:
        """Counts that describe the index (for logs and the benchmark)."""
        c = self._cells
        return {
            "grids": self._rings.n_grids,
            "vertices": self._rings.n_vertices,
            "leaf_cells": c.leaf_cells,
            "mixed_leaf_cells": c.mixed_cells,
            "blocks": int(c.block_depth.size),
            "table_cells": int(c.top.size + c.sub.size),
            "depth": c.depth,
            "bytes": self.size_bytes,
        }
