"""The gridworker roster: one full-time gridworker (网格员) per small grid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from gis.synth.catalogue import Grid
from gis.synth.names import NameMaker

EARLIEST_START = date(2019, 1, 1)
LATEST_START = date(2026, 10, 31)
COLUMNS = ("worker_id", "grid_code", "name", "phone", "on_duty_since")


@dataclass(frozen=True)
class Gridworker:
    """A gridworker; the phone number is full here, the service masks it per role."""

    worker_id: str
    grid_code: str
    name: str
    phone: str
    on_duty_since: date

    def row(self) -> dict[str, str]:
        """The roster CSV row."""
        return {"worker_id": self.worker_id, "grid_code": self.grid_code, "name": self.name,
                "phone": self.phone, "on_duty_since": self.on_duty_since.isoformat()}


def make_roster(smalls: list[Grid], names: NameMaker,
                rng: np.random.Generator) -> dict[str, Gridworker]:
    """Gridworkers by grid code, numbered in grid-code order."""
    span = (LATEST_START - EARLIEST_START).days
    people = names.people(len(smalls))
    phones = names.mobiles(len(smalls))
    starts = rng.integers(span + 1, size=len(smalls)).tolist()
    roster = {}
    for n, grid in enumerate(smalls):
        roster[grid.code] = Gridworker(
            worker_id=f"GW{n + 1:05d}", grid_code=grid.code, name=people[n], phone=phones[n],
            on_duty_since=EARLIEST_START + timedelta(days=starts[n]))
    return roster
