"""Topology checker of the three-level grid: each level tiles its parent, no gap, no overlap.

Geometry is worked on in EPSG:4326 as planar lon/lat, exactly as PostGIS stores and compares it, so
an edge means the same straight segment here as in the database. Areas are turned into m² with the
ellipsoid's local scale at each piece's centroid latitude (see `area_m2`).
"""

from __future__ import annotations

import math
from collections import defaultdict

import geopandas
import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from gis.errors import InvalidInput
from gis.grid_codes import LEVELS, PARENT_LEVEL, code_problems
from gis.gridfile_checks import invalidity
from gis.gridfiles import as_multipolygons
from gis.topology_report import FAULT_KINDS, Fault, TopologyReport

_WGS84 = pyproj.Geod(ellps="WGS84")
_A = float(_WGS84.a)
_E2 = float(_WGS84.es)
_DEG = math.pi / 180.0
_REQUIRED = ("code", "parent_code", "level")


def area_m2(geometries: np.ndarray) -> np.ndarray:
    """Area in m² of lon/lat geometries: planar deg² times the ellipsoid's m² per deg² there.

    m² per deg² at latitude φ is (π/180)² · M(φ) · N(φ) · cos φ (meridian and prime-vertical radii
    of WGS84). Taken at the centroid it matches the geodesic area to about 1e-5 for pieces up to a
    degree across; grids and the slivers between them are far smaller.
    """
    planar = np.nan_to_num(shapely.area(geometries))
    latitude = np.zeros(len(planar))
    solid = planar > 0  # GEOS refuses the y of an empty centroid
    latitude[solid] = shapely.get_y(shapely.centroid(geometries[solid])) * _DEG
    sin2 = np.sin(latitude) ** 2
    meridian = _A * (1 - _E2) / (1 - _E2 * sin2) ** 1.5
    prime_vertical = _A / np.sqrt(1 - _E2 * sin2)
    scale = _DEG * _DEG * meridian * prime_vertical * np.cos(latitude)
    return planar * scale


def check_topology(
    grids: geopandas.GeoDataFrame,
    *,
    tolerance_m2: float = 1.0,
    expected_counts: dict[str, int] | None = None,
    city: BaseGeometry | None = None,
) -> TopologyReport:
    """Check codes, geometries and the large/medium/small tiling; faults above `tolerance_m2`."""
    missing = [c for c in _REQUIRED if c not in grids.columns]
    if missing:
        raise InvalidInput(f"grid table lacks column(s) {', '.join(missing)}")
    if grids.crs is not None and grids.crs.to_epsg() != 4326:
        grids = grids.to_crs(4326)
    checker = _Checker(grids, tolerance_m2)
    checker.check_codes(expected_counts)
    checker.check_geometries()
    checker.check_hierarchy()
    for level in LEVELS:
        checker.check_overlaps(level)
    for level in ("medium", "small"):
        checker.check_children(level)
    if city is not None:
        checker.check_city(city)
    order = {kind: i for i, kind in enumerate(FAULT_KINDS)}
    faults = sorted(checker.faults, key=lambda f: (order[f.kind], f.codes, f.message))
    return TopologyReport(faults=faults, counts=checker.counts, tolerance_m2=tolerance_m2)


class _Checker:
    """The grid table as arrays, and the faults found so far."""

    def __init__(self, grids: geopandas.GeoDataFrame, tolerance_m2: float) -> None:
        self.tolerance = tolerance_m2
        self.codes = [str(c) for c in grids["code"].astype(object)]
        self.levels = [str(v) for v in grids["level"].astype(object)]
        parents = grids["parent_code"].astype(object)
        self.parents: list[str | None] = [
            None if p is None or p != p or p == "" else str(p) for p in parents
        ]
        names = grids["name"].astype(object) if "name" in grids.columns else [None] * len(grids)
        self.names = [str(n) if isinstance(n, str) else "" for n in names]
        self.geoms = np.array(grids.geometry.to_numpy(), dtype=object)  # a copy: repairs go here
        # grids whose edges do not match their neighbours' exactly (may overlap)
        self.suspect = np.zeros(len(self.geoms), dtype=bool)
        self.usable = np.zeros(len(self.geoms), dtype=bool)  # geometry fit for area checks
        self.counts = {level: self.levels.count(level) for level in LEVELS}
        self.index_of: dict[str, int] = {}
        self.faults: list[Fault] = []

    def label(self, i: int) -> str:
        """A grid as a person reads it: code and name."""
        return f"{self.codes[i]} {self.names[i]}".strip()

    def add(
        self,
        kind: str,
        codes: tuple[str, ...],
        message: str,
        piece: BaseGeometry | None = None,
        area: float | None = None,
    ) -> None:
        """Record a fault; a `piece` gives its area and a point inside it."""
        location = None
        if piece is not None and not piece.is_empty:
            point = shapely.point_on_surface(piece)
            location = (round(point.x, 7), round(point.y, 7))
            if area is None:
                area = float(area_m2(np.array([piece]))[0])
        self.faults.append(Fault(kind, codes, area, location, message))

    def check_codes(self, expected_counts: dict[str, int] | None) -> None:
        """Code pattern and prefix, duplicates, and counts per level."""
        for i, code in enumerate(self.codes):
            for problem in code_problems(code, self.levels[i], self.parents[i]):
                self.add("code", (code,), f"{self.label(i)}: {problem}")
            if code in self.index_of:
                first = self.index_of[code]
                self.add("code", (code,), f"code {code} is used by rows {first} and {i}")
            else:
                self.index_of[code] = i
        for level, expected in (expected_counts or {}).items():
            found = self.counts.get(level, self.levels.count(level))
            if found != expected:
                self.add("count", (), f"{found} {level} grids where {expected} are expected")

    def check_geometries(self) -> None:
        """Missing, empty and invalid geometries; invalid ones are repaired for the later checks."""
        geoms = self.geoms
        missing = shapely.is_missing(geoms)
        empty = missing | shapely.is_empty(geoms)
        for i in map(int, np.flatnonzero(empty)):
            what = "no geometry" if missing[i] else "an empty geometry"
            self.add("empty_geometry", (self.codes[i],), f"{self.label(i)} has {what}")
        polygonal = np.isin(shapely.get_type_id(geoms), [3, 6])
        for i in map(int, np.flatnonzero(~empty & ~polygonal)):
            self.add(
                "invalid_geometry",
                (self.codes[i],),
                f"{self.label(i)} is a {geoms[i].geom_type}, not a polygon",
            )
        self.usable = ~empty & polygonal
        candidates = np.flatnonzero(self.usable)
        for i, fault in zip(map(int, candidates), invalidity(geoms[candidates]), strict=True):
            if fault is None:
                continue
            reason, location = fault
            where = f" at ({location[0]:.7f}, {location[1]:.7f})" if location else ""
            self.faults.append(
                Fault(
                    "invalid_geometry",
                    (self.codes[i],),
                    None,
                    location,
                    f"{self.label(i)} is invalid: {reason}{where}",
                )
            )
            # Keep checking the rest of the tiling with the polygonal part of a repaired copy.
            repaired = shapely.make_valid(geoms[i])
            polygons = [p for p in shapely.get_parts(repaired) if p.geom_type == "Polygon"]
            self.geoms[i] = shapely.multipolygons(polygons) if polygons else None
            self.usable[i] = bool(polygons)

    def check_hierarchy(self) -> None:
        """Children whose parent is not in the table."""
        for i, parent in enumerate(self.parents):
            parent_level = PARENT_LEVEL.get(self.levels[i])
            if parent_level is None or parent is None:
                continue
            j = self.index_of.get(parent)
            if j is None or self.levels[j] != parent_level:
                self.add(
                    "orphan",
                    (self.codes[i], parent),
                    f"{self.label(i)}: its parent {parent_level} grid {parent} does not exist",
                )

    def members(self, level: str) -> np.ndarray:
        """Row numbers of the usable grids of one level."""
        at_level = np.array([lv == level for lv in self.levels], dtype=bool)
        return np.flatnonzero(at_level & self.usable)

    def check_overlaps(self, level: str) -> None:
        """Grids of one level whose interiors overlap by more than the tolerance."""
        rows = self.members(level)
        if len(rows) < 2:
            return
        geoms = self.geoms[rows]
        # GEOS's coverage validator finds, in one pass, every grid with an edge that is not shared
        # exactly with its neighbour: only those can overlap, and only they need overlay work.
        suspects = np.flatnonzero(~shapely.is_empty(shapely.coverage_invalid_edges(geoms)))
        self.suspect[rows[suspects]] = True
        if len(suspects) == 0:
            return
        tree = shapely.STRtree(geoms)
        found, other = tree.query(geoms[suspects], predicate="intersects")
        pairs = {
            tuple(sorted((int(suspects[a]), int(b)))) for a, b in zip(found, other, strict=True)
        }
        left, right = np.array(sorted(p for p in pairs if p[0] != p[1])).reshape(-1, 2).T
        common = shapely.intersection(geoms[left], geoms[right])
        for a, b, piece, area in zip(left, right, common, area_m2(common), strict=True):
            if area <= self.tolerance:
                continue
            i, j = rows[a], rows[b]
            self.add(
                "overlap",
                tuple(sorted((self.codes[i], self.codes[j]))),
                f"{self.label(i)} and {self.label(j)} overlap",
                piece,
                float(area),
            )

    def check_children(self, level: str) -> None:
        """Each child inside its parent, and each parent covered by its children."""
        parent_level = PARENT_LEVEL[level]
        assert parent_level is not None
        children_of: dict[int, list[int]] = defaultdict(list)
        for i in self.members(level):
            j = self.index_of.get(self.parents[i] or "")
            if j is not None and self.levels[j] == parent_level and self.usable[j]:
                children_of[j].append(int(i))
        for j in self.members(parent_level):
            if j not in children_of:
                self.add(
                    "parent_not_covered",
                    (self.codes[j],),
                    f"{self.label(j)} has no {level} grid in it",
                    self.geoms[j],
                )
        if not children_of:
            return
        parent_rows = np.array(list(children_of), dtype=int)
        unions = np.array([self._union(children_of[j]) for j in parent_rows], dtype=object)
        parents = self.geoms[parent_rows]
        # Children cut from their parent share its vertices: their union is then the parent
        # vertex for vertex, a cheap comparison; only the rest need the topological tests.
        same = shapely.equals_exact(
            shapely.normalize(as_multipolygons(parents)),
            shapely.normalize(as_multipolygons(unions)),
        )
        rest = np.flatnonzero(~same)
        if len(rest):
            rest = rest[~shapely.equals(parents[rest], unions[rest])]
        for k in rest:
            j = int(parent_rows[k])
            self._outside_parent(j, children_of[j])
            self._gaps(j, children_of[j], unions[k])

    def _union(self, kids: list[int]) -> BaseGeometry:
        """Union of siblings: GEOS's fast coverage union when their edges match exactly."""
        if self.suspect[kids].any():
            return shapely.union_all(self.geoms[kids])
        return shapely.coverage_union_all(self.geoms[kids])

    def _outside_parent(self, j: int, kids: list[int]) -> None:
        """Children of parent `j` that reach outside it."""
        parent = self.geoms[j]
        shapely.prepare(parent)
        kid_rows = np.array(kids)
        crossing = kid_rows[~shapely.covers(parent, self.geoms[kid_rows])]
        if len(crossing) == 0:
            return
        pieces = shapely.difference(self.geoms[crossing], parent)
        for i, piece, area in zip(crossing, pieces, area_m2(pieces), strict=True):
            if area > self.tolerance:
                self.add(
                    "outside_parent",
                    (self.codes[i], self.codes[j]),
                    f"{self.label(i)} reaches outside its parent {self.label(j)}",
                    piece,
                    float(area),
                )

    def _gaps(self, j: int, kids: list[int], union: BaseGeometry) -> None:
        """Parts of parent `j` that none of its children cover."""
        uncovered = shapely.get_parts(shapely.difference(self.geoms[j], union))
        uncovered = uncovered[shapely.get_type_id(uncovered) == 3]
        if len(uncovered) == 0:
            return
        tree = shapely.STRtree(self.geoms[kids])
        for piece, area in zip(uncovered, area_m2(uncovered), strict=True):
            if area <= self.tolerance:
                continue
            beside = sorted(self.codes[kids[k]] for k in tree.query(piece, predicate="touches"))
            self.add(
                "gap",
                (self.codes[j], *beside),
                f"part of {self.label(j)} is covered by none of its children",
                piece,
                float(area),
            )

    def check_city(self, city: BaseGeometry) -> None:
        """Large grids against the city outline: none outside it, no part of it uncovered."""
        rows = self.members("large")
        if len(rows) == 0:
            return
        shapely.prepare(city)
        geoms = self.geoms[rows]
        for i, piece in zip(rows, shapely.difference(geoms, city), strict=True):
            if not piece.is_empty and area_m2(np.array([piece]))[0] > self.tolerance:
                self.add(
                    "outside_parent",
                    (self.codes[i],),
                    f"{self.label(i)} reaches outside the city",
                    piece,
                )
        uncovered = shapely.get_parts(shapely.difference(city, shapely.union_all(geoms)))
        tree = shapely.STRtree(geoms)
        for piece, area in zip(uncovered, area_m2(uncovered), strict=True):
            if area > self.tolerance and piece.geom_type == "Polygon":
                beside = sorted(self.codes[rows[k]] for k in tree.query(piece, predicate="touches"))
                self.add(
                    "gap",
                    tuple(beside),
                    "part of the city is covered by no large grid",
                    piece,
                    float(area),
                )
