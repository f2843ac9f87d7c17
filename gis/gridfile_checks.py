"""Checks of a grid table read from a file: every problem, each naming the feature it concerns."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

import geopandas
import numpy as np
import shapely

from gis.errors import FeatureProblem
from gis.grid_codes import (
    CODE_LENGTH,
    DISTRICT_CODE_LENGTH,
    KINDS,
    LEVELS,
    PARENT_LEVEL,
    code_problems,
    is_digits,
)

GRID_COLUMNS: tuple[str, ...] = (
    "code",
    "parent_code",
    "name",
    "level",
    "kind",
    "district_code",
    "district_name",
)
# parent_code may be empty (large grids); every other column needs a value on every feature.
_TEXT_COLUMNS = tuple(c for c in GRID_COLUMNS if c != "parent_code")

# GEOS writes the place of the fault as "Reason[x y]".
_REASON_AT = re.compile(r"^(?P<reason>[^\[]*)\[(?P<x>\S+) (?P<y>\S+)(?: \S+)?\]$")


Invalidity = tuple[str, tuple[float, float] | None]


def invalidity(geometries: Sequence[object] | np.ndarray) -> list[Invalidity | None]:
    """For each geometry, None when valid, else GEOS's reason and the (x, y) where it occurs."""
    reasons = shapely.is_valid_reason(np.asarray(geometries, dtype=object))
    found: list[Invalidity | None] = []
    for reason in reasons:
        if reason is None or reason == "Valid Geometry":
            found.append(None)
            continue
        match = _REASON_AT.match(str(reason))
        if match is None:
            found.append((str(reason), None))
            continue
        location = (float(match["x"]), float(match["y"]))
        found.append((match["reason"].strip(), location))
    return found


def feature_label(index: int, code: object) -> str:
    """How a problem names its feature: position in the file and, when it has one, its code."""
    if isinstance(code, str) and code:
        return f"feature {index} (code {code})"
    return f"feature {index}"


def check_grid_frame(
    gdf: geopandas.GeoDataFrame,
    *,
    level: str | None = None,
    known_parents: Iterable[str] | None = None,
) -> list[FeatureProblem]:
    """Every problem of a grid table (columns, values, codes, parents, geometries)."""
    problems: list[FeatureProblem] = []
    missing = [c for c in GRID_COLUMNS if c not in gdf.columns]
    if missing:
        present = ", ".join(str(c) for c in gdf.columns if c != gdf.geometry.name)
        problems.append(
            FeatureProblem(
                "file",
                f"missing column(s) {', '.join(missing)} (columns present: {present})",
            )
        )
    if level is not None and level not in LEVELS:
        problems.append(
            FeatureProblem("file", f"level {level!r} is not one of {', '.join(LEVELS)}")
        )
    records = _records(gdf)
    labels = [feature_label(i, r.get("code")) for i, r in enumerate(records)]
    for label, record in zip(labels, records, strict=True):
        problems.extend(FeatureProblem(label, p) for p in _attribute_problems(record, level))
    problems.extend(_duplicate_problems(records))
    problems.extend(_parent_problems(records, labels, known_parents))
    problems.extend(_geometry_problems(gdf.geometry.to_numpy(), labels))
    return problems


def _records(gdf: geopandas.GeoDataFrame) -> list[dict[str, object]]:
    columns = [c for c in GRID_COLUMNS if c in gdf.columns]
    frame = gdf[columns].astype(object)
    frame = frame.where(frame.notna(), None)
    return [dict(zip(columns, row, strict=True)) for row in frame.itertuples(index=False)]


def _attribute_problems(record: dict[str, object], level: str | None) -> list[str]:
    problems = [
        f"no value for {column}"
        for column in _TEXT_COLUMNS
        if column in record and (record[column] is None or record[column] == "")
    ]
    grid_level = record.get("level")
    if grid_level is None:
        return problems
    if level is not None and grid_level != level:
        problems.append(f"level is {grid_level!r} but this file holds {level} grids")
    if "code" in record and "parent_code" in record:
        problems.extend(code_problems(record["code"], grid_level, record["parent_code"]))
    elif grid_level not in LEVELS:
        problems.append(f"level {grid_level!r} is not one of {', '.join(LEVELS)}")
    kind = record.get("kind")
    if grid_level in KINDS and kind is not None and kind not in KINDS[str(grid_level)]:
        allowed = ", ".join(sorted(KINDS[str(grid_level)]))
        problems.append(f"kind {kind!r} is not one of {allowed} for a {grid_level} grid")
    district = record.get("district_code")
    if district is not None:
        code = record.get("code")
        if not is_digits(district, DISTRICT_CODE_LENGTH):
            problems.append(f"district_code {district!r} is not {DISTRICT_CODE_LENGTH} digits")
        elif isinstance(code, str) and not code.startswith(str(district)):
            problems.append(f"code {code} does not start with its district_code {district}")
    return problems


def _duplicate_problems(records: list[dict[str, object]]) -> list[FeatureProblem]:
    positions: dict[str, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        code = record.get("code")
        if isinstance(code, str) and code:
            positions[code].append(i)
    return [
        FeatureProblem(
            f"feature {where[0]} (code {code})",
            f"code {code} appears {len(where)} times (features {', '.join(map(str, where))})",
        )
        for code, where in positions.items()
        if len(where) > 1
    ]


def _parent_problems(
    records: list[dict[str, object]],
    labels: list[str],
    known_parents: Iterable[str] | None,
) -> list[FeatureProblem]:
    """Parents that exist neither in the file nor among `known_parents`.

    A one-level file (medium grids only, say) cannot name its parents itself: without
    `known_parents` such a file's parents are not checked, since nothing could be said of them.
    """
    # A parent present with a faulty level is reported once, as itself, not again by each child.
    in_file = {str(r["code"]) for r in records if isinstance(r.get("code"), str)}
    levels_in_file = {str(r.get("level")) for r in records}
    known = set(known_parents) if known_parents is not None else None
    problems: list[FeatureProblem] = []
    for label, record in zip(labels, records, strict=True):
        parent_level = PARENT_LEVEL.get(str(record.get("level")))
        parent = record.get("parent_code")
        if parent_level is None or not is_digits(parent, CODE_LENGTH[parent_level]):
            continue  # no parent to look for, or a malformed one already reported
        if parent in in_file or (known is not None and parent in known):
            continue
        if known is None and parent_level not in levels_in_file:
            continue
        problems.append(
            FeatureProblem(label, f"unknown parent {parent}: no {parent_level} grid has that code")
        )
    return problems


def _geometry_problems(geometries: np.ndarray, labels: list[str]) -> list[FeatureProblem]:
    problems: list[FeatureProblem] = []
    missing = shapely.is_missing(geometries)
    polygonal = np.isin(shapely.get_type_id(geometries), [3, 6])  # Polygon, MultiPolygon
    empty = ~missing & shapely.is_empty(geometries)
    three_d = ~missing & ~empty & shapely.has_z(geometries)
    invalid = invalidity(geometries)
    bounds = shapely.bounds(geometries)  # NaN for missing or empty geometries
    for i, label in enumerate(labels):
        if missing[i]:
            problems.append(FeatureProblem(label, "missing geometry"))
            continue
        if not polygonal[i]:
            kind = shapely.get_type_id(geometries[i])
            name = geometries[i].geom_type if kind >= 0 else "unknown"
            problems.append(FeatureProblem(label, f"geometry is a {name}, not a (multi)polygon"))
        if empty[i]:
            problems.append(FeatureProblem(label, "empty geometry"))
            continue
        if three_d[i]:
            problems.append(
                FeatureProblem(label, "geometry has Z coordinates; grids are 2D (lon, lat)")
            )
        range_problem = _range_problem(bounds[i])
        if range_problem:
            problems.append(FeatureProblem(label, range_problem))
            continue
        fault = invalid[i]
        if fault is not None:
            reason, location = fault
            where = f" at ({location[0]:.7f}, {location[1]:.7f})" if location else ""
            problems.append(FeatureProblem(label, f"invalid geometry: {reason}{where}"))
    return problems


def _range_problem(bounds: np.ndarray) -> str | None:
    """Coordinates outside lon/lat range; says so when they look like (lat, lon) pairs."""
    min_x, min_y, max_x, max_y = (float(v) for v in bounds)
    if min_x >= -180 and max_x <= 180 and min_y >= -90 and max_y <= 90:
        return None
    if min_y >= -180 and max_y <= 180 and min_x >= -90 and max_x <= 90:
        return (f"coordinates look swapped: latitude reaches {max_y:.4f}; write each position "
                "as (lon, lat), longitude first")
    return (f"coordinates out of range for EPSG:4326 (x {min_x:.4f}..{max_x:.4f}, "
            f"y {min_y:.4f}..{max_y:.4f}); grids are given in lon/lat degrees")
