"""Grid sets that span several files or GeoPackage layers (one layer per level)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from sqlalchemy.engine import Connection

from gis.grid_import import GRID_COLUMNS, current_grids
from gis.gridfiles import read_grid_file, write_grid_file
from gis.models import LEVELS


def read_grid_files(paths: list[Path], *, encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read every file (every layer of a GeoPackage) into one grid GeoDataFrame."""
    frames = []
    for path in paths:
        layers: list[str | None] = [None]
        if path.suffix.lower() == ".gpkg":
            layers = [str(name) for name, _ in pyogrio.list_layers(path)]
        for layer in layers:
            frames.append(read_grid_file(path, layer=layer, encoding=encoding))
    grids = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    return grids[[*GRID_COLUMNS, "geometry"]]


def export_grids(conn: Connection, out: Path, *, level: str | None = None,
                 at: dt.datetime | None = None, encoding: str = "UTF-8") -> int:
    """Write the current (or as-of) grids to ``out``; a GeoPackage gets one layer per level."""
    levels = (level,) if level else LEVELS
    grids = current_grids(conn, levels, at=at)
    if out.suffix.lower() == ".gpkg":
        if out.exists():
            out.unlink()
        for name in levels:
            write_grid_file(grids[grids["level"] == name], out, layer=name)
    else:
        write_grid_file(grids, out, encoding=encoding)
    return len(grids)
