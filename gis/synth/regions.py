"""Region growing on the cell adjacency graph: k connected, non-empty regions of a cell set.

A multi-source Dijkstra from k source cells (cost = distance between seeds, times a penalty for
crossing the river), optionally capped at a target size per region: a capped region stops taking
cells and the others grow around it; cells no region could take at the end go to a neighbouring
region, uncapped. Each cell is labelled from the cell it was reached from, so every region is
connected and holds its source: the number of regions is exact by construction.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np


class RegionGrower:
    """Grows regions over one cell adjacency graph."""

    def __init__(self, adjacency: list[list[int]], positions: np.ndarray,
                 side: np.ndarray | None = None, crossing_penalty: float = 1.0) -> None:
        self.adjacency = adjacency
        self.positions = positions
        self._xy = positions.tolist()
        self._weights: list[float] = []
        self.side = side
        self.crossing_penalty = crossing_penalty

    def _cost(self, a: int, b: int) -> float:
        (ax, ay), (bx, by) = self._xy[a], self._xy[b]
        cost = math.sqrt((ax - bx) * (ax - bx) + (ay - by) * (ay - by))
        if self.side is not None and self.side[a] != self.side[b]:
            cost *= self.crossing_penalty
        return cost

    def grow(self, cells: Sequence[int], sources: Sequence[int],
             targets: Sequence[int] | None = None,
             weights: Sequence[float] | None = None) -> dict[int, int]:
        """Label (0..k-1) of every cell in cells; regions are connected and contain their source.

        A region's costs are divided by its weight, so heavier regions reach farther.
        """
        members = set(cells)
        self._weights = list(weights) if weights is not None else [1.0] * len(sources)
        label: dict[int, int] = {}
        size = [0] * len(sources)
        heap: list[tuple[float, int, int]] = [(0.0, j, s) for j, s in enumerate(sources)]
        self._run(heap, members, label, size, targets)
        if len(label) < len(members):
            heap = [(self._cost(c, n) / self._weights[label[c]], label[c], n) for c in sorted(label)
                    for n in self.adjacency[c] if n in members and n not in label]
            heapq.heapify(heap)
            self._run(heap, members, label, size, None)
        if len(label) != len(members):
            raise RuntimeError("a cell set to partition is not connected")
        return label

    def _run(self, heap: list[tuple[float, int, int]], members: set[int], label: dict[int, int],
             size: list[int], targets: Sequence[int] | None) -> None:
        heapq.heapify(heap)
        while heap:
            dist, j, cell = heapq.heappop(heap)
            if cell in label or (targets is not None and size[j] >= targets[j]):
                continue
            label[cell] = j
            size[j] += 1
            for n in self.adjacency[cell]:
                if n in members and n not in label:
                    heapq.heappush(heap, (dist + self._cost(cell, n) / self._weights[j], j, n))

    def balanced(self, cells: Sequence[int], k: int, rounds: int = 3) -> dict[int, int]:
        """k regions of about equal size: k-means sources, capped growth, re-centred sources."""
        cells = sorted(cells)
        pts = self.positions[cells]
        centres = kmeans_centres(pts, k)
        sources = nearest_distinct(pts, centres, cells)
        base, extra = divmod(len(cells), k)
        targets = [base + (1 if j < extra else 0) for j in range(k)]
        label = self.grow(cells, sources, targets)
        for _ in range(rounds):
            groups: list[list[int]] = [[] for _ in range(k)]
            for cell in cells:
                groups[label[cell]].append(cell)
            centres = np.array([self.positions[g].mean(axis=0) for g in groups])
            sources = nearest_distinct(pts, centres, cells)
            label = self.grow(cells, sources, targets)
        return label


def kmeans_centres(pts: np.ndarray, k: int, iterations: int = 12) -> np.ndarray:
    """k cluster centres of pts: farthest-point start, then Lloyd iterations (deterministic)."""
    centre = pts.mean(axis=0)
    chosen = [int(np.argmin(((pts - centre) ** 2).sum(axis=1)))]
    dist = ((pts - pts[chosen[0]]) ** 2).sum(axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((pts - pts[nxt]) ** 2).sum(axis=1))
    centres = pts[chosen].copy()
    for _ in range(iterations):
        d = ((pts[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        nearest = np.argmin(d, axis=1)
        for j in range(k):
            mine = pts[nearest == j]
            if len(mine):
                centres[j] = mine.mean(axis=0)
    return centres


def nearest_distinct(pts: np.ndarray, centres: np.ndarray, cells: Sequence[int]) -> list[int]:
    """For each centre, the nearest cell not already taken by an earlier centre."""
    taken: set[int] = set()
    out = []
    for centre in centres:
        order = np.argsort(((pts - centre) ** 2).sum(axis=1), kind="stable")
        pick = next(int(i) for i in order if int(i) not in taken)
        taken.add(pick)
        out.append(cells[pick])
    return out
