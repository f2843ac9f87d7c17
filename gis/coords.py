"""Input coordinates: CRS conversion to WGS84 and validation of longitude/latitude values.

Accepted input CRS names:

- ``wgs84`` (default): phone GPS, WeChat ``wx.getLocation`` default.
- ``cgcs2000``: China's geodetic datum (EPSG:4490). It differs from WGS84 by centimetres, far
  below what separates two small grids, so it is treated as WGS84 unchanged.
- ``gcj02``: the obfuscated "Mars" coordinates of AMap/Tencent SDKs and map components.
- ``bd09``: Baidu's coordinates (``bd09ll``), defined as a further offset on top of GCJ-02.

Conventions (the same as the widely used open formulas):

- Outside China GCJ-02 is the identity: a point counts as outside China when it is not inside
  73.66 < lon < 135.05 and 3.86 < lat < 53.55 (the usual ``out_of_china`` box). Lanzhou is far
  inside it. The test uses the GCJ-02 point's own position, both forwards and backwards.
- BD-09 <-> GCJ-02 applies everywhere, as in the common libraries.
- The inverses (GCJ-02 -> WGS84, BD-09 -> GCJ-02) iterate on the forward formula until every
  step is below 1e-8 degrees (~1 mm); each step shrinks the error ~100-fold, so what remains is
  ~1e-10 degree (~10 micrometres), and a round trip is exact to well under 1 cm.
  The one-step inverse found in most libraries is off by up to several metres, which is enough to
  pick the wrong small grid.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from gis.errors import InvalidInput

FloatArray = npt.NDArray[np.float64]

CRS_NAMES: Final = ("wgs84", "cgcs2000", "gcj02", "bd09")
DEFAULT_CRS: Final = "wgs84"

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formula.
_KRASOVSKY_A: Final = 6378245.0
_KRASOVSKY_EE: Final = 0.00669342162296594323
_BD_X_PI: Final = math.pi * 3000.0 / 180.0

# Iteration stops once every coordinate moved less than this (degrees, about 1 mm); the error
# left is ~1/100 of the last step (the offset's slope is ~1e-2).
_INVERSE_STEP_DEG: Final = 1e-8
_INVERSE_MAX_ITERATIONS: Final = 30


def parse_crs(name: str | None) -> str:
    """Canonical CRS name for a user-supplied one (case-insensitive); None means wgs84."""
    if name is None:
        return DEFAULT_CRS
    canonical = str(name).strip().lower().replace("-", "").replace("_", "")
    aliases = {"bd09ll": "bd09", "epsg4326": "wgs84", "epsg4490": "cgcs2000"}
    canonical = aliases.get(canonical, canonical)
    if canonical not in CRS_NAMES:
        raise InvalidInput(
            f"unknown crs {name!r}: use one of {', '.join(CRS_NAMES)}",
            details={"crs": str(name), "allowed": list(CRS_NAMES)},
        )
    return canonical


def _as_float_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"lon and lat shapes differ: {x.shape} vs {y.shape}")
    return x, y


def out_of_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True where GCJ-02 leaves a point unchanged (outside the usual China box)."""
    x, y = _as_float_arrays(lon, lat)
    inside = (x > 73.66) & (x < 135.05) & (y > 3.86) & (y < 53.55)
    return ~inside


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (dlon, dlat) in degrees at a WGS84 position, ignoring the China box."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    shared = (20.0 * np.sin(6.0 * x * math.pi) + 20.0 * np.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat += shared
    dlat += (20.0 * np.sin(y * math.pi) + 40.0 * np.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * math.pi) + 320.0 * np.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon += shared
    dlon += (20.0 * np.sin(x * math.pi) + 40.0 * np.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * math.pi) + 300.0 * np.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * math.pi
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / (
        (_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * math.pi
    )
    dlon = (dlon * 180.0) / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Forward WGS84 -> GCJ-02 (identity outside China), vectorised."""
    x, y = _as_float_arrays(lon, lat)
    dlon, dlat = _gcj_offset(x, y)
    outside = out_of_china(x, y)
    return np.where(outside, x, x + dlon), np.where(outside, y, y + dlat)


def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Inverse GCJ-02 -> WGS84 by fixed-point iteration on the forward formula (< 1 cm)."""
    gx, gy = _as_float_arrays(lon, lat)
    # The offset changes slowly with position (|d offset / d position| ~ 1e-3), so iterating
    # w <- w - (F(w) - g) contracts the error a thousandfold per step.
    wx, wy = gx.copy(), gy.copy()
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fx, fy = wgs84_to_gcj02(wx, wy)
        step_x, step_y = fx - gx, fy - gy
        wx -= step_x
        wy -= step_y
        if not (
            np.any(np.abs(step_x) >= _INVERSE_STEP_DEG)
            or np.any(np.abs(step_y) >= _INVERSE_STEP_DEG)
        ):
            break
    return wx, wy


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Forward GCJ-02 -> BD-09, vectorised."""
    x, y = _as_float_arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _bd09_to_gcj02_one_step(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The common closed-form approximate inverse; the starting point of the iteration."""
    x = x - 0.0065
    y = y - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Inverse BD-09 -> GCJ-02 by iterating on the forward formula (< 1 cm)."""
    bx, by = _as_float_arrays(lon, lat)
    gx, gy = _bd09_to_gcj02_one_step(bx, by)
    for _ in range(_INVERSE_MAX_ITERATIONS):
        fx, fy = gcj02_to_bd09(gx, gy)
        step_x, step_y = fx - bx, fy - by
        gx -= step_x
        gy -= step_y
        if not (
            np.any(np.abs(step_x) >= _INVERSE_STEP_DEG)
            or np.any(np.abs(step_y) >= _INVERSE_STEP_DEG)
        ):
            break
    return gx, gy


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Forward WGS84 -> BD-09 (through GCJ-02), vectorised."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Inverse BD-09 -> WGS84 (through GCJ-02), both steps iterated (< 1 cm)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str | None = DEFAULT_CRS
) -> tuple[FloatArray, FloatArray]:
    """Convert arrays of positions given in `crs` to WGS84 (EPSG:4326) degrees."""
    name = parse_crs(crs)
    if name == "gcj02":
        return gcj02_to_wgs84(lon, lat)
    if name == "bd09":
        return bd09_to_wgs84(lon, lat)
    x, y = _as_float_arrays(lon, lat)
    return x.copy(), y.copy()


def to_wgs84_one(lon: float, lat: float, crs: str | None = DEFAULT_CRS) -> tuple[float, float]:
    """Convert one position given in `crs` to WGS84 degrees."""
    x, y = to_wgs84(np.array([lon], dtype=np.float64), np.array([lat], dtype=np.float64), crs)
    return float(x[0]), float(y[0])


# ---------------------------------------------------------------- validation


def _is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but True/False as a coordinate is always a mistake.
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, int | float | np.integer | np.floating)


def coordinate_problem(lon: Any, lat: Any) -> str | None:
    """Why (lon, lat) cannot be a WGS84 position, in words for a person; None when it can."""
    for name, value in (("lon", lon), ("lat", lat)):
        if not _is_number(value):
            return f"{name} is not a number (got {value!r})"
    x, y = float(lon), float(lat)
    for name, v in (("lon", x), ("lat", y)):
        if not math.isfinite(v):
            return f"{name} is {v} (NaN or infinite): not a position"
    if x == 0.0 and y == 0.0:
        return "(0, 0) is 'null island' in the Gulf of Guinea: probably a missing GPS fix"
    lanzhou_like_swap = 35.0 <= x <= 42.0 and 100.0 <= y <= 110.0
    if lanzhou_like_swap or (abs(y) > 90.0 and abs(x) <= 90.0):
        return (
            f"lat={y!r} is out of range (-90..90) and lon={x!r} would be a valid latitude: "
            "the pair looks swapped (lat/lon?); send longitude first, then latitude"
        )
    if not -180.0 <= x <= 180.0:
        return f"lon={x!r} is out of range (-180..180)"
    if not -90.0 <= y <= 90.0:
        return f"lat={y!r} is out of range (-90..90)"
    return None


def validate_lonlat(lon: Any, lat: Any) -> tuple[float, float]:
    """Return (lon, lat) as floats, or raise InvalidInput saying what is wrong with them."""
    problem = coordinate_problem(lon, lat)
    if problem is not None:
        raise InvalidInput(
            f"bad coordinate: {problem}",
            details={"lon": _jsonable(lon), "lat": _jsonable(lat), "reason": problem},
        )
    return float(lon), float(lat)


def _jsonable(value: Any) -> Any:
    if _is_number(value):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    return str(value)


def coordinate_problems(lon: npt.ArrayLike, lat: npt.ArrayLike) -> list[str | None]:
    """Per row, why (lon[i], lat[i]) cannot be a position, or None; vectorised for float input."""
    lon_arr = np.asarray(lon)
    lat_arr = np.asarray(lat)
    if lon_arr.shape != lat_arr.shape or lon_arr.ndim != 1:
        raise ValueError("lon and lat must be 1-D and of equal length")
    numeric_kinds = "iuf"
    if lon_arr.dtype.kind not in numeric_kinds or lat_arr.dtype.kind not in numeric_kinds:
        # Mixed input (text from a CSV, None): judge each row on its own.
        return [
            coordinate_problem(a, b)
            for a, b in zip(lon_arr.tolist(), lat_arr.tolist(), strict=True)
        ]
    x = lon_arr.astype(np.float64)
    y = lat_arr.astype(np.float64)
    suspicious = (
        ~np.isfinite(x)
        | ~np.isfinite(y)
        | ((x == 0.0) & (y == 0.0))
        | (np.abs(x) > 180.0)
        | (np.abs(y) > 90.0)
    )
    problems: list[str | None] = [None] * len(x)
    for i in np.flatnonzero(suspicious).tolist():
        problems[i] = coordinate_problem(float(x[i]), float(y[i]))
    return problems
