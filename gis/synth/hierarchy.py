"""Districts, large grids and medium grids as connected groups of small-grid cells.

Urban and rural cells are grouped separately, so every large and medium grid is all urban or all
rural: urban cells are shared out among the four valley districts (growth from each district's
anchor, capped in proportion to its street count, with a penalty for crossing the river so that
安宁 stays on the north bank and 七里河 on the south), rural cells among the seven districts with
towns (uncapped growth, each district reaching as far as its weight says, which keeps the
counties compact). Each district's cells are then split into its large grids, and each large
grid's cells into medium grids (their number in proportion to the large grid's cells), by
balanced growth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gis.synth.geography import DISTRICTS, LON_SCALE, north_of_river, to_plane
from gis.synth.partition import Partition
from gis.synth.regions import RegionGrower

URBAN_MEDIUMS = 380
RURAL_MEDIUMS = 706
RIVER_CROSSING_PENALTY = 6.0


@dataclass
class CellGroup:
    """A large or medium grid before it has a code: its district, kind and cells."""

    district: int  # index into DISTRICTS
    kind: str  # "urban" or "rural"
    cells: list[int]
    parent: int  # index of the large grid for a medium grid, -1 for a large grid


@dataclass
class Hierarchy:
    """The grouping of cells into districts, large grids and medium grids."""

    district_of_cell: np.ndarray
    larges: list[CellGroup]
    mediums: list[CellGroup]
    large_of_cell: np.ndarray
    medium_of_cell: np.ndarray


def apportion(total: int, weights: list[float]) -> list[int]:
    """Split total into len(weights) parts >= 1 in proportion to weights (largest remainder)."""
    whole = sum(weights)
    quota = [total * w / whole for w in weights]
    parts = [max(1, int(q)) for q in quota]
    while sum(parts) < total:
        i = max(range(len(parts)), key=lambda k: (quota[k] - parts[k], -k))
        parts[i] += 1
    while sum(parts) > total:
        i = max((k for k in range(len(parts)) if parts[k] > 1),
                key=lambda k: (parts[k] - quota[k], -k))
        parts[i] -= 1
    return parts


def _nearest_cell(positions: np.ndarray, cells: list[int], lonlat: tuple[float, float]) -> int:
    """The cell of cells whose seed is nearest to a lon/lat anchor."""
    target = to_plane(np.array(lonlat))
    d = ((positions[cells] - target) ** 2).sum(axis=1)
    return cells[int(np.argmin(d))]


def _districts(grower: RegionGrower, positions: np.ndarray, cells: list[int],
               kind: str) -> dict[int, int]:
    """District index of each cell of one kind."""
    attr = "urban" if kind == "urban" else "rural"
    members = [i for i, d in enumerate(DISTRICTS) if getattr(d, f"{attr}_larges") > 0]
    anchors = [getattr(DISTRICTS[i], f"{attr}_anchor") for i in members]
    sources = [_nearest_cell(positions, cells, a) for a in anchors]
    if kind == "urban":
        # The valley is shared in proportion to the streets; the river keeps the banks apart.
        targets = apportion(len(cells), [DISTRICTS[i].urban_larges for i in members])
        label = grower.grow(cells, sources, targets)
    else:
        label = grower.grow(cells, sources, weights=[DISTRICTS[i].rural_reach for i in members])
    return {cell: members[j] for cell, j in label.items()}


def build_hierarchy(partition: Partition) -> Hierarchy:
    """Group the cells into 9 districts, 110 large grids and 1086 medium grids."""
    positions = partition.seeds_plane
    lonlat = positions.copy()
    lonlat[:, 0] /= LON_SCALE
    side = north_of_river(lonlat)
    n = partition.n_cells
    adjacency = partition.adjacency()
    river_aware = RegionGrower(adjacency, positions, side, RIVER_CROSSING_PENALTY)
    plain = RegionGrower(adjacency, positions)

    kinds = {"urban": list(range(partition.n_urban)),
             "rural": list(range(partition.n_urban, n))}
    district_of_cell = np.full(n, -1, dtype=np.int64)
    for kind, cells in kinds.items():
        grower = river_aware if kind == "urban" else plain
        for cell, d in _districts(grower, positions, cells, kind).items():
            district_of_cell[cell] = d

    larges: list[CellGroup] = []
    for d, district in enumerate(DISTRICTS):
        for kind, count in (("urban", district.urban_larges), ("rural", district.rural_larges)):
            if count == 0:
                continue
            cells = [c for c in kinds[kind] if district_of_cell[c] == d]
            label = plain.balanced(cells, count)
            for j in range(count):
                larges.append(CellGroup(d, kind, [c for c in cells if label[c] == j], -1))

    mediums: list[CellGroup] = []
    for kind, total in (("urban", URBAN_MEDIUMS), ("rural", RURAL_MEDIUMS)):
        mine = [i for i, g in enumerate(larges) if g.kind == kind]
        counts = apportion(total, [float(len(larges[i].cells)) for i in mine])
        for i, count in zip(mine, counts, strict=True):
            cells = larges[i].cells
            label = plain.balanced(cells, count)
            for j in range(count):
                mediums.append(CellGroup(larges[i].district, kind,
                                         [c for c in cells if label[c] == j], i))

    large_of_cell = np.full(n, -1, dtype=np.int64)
    for i, g in enumerate(larges):
        large_of_cell[g.cells] = i
    medium_of_cell = np.full(n, -1, dtype=np.int64)
    for i, g in enumerate(mediums):
        medium_of_cell[g.cells] = i
    return Hierarchy(district_of_cell, larges, mediums, large_of_cell, medium_of_cell)
