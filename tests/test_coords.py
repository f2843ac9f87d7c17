"""CRS conversion against an independent implementation, and coordinate validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from gis import coords
from gis.errors import InvalidInput

# Independent reference: the "coordTransform" package (PyPI), not derived from our code.
reference = pytest.importorskip("coordTransform.coordTransform")

GEOD = Geod(ellps="WGS84")
RNG_SEED = 20261125


@pytest.fixture(scope="module")
def china_points() -> tuple[np.ndarray, np.ndarray]:
    """10k random WGS84 points spread over mainland China's box (inside the GCJ-02 area)."""
    rng = np.random.default_rng(RNG_SEED)
    lon = rng.uniform(74.0, 135.0, 10_000)
    lat = rng.uniform(4.0, 53.5, 10_000)
    return lon, lat


def _reference_pairs(func, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [func(float(a), float(b)) for a, b in zip(lon, lat, strict=True)]
    out = np.array(pairs, dtype=np.float64)
    return out[:, 0], out[:, 1]


def _metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


def test_forward_wgs84_to_gcj02_matches_reference(china_points) -> None:
    lon, lat = china_points
    ours = coords.wgs84_to_gcj02(lon, lat)
    ref = _reference_pairs(reference.wgs84_to_gcj02, lon, lat)
    assert np.max(np.abs(ours[0] - ref[0])) < 1e-9
    assert np.max(np.abs(ours[1] - ref[1])) < 1e-9


def test_forward_gcj02_to_bd09_matches_reference(china_points) -> None:
    lon, lat = china_points
    ours = coords.gcj02_to_bd09(lon, lat)
    ref = _reference_pairs(reference.gcj02_to_bd09, lon, lat)
    assert np.max(np.abs(ours[0] - ref[0])) < 1e-9
    assert np.max(np.abs(ours[1] - ref[1])) < 1e-9


def test_gcj02_inverse_round_trips_under_1cm(china_points) -> None:
    lon, lat = china_points
    glon, glat = _reference_pairs(reference.wgs84_to_gcj02, lon, lat)
    back = coords.gcj02_to_wgs84(glon, glat)
    assert np.max(_metres(lon, lat, back[0], back[1])) < 0.01


def test_bd09_inverse_round_trips_under_1cm(china_points) -> None:
    lon, lat = china_points
    glon, glat = _reference_pairs(reference.wgs84_to_gcj02, lon, lat)
    blon, blat = _reference_pairs(reference.gcj02_to_bd09, glon, glat)
    back = coords.bd09_to_wgs84(blon, blat)
    assert np.max(_metres(lon, lat, back[0], back[1])) < 0.01
    back_gcj = coords.bd09_to_gcj02(blon, blat)
    assert np.max(_metres(glon, glat, back_gcj[0], back_gcj[1])) < 0.01


def test_one_step_inverse_is_off_by_metres(china_points) -> None:
    """The closed-form inverse most libraries ship misses by metres: the iteration matters."""
    lon, lat = china_points
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    # one step: w = g - offset(g)
    flon, flat = coords.wgs84_to_gcj02(glon, glat)
    one_step = (glon - (flon - glon), glat - (flat - glat))
    errors = _metres(lon, lat, one_step[0], one_step[1])
    assert np.max(errors) > 1.0
    iterated = coords.gcj02_to_wgs84(glon, glat)
    assert np.max(_metres(lon, lat, iterated[0], iterated[1])) < 0.01


def test_reference_one_step_inverse_is_off_by_metres(china_points) -> None:
    lon, lat = china_points
    glon, glat = _reference_pairs(reference.wgs84_to_gcj02, lon, lat)
    ref_back = _reference_pairs(reference.gcj02_to_wgs84, glon, glat)
    assert np.max(_metres(lon, lat, ref_back[0], ref_back[1])) > 1.0


def test_gcj02_is_identity_outside_china() -> None:
    lon = np.array([2.35, -74.0, 139.69, 103.8])
    lat = np.array([48.85, 40.7, 35.69, 60.0])
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    assert glon.tolist() == lon.tolist()
    assert glat.tolist() == lat.tolist()
    wlon, wlat = coords.gcj02_to_wgs84(lon, lat)
    assert wlon.tolist() == lon.tolist()
    assert wlat.tolist() == lat.tolist()


def test_lanzhou_offset_is_hundreds_of_metres() -> None:
    glon, glat = coords.wgs84_to_gcj02(103.834, 36.061)
    shift = _metres(103.834, 36.061, float(glon), float(glat))
    assert 200.0 < float(shift) < 250.0


def test_to_wgs84_by_crs_name() -> None:
    lon, lat = 103.834, 36.061
    glon, glat = (float(v) for v in coords.wgs84_to_gcj02(lon, lat))
    blon, blat = (float(v) for v in coords.wgs84_to_bd09(lon, lat))
    for crs, given in (("gcj02", (glon, glat)), ("bd09", (blon, blat)), ("GCJ-02", (glon, glat))):
        back = coords.to_wgs84_one(*given, crs=crs)
        assert _metres(lon, lat, back[0], back[1]) < 0.01
    assert coords.to_wgs84_one(lon, lat) == (lon, lat)
    assert coords.to_wgs84_one(lon, lat, "cgcs2000") == (lon, lat)
    assert coords.to_wgs84_one(lon, lat, None) == (lon, lat)


def test_unknown_crs_names_the_allowed_values() -> None:
    with pytest.raises(InvalidInput) as err:
        coords.parse_crs("mercator")
    assert err.value.message == "unknown crs 'mercator': use one of wgs84, cgcs2000, gcj02, bd09"
    assert err.value.http_status == 422


@pytest.mark.parametrize(
    ("lon", "lat", "expected"),
    [
        ("103.8", 36.06, "lon is not a number (got '103.8')"),
        (103.8, None, "lat is not a number (got None)"),
        (True, 36.0, "lon is not a number (got True)"),
        (math.nan, 36.06, "lon is nan (NaN or infinite): not a position"),
        (103.8, math.inf, "lat is inf (NaN or infinite): not a position"),
        (0, 0, "(0, 0) is 'null island' in the Gulf of Guinea: probably a missing GPS fix"),
        (
            36.06,
            103.83,
            "lat=103.83 is out of range (-90..90) and lon=36.06 would be a valid latitude: "
            "the pair looks swapped (lat/lon?); send longitude first, then latitude",
        ),
        (
            -45.0,
            -120.0,
            "lat=-120.0 is out of range (-90..90) and lon=-45.0 would be a valid latitude: "
            "the pair looks swapped (lat/lon?); send longitude first, then latitude",
        ),
        (200.0, 36.0, "lon=200.0 is out of range (-180..180)"),
        (-180.5, 10.0, "lon=-180.5 is out of range (-180..180)"),
        (120.0, 95.0, "lat=95.0 is out of range (-90..90)"),
    ],
)
def test_bad_coordinates_are_explained(lon, lat, expected: str) -> None:
    assert coords.coordinate_problem(lon, lat) == expected
    with pytest.raises(InvalidInput) as err:
        coords.validate_lonlat(lon, lat)
    assert err.value.message == f"bad coordinate: {expected}"
    assert err.value.details["reason"] == expected


def test_good_coordinates_pass() -> None:
    assert coords.validate_lonlat(103.834, 36.061) == (103.834, 36.061)
    assert coords.validate_lonlat(np.float32(103.5), np.int64(36)) == (103.5, 36.0)
    assert coords.validate_lonlat(-180, 90) == (-180.0, 90.0)
    assert coords.coordinate_problem(0.0, 36.0) is None


def test_vectorised_problems_float_input() -> None:
    lon = np.array([103.8, np.nan, 0.0, 36.06, 200.0, 103.9])
    lat = np.array([36.0, 36.0, 0.0, 103.83, 36.0, 36.1])
    problems = coords.coordinate_problems(lon, lat)
    assert problems == [
        None,
        "lon is nan (NaN or infinite): not a position",
        "(0, 0) is 'null island' in the Gulf of Guinea: probably a missing GPS fix",
        coords.coordinate_problem(36.06, 103.83),
        "lon=200.0 is out of range (-180..180)",
        None,
    ]
    assert "looks swapped (lat/lon?)" in (problems[3] or "")


def test_vectorised_problems_mixed_input() -> None:
    lon = np.array([103.8, "x", None], dtype=object)
    lat = np.array([36.0, 36.0, 36.0], dtype=object)
    assert coords.coordinate_problems(lon, lat) == [
        None,
        "lon is not a number (got 'x')",
        "lon is not a number (got None)",
    ]
