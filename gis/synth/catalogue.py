"""The grid catalogue: geometry, codes and names of every large, medium and small grid.

Numbering rule (codes are numbered within the parent, west to east, then north to south): each
grid's key point is shapely's ``point_on_surface`` of its geometry; grids are sorted by
(floor(lon / 0.005), -lat, lon) of that point, i.e. by columns about 450 m wide from west to
east and from north to south within a column. Large grids: 6-digit district code + 001-099 for
streets (urban) or 101-199 for towns (rural); medium grids: large code + 001-199 for communities
(urban) or 201-399 for villages (rural); small grids: medium code + 001-999.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from gis.synth.dedicated import Carve
from gis.synth.geography import DISTRICTS, District
from gis.synth.hierarchy import Hierarchy
from gis.synth.names import NameMaker
from gis.synth.rings import PolygonRings, to_shapely

COLUMN_DEGREES = 0.005
FIRST_NUMBER = {("large", "urban"): 1, ("large", "rural"): 101,
                ("medium", "urban"): 1, ("medium", "rural"): 201,
                ("small", "urban"): 1}


@dataclass(eq=False)
class Grid:
    """One grid of any level, with exact ring coordinates (int units) and its shapely shape."""

    level: str
    kind: str
    district: District
    polygons: list[PolygonRings]
    parent: Grid | None = None
    code: str = ""
    name: str = ""
    geometry: shapely.MultiPolygon = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def parent_code(self) -> str | None:
        """The parent's code (None for a large grid)."""
        return self.parent.code if self.parent is not None else None


@dataclass
class Catalogue:
    """All grids, by level, each level sorted by code."""

    larges: list[Grid]
    mediums: list[Grid]
    smalls: list[Grid]

    def by_level(self) -> dict[str, list[Grid]]:
        """The three levels by name."""
        return {"large": self.larges, "medium": self.mediums, "small": self.smalls}


def numbering_order(geometries: list[shapely.MultiPolygon]) -> list[int]:
    """Indices of the geometries in numbering order (see the module docstring)."""
    pts = shapely.get_coordinates(shapely.point_on_surface(np.array(geometries, dtype=object)))
    keys = [(int(np.floor(x / COLUMN_DEGREES)), -y, x) for x, y in pts.tolist()]
    return sorted(range(len(geometries)), key=lambda i: keys[i])


def _number(children: list[Grid], parent_code: str, level: str) -> None:
    """Give the children of one parent their codes, in numbering order (per kind above small)."""
    groups = [children] if level == "small" else [
        [g for g in children if g.kind == kind] for kind in ("urban", "rural")]
    for group in groups:
        if not group:
            continue
        first = FIRST_NUMBER[(level, "urban" if level == "small" else group[0].kind)]
        for n, i in enumerate(numbering_order([g.geometry for g in group])):
            group[i].code = f"{parent_code}{first + n:03d}"


def _children(grids: list[Grid]) -> dict[int, list[Grid]]:
    """Grids grouped by the identity of their parent."""
    out: dict[int, list[Grid]] = {}
    for g in grids:
        out.setdefault(id(g.parent), []).append(g)
    return out


def build_catalogue(hierarchy: Hierarchy, shells: list[np.ndarray], carves: list[Carve],
                    medium_rings: list[list[PolygonRings]], large_rings: list[list[PolygonRings]],
                    names: NameMaker) -> Catalogue:
    """Grids with geometry, parent links, codes and names."""
    larges = [Grid("large", g.kind, DISTRICTS[g.district], large_rings[i])
              for i, g in enumerate(hierarchy.larges)]
    mediums = [Grid("medium", g.kind, DISTRICTS[g.district], medium_rings[i],
                    parent=larges[g.parent]) for i, g in enumerate(hierarchy.mediums)]
    holes: dict[int, list[np.ndarray]] = {c.host: [c.ring[::-1].copy()] for c in carves}
    smalls = []
    for cell, shell in enumerate(shells):
        medium = mediums[int(hierarchy.medium_of_cell[cell])]
        smalls.append(Grid("small", medium.kind, medium.district,
                           [(shell, holes.get(cell, []))], parent=medium))
    for carve in carves:
        medium = mediums[int(hierarchy.medium_of_cell[carve.host])]
        smalls.append(Grid("small", "dedicated", medium.district, [(carve.ring, [])],
                           parent=medium))
    for grid in [*larges, *mediums, *smalls]:
        grid.geometry = to_shapely(grid.polygons)

    for d in DISTRICTS:
        _number([g for g in larges if g.district is d], d.code, "large")
    for level, parents, children in (("medium", larges, mediums), ("small", mediums, smalls)):
        grouped = _children(children)
        for parent in sorted(parents, key=lambda g: g.code):
            _number(grouped[id(parent)], parent.code, level)
    for grids in (larges, mediums, smalls):
        grids.sort(key=lambda g: g.code)
    _name(larges, mediums, smalls, names)
    return Catalogue(larges, mediums, smalls)


def _name(larges: list[Grid], mediums: list[Grid], smalls: list[Grid], names: NameMaker) -> None:
    """Names unique within each parent, drawn in code order."""
    used: dict[str, set[str]] = {}
    for g in larges:
        g.name = names.large(g.kind, used.setdefault(g.district.code, set()))
    for g in [*mediums, *smalls]:
        assert g.parent is not None
        used.setdefault(g.parent.code, set())
    for g in mediums:
        g.name = names.medium(g.kind, used[g.parent_code or ""])
    counters: dict[tuple[str, str], int] = {}
    for g in smalls:
        parent = g.parent
        assert parent is not None
        key = (parent.code, g.kind)
        counters[key] = counters.get(key, 0) + 1
        g.name = names.small(g.kind, parent.name, counters[key], used[parent.code])
