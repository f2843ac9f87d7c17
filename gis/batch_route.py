"""Route a CSV of any size to small grids, streaming in chunks; unreadable rows are rejected."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from gis.coords import parse_crs
from gis.errors import InvalidInput
from gis.grid_snapshot import GridSnapshot
from gis.position_lookup import locate_positions

ADDED_COLUMNS = ["small_code", "medium_code", "large_code", "district_code", "grid_version",
                 "route_status", "nearest_code", "nearest_m"]


@dataclass
class RouteCounts:
    """What a routing run did."""

    read: int = 0
    located: int = 0
    outside: int = 0
    rejected: int = 0

    def summary(self) -> str:
        """One line for people."""
        return (f"{self.read} rows read: {self.located} located, {self.outside} outside every "
                f"grid, {self.rejected} rejected")


def _chunks(path: Path, chunk_rows: int, encoding: str) -> Iterator[pd.DataFrame]:
    reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_rows,
                         encoding=encoding)
    yield from reader


def route_csv(
    snapshot: GridSnapshot,
    source: Path,
    out: Path,
    rejects: Path,
    *,
    lon_column: str = "lon",
    lat_column: str = "lat",
    crs: str = "wgs84",
    crs_column: str | None = None,
    chunk_rows: int = 200_000,
    encoding: str = "utf-8",
    progress: bool = True,
) -> RouteCounts:
    """Write ``out`` (input columns + grid columns) and ``rejects`` (row, reason) for ``source``."""
    default_crs = parse_crs(crs)
    header = pd.read_csv(source, dtype=str, nrows=0, encoding=encoding).columns.tolist()
    for name in (lon_column, lat_column, crs_column):
        if name is not None and name not in header:
            raise InvalidInput(f"{source}: no column {name!r} (columns: {', '.join(header)})")
    counts = RouteCounts()
    bar = tqdm(unit=" rows", unit_scale=True, disable=not progress, desc=f"routing {source.name}")
    with out.open("w", encoding="utf-8", newline="") as out_file, \
            rejects.open("w", encoding="utf-8", newline="") as reject_file:
        writer = csv.writer(out_file)
        writer.writerow([*header, *ADDED_COLUMNS])
        reject_writer = csv.writer(reject_file)
        reject_writer.writerow(["row", *header, "reason"])
        for chunk in _chunks(source, chunk_rows, encoding):
            _route_chunk(snapshot, chunk, counts, writer, reject_writer, lon_column, lat_column,
                         default_crs, crs_column)
            bar.update(len(chunk))
    bar.close()
    return counts


def _numbers(values: pd.Series) -> np.ndarray:
    parsed = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    # Keep the text where it is not a number, so the reason says what was there.
    out = values.to_numpy(dtype=object).copy()
    ok = ~np.isnan(parsed) | values.str.strip().str.lower().isin(["nan"])
    out[ok] = parsed[ok]
    return out


def _route_chunk(snapshot: GridSnapshot, chunk: pd.DataFrame, counts: RouteCounts,
                 writer: Any, reject_writer: Any, lon_column: str,
                 lat_column: str, default_crs: str, crs_column: str | None) -> None:
    first_row = counts.read + 1
    counts.read += len(chunk)
    lon = _numbers(chunk[lon_column])
    lat = _numbers(chunk[lat_column])
    crs_values = (chunk[crs_column].str.strip().str.lower().replace("", default_crs)
                  if crs_column else pd.Series(default_crs, index=chunk.index))
    rows = np.full(len(chunk), -1, dtype=np.int64)
    problems: list[str | None] = [None] * len(chunk)
    wgs = np.full((len(chunk), 2), np.nan)
    for crs_name, positions in crs_values.groupby(crs_values).indices.items():
        try:
            parse_crs(str(crs_name))
        except InvalidInput as exc:
            for i in positions:
                problems[i] = exc.message
            continue
        found = locate_positions(snapshot, lon[positions], lat[positions], str(crs_name))
        rows[positions] = found.rows
        wgs[positions, 0], wgs[positions, 1] = found.wgs84_lon, found.wgs84_lat
        for j, i in enumerate(positions):
            problems[i] = found.problems[j]
    codes = snapshot.index.codes
    records = chunk.to_numpy(dtype=object)
    for i, record in enumerate(records):
        if problems[i] is not None:
            counts.rejected += 1
            reject_writer.writerow([first_row + i, *record, problems[i]])
            continue
        row = int(rows[i])
        if row >= 0:
            code = codes[row]
            counts.located += 1
            writer.writerow([*record, code, code[:12], code[:9], code[:6], snapshot.version,
                             "ok", "", ""])
        else:
            nearest, metres = snapshot.index.nearest(wgs[i, 0], wgs[i, 1])
            counts.outside += 1
            writer.writerow([*record, "", "", "", "", snapshot.version, "outside",
                             codes[nearest], f"{metres:.1f}"])
