"""What the topology checker found: faults and their report, as text for people and as JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

# In the order a planner should fix them: broken geometries and codes hide the other faults.
FAULT_KINDS: tuple[str, ...] = (
    "invalid_geometry",
    "empty_geometry",
    "code",
    "orphan",
    "count",
    "overlap",
    "outside_parent",
    "gap",
    "parent_not_covered",
)


@dataclass(frozen=True)
class Fault:
    """One topology fault: its kind, the grid codes involved, its size and where to look."""

    kind: str
    codes: tuple[str, ...]
    area_m2: float | None
    location: tuple[float, float] | None  # (lon, lat) of a point inside the fault, EPSG:4326
    message: str

    def to_line(self) -> str:
        """One line for a person: kind, codes, area, location, message."""
        parts = [f"{self.kind:<18}", ",".join(self.codes) or "-"]
        if self.area_m2 is not None:
            parts.append(f"area {self.area_m2:.1f} m²")
        if self.location is not None:
            parts.append(f"at ({self.location[0]:.6f}, {self.location[1]:.6f})")
        return "  ".join(parts) + f"  {self.message}"


@dataclass
class TopologyReport:
    """All faults of a grid set, with the counts per level that were checked."""

    faults: list[Fault] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    tolerance_m2: float = 1.0

    @property
    def ok(self) -> bool:
        """Whether the grid set has no fault at all."""
        return not self.faults

    def kinds(self) -> Counter[str]:
        """How many faults of each kind."""
        return Counter(f.kind for f in self.faults)

    def of_kind(self, kind: str) -> list[Fault]:
        """The faults of one kind, in report order."""
        return [f for f in self.faults if f.kind == kind]

    def to_text(self) -> str:
        """A report a person reads: a summary line, then one line per fault."""
        counted = ", ".join(f"{level} {n}" for level, n in self.counts.items())
        if self.ok:
            return f"topology ok: {counted} grids, no fault above {self.tolerance_m2:g} m²"
        by_kind = self.kinds()
        summary = ", ".join(f"{by_kind[k]} {k}" for k in FAULT_KINDS if by_kind[k])
        header = f"topology: {len(self.faults)} fault(s) in {counted} grids: {summary}"
        return "\n".join([header, *(f.to_line() for f in self.faults)])

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: ok, counts, tolerance and the faults."""
        return {
            "ok": self.ok,
            "counts": dict(self.counts),
            "tolerance_m2": self.tolerance_m2,
            "faults": [
                {**asdict(f), "codes": list(f.codes), "location": _listed(f.location)}
                for f in self.faults
            ],
        }

    def to_json(self) -> str:
        """The report as a JSON document (UTF-8 text, Chinese kept readable)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)


def _listed(location: tuple[float, float] | None) -> list[float] | None:
    return None if location is None else [location[0], location[1]]
