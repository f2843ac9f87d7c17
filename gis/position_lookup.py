"""Answer "which grid is this position in": one point with detail, or many points in bulk."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gis.coords import coordinate_problems, parse_crs, to_wgs84, validate_lonlat
from gis.errors import InvalidInput, NotFound
from gis.grid_snapshot import GridRecord, GridSnapshot, Gridworker

MAX_ACCURACY_M = 5000.0


class OutsideEveryGrid(NotFound):
    """The position lies outside every small grid; details name the nearest grid."""

    kind = "outside_every_grid"


@dataclass(frozen=True)
class PositionAnswer:
    """The small grid owning a position, its parents, gridworker and how sure we are."""

    lon: float
    lat: float
    crs: str
    wgs84: tuple[float, float]
    version: int
    small: GridRecord
    medium: GridRecord
    large: GridRecord
    district_name: str
    gridworker: Gridworker | None
    distance_to_edge_m: float
    ambiguous: bool = False
    candidates: list[GridRecord] = field(default_factory=list)


def parse_accuracy(accuracy_m: float | None) -> float | None:
    """Check a GPS accuracy radius in metres (None: not given)."""
    if accuracy_m is None:
        return None
    if not math.isfinite(accuracy_m) or accuracy_m < 0 or accuracy_m > MAX_ACCURACY_M:
        raise InvalidInput(f"accuracy must be between 0 and {MAX_ACCURACY_M:.0f} metres "
                           f"(got {accuracy_m!r})")
    return accuracy_m


def locate_position(snapshot: GridSnapshot, lon: object, lat: object, crs: str | None = None,
                    accuracy_m: float | None = None) -> PositionAnswer:
    """Locate one position given in ``crs``; OutsideEveryGrid when no small grid covers it."""
    name = parse_crs(crs)
    x, y = validate_lonlat(lon, lat)
    accuracy = parse_accuracy(accuracy_m)
    wx, wy = (float(v[0]) for v in to_wgs84(np.array([x]), np.array([y]), name))
    index = snapshot.index
    row = index.locate_one(wx, wy)
    if row < 0:
        nearest, metres = index.nearest(wx, wy)
        record = snapshot.small(nearest)
        raise OutsideEveryGrid(
            f"the position ({x}, {y}, {name}) is outside every grid; the nearest is "
            f"{record.code} {record.name}, {metres:.0f} m away",
            details={"nearest": {"code": record.code, "name": record.name},
                     "distance_m": round(metres, 1), "grid_version": snapshot.version},
        )
    small, medium, large = snapshot.chain(index.codes[row])
    to_edge = index.distance_to_edge_m(row, wx, wy)
    others: list[GridRecord] = []
    if accuracy is not None and to_edge <= accuracy:
        others = [snapshot.small(r) for r in index.within_m(wx, wy, accuracy) if r != row]
    return PositionAnswer(
        lon=x, lat=y, crs=name, wgs84=(wx, wy), version=snapshot.version,
        small=small, medium=medium, large=large,
        district_name=snapshot.districts.get(small.district_code, ""),
        gridworker=snapshot.gridworkers.get(small.code),
        distance_to_edge_m=to_edge, ambiguous=bool(others), candidates=others,
    )


@dataclass(frozen=True)
class BulkAnswer:
    """Per point: the owner row (-1 none) or the reason the point could not be read."""

    rows: npt.NDArray[np.int64]
    problems: list[str | None]
    wgs84_lon: npt.NDArray[np.float64]
    wgs84_lat: npt.NDArray[np.float64]


def locate_positions(snapshot: GridSnapshot, lon: npt.ArrayLike, lat: npt.ArrayLike,
                     crs: str | None = None) -> BulkAnswer:
    """Locate many positions at once; bad rows get a reason instead of an owner."""
    name = parse_crs(crs)
    problems = coordinate_problems(lon, lat)
    good = np.array([p is None for p in problems], dtype=bool)
    x = np.full(good.size, np.nan)
    y = np.full(good.size, np.nan)
    if good.any():
        raw_x = np.asarray(lon, dtype=object)[good].astype(np.float64)
        raw_y = np.asarray(lat, dtype=object)[good].astype(np.float64)
        x[good], y[good] = to_wgs84(raw_x, raw_y, name)
    rows = np.full(good.size, -1, dtype=np.int64)
    if good.any():
        rows[good] = snapshot.index.locate(x[good], y[good])
    return BulkAnswer(rows=rows, problems=problems, wgs84_lon=x, wgs84_lat=y)
