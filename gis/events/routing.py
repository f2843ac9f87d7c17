"""Route a batch of events to small grids at once: the router's index for every position.

An event is placed by, in order: an explicit small grid code (route ``given``); the small grid
covering its position (``exact``); the nearest grid when the position is outside every grid but
within SNAP_TOLERANCE_M of one (``snapped``, with the distance); otherwise it is kept
``unrouted`` with the reason. Bad coordinates (NaN, swapped, out of range) reject the row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gis.coords import coordinate_problems, to_wgs84
from gis.events.model import EventIn
from gis.events.vocabulary import SNAP_TOLERANCE_M
from gis.grid_snapshot import GridSnapshot


@dataclass
class RoutedBatch:
    """Per event of the batch: WGS84 position, owner, how it was found, or why it was refused."""

    lon: npt.NDArray[np.float64]  # NaN: no position
    lat: npt.NDArray[np.float64]
    grid_code: list[str | None]
    route: list[str]
    route_note: list[str | None]
    snap_distance_m: list[float | None]
    rejects: dict[int, str]  # position in the batch -> reason
    grid_version: int


def _outside_note(snapshot: GridSnapshot, row: int, metres: float, tolerance_m: float,
                  *, rough: bool = False) -> str:
    record = snapshot.small(row)
    about = "about " if rough else ""
    return (f"outside every grid: the nearest is {record.code} {record.name}, {about}"
            f"{metres:.0f} m away (beyond the {tolerance_m:.0f} m tolerance)")


def route_events(snapshot: GridSnapshot, events: list[EventIn],
                 tolerance_m: float = SNAP_TOLERANCE_M) -> RoutedBatch:
    """Owner of every event of a batch under the snapshot's grid version."""
    n = len(events)
    in_lon = np.array([np.nan if e.lon is None else e.lon for e in events], dtype=np.float64)
    in_lat = np.array([np.nan if e.lat is None else e.lat for e in events], dtype=np.float64)
    crs = np.array([e.crs for e in events], dtype=object)
    given = [e.grid_code for e in events]
    has_position = np.array([e.lon is not None for e in events], dtype=bool)
    rejects: dict[int, str] = {}

    positioned = np.flatnonzero(has_position)
    problems = coordinate_problems(in_lon[positioned], in_lat[positioned])
    good = np.zeros(n, dtype=bool)
    for i, problem in zip(positioned.tolist(), problems, strict=True):
        if problem is None:
            good[i] = True
        else:
            rejects[i] = f"bad coordinate: {problem}"
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    for name in sorted(set(crs[good].tolist())):
        rows = np.flatnonzero(good & (crs == name))
        lon[rows], lat[rows] = to_wgs84(in_lon[rows], in_lat[rows], name)
    owners = np.full(n, -1, dtype=np.int64)
    located = np.flatnonzero(good)
    if located.size:
        owners[located] = snapshot.index.locate(lon[located], lat[located])

    codes = snapshot.index.codes
    out_code: list[str | None] = [None] * n
    out_route = ["unrouted"] * n
    notes: list[str | None] = [None] * n
    snaps: list[float | None] = [None] * n
    for i in np.flatnonzero(owners >= 0).tolist():
        out_code[i], out_route[i] = codes[owners[i]], "exact"
    unplaced = np.array([g is None for g in given], dtype=bool)
    outside = np.flatnonzero(good & (owners < 0) & unplaced)
    if outside.size:
        # One batch call finds the grid nearest in degrees and a lower bound on the distance;
        # only points that may lie within the tolerance are measured exactly, one by one.
        rough_rows, rough_m, lower_m = snapshot.index.nearest_rough(lon[outside], lat[outside])
    for j, i in enumerate(outside.tolist()):
        if lower_m[j] > tolerance_m:
            notes[i] = _outside_note(snapshot, int(rough_rows[j]), float(rough_m[j]),
                                     tolerance_m, rough=True)
            continue
        row, metres = snapshot.index.nearest(float(lon[i]), float(lat[i]))
        if metres <= tolerance_m:
            out_code[i], out_route[i] = codes[row], "snapped"
            snaps[i] = round(metres, 1)
            notes[i] = f"outside every grid, {metres:.1f} m from {codes[row]}: snapped to it"
        else:
            notes[i] = _outside_note(snapshot, row, metres, tolerance_m)
    for i in np.flatnonzero(~has_position).tolist():
        notes[i] = None if given[i] else "no position and no grid code given"
    for i, code in enumerate(given):
        if code is None or i in rejects:
            continue
        record = snapshot.grids.get(code)
        if record is None or record.level != "small":
            rejects[i] = f"grid_code {code} is not a current small grid"
            continue
        if good[i] and out_code[i] not in (None, code):
            notes[i] = f"given grid {code}; the position lies in {out_code[i]}"
        elif good[i] and out_code[i] is None:
            notes[i] = f"given grid {code}; the position is outside every grid"
        out_code[i], out_route[i], snaps[i] = code, "given", None
    return RoutedBatch(lon=lon, lat=lat, grid_code=out_code, route=out_route, route_note=notes,
                       snap_distance_m=snaps, rejects=rejects, grid_version=snapshot.version)
