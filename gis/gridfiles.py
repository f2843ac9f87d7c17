"""Reading and writing grid files (GeoPackage, GeoJSON, Shapefile) through pyogrio.

A file read is checked whole: every problem is collected, each naming its feature, and the file is
refused with all of them at once, so a planner fixes a file in one pass rather than one error a try.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import geopandas
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from pyogrio.errors import DataLayerError, DataSourceError

from gis.errors import FeatureProblem, GridFileError, InvalidInput
from gis.gridfile_checks import GRID_COLUMNS, check_grid_frame

STORAGE_CRS = "EPSG:4326"
DRIVERS: dict[str, str] = {
    ".gpkg": "GPKG",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".shp": "ESRI Shapefile",
}
# Shapefile (dBASE) field names hold at most 10 characters.
SHAPEFILE_NAMES: dict[str, str] = {
    "parent_code": "parent_cod",
    "district_code": "district_c",
    "district_name": "district_n",
}
# Text in shapefiles from Chinese desktop GIS without a .cpg is usually in the ANSI code page.
FALLBACK_ENCODING = "GBK"


def read_grid_file(
    path: Path,
    *,
    layer: str | None = None,
    encoding: str | None = None,
    level: str | None = None,
    known_parents: Iterable[str] | None = None,
) -> geopandas.GeoDataFrame:
    """Read and check a grid file; EPSG:4326 MultiPolygons, exterior rings counter-clockwise."""
    path = Path(path)
    source = str(path)
    if layer is None and level is not None and path.suffix.lower() == ".gpkg":
        layer = _layer_named(path, level)
    gdf = _read_frame(path, layer=layer, encoding=encoding, source=source)
    gdf = _to_storage_crs(gdf, source)
    gdf = _normalise_columns(gdf, level)
    problems = check_grid_frame(gdf, level=level, known_parents=known_parents)
    if problems:
        raise GridFileError(problems, source=source)
    # Shapefiles store exteriors clockwise; hold every ring the RFC 7946 way (exterior
    # counter-clockwise) so the same grid reads the same from any format.
    geometries = shapely.orient_polygons(as_multipolygons(gdf.geometry.to_numpy()))
    gdf = gdf.set_geometry(geometries, crs=STORAGE_CRS)
    extra = [c for c in gdf.columns if c not in GRID_COLUMNS and c != gdf.geometry.name]
    return gdf[[*GRID_COLUMNS, *extra, gdf.geometry.name]].reset_index(drop=True)


def write_grid_file(
    gdf: geopandas.GeoDataFrame,
    path: Path,
    *,
    driver: str | None = None,
    encoding: str = "UTF-8",
    layer: str | None = None,
) -> None:
    """Write grids to one layer of a GeoPackage, GeoJSON or Shapefile (chosen by extension)."""
    path = Path(path)
    driver = driver or DRIVERS.get(path.suffix.lower())
    if driver is None:
        known = ", ".join(sorted(DRIVERS))
        raise InvalidInput(f"{path}: cannot tell the file format; use one of {known}")
    if gdf.crs is None:
        raise InvalidInput(f"{path}: the grids have no CRS; set one before writing")
    is_shapefile = driver == "ESRI Shapefile"
    if not is_shapefile and encoding.replace("-", "").upper() != "UTF8":
        raise InvalidInput(
            f"{path}: {driver} text is always UTF-8; only shapefiles take {encoding}"
        )
    geometries = shapely.orient_polygons(as_multipolygons(gdf.geometry.to_numpy()))
    out = gdf.set_geometry(geometries, crs=gdf.crs)
    if is_shapefile:
        out = out.rename(columns=SHAPEFILE_NAMES)
    pyogrio.write_dataframe(
        out.reset_index(drop=True),
        path,
        driver=driver,
        layer=layer,
        encoding=encoding if is_shapefile else None,
        geometry_type="MultiPolygon",
    )


def _layer_named(path: Path, name: str) -> str | None:
    """The GeoPackage layer called `name`, if any (layers large, medium, small in one file)."""
    try:
        names = {str(row[0]) for row in pyogrio.list_layers(path)}
    except (DataSourceError, OSError):
        return None
    return name if name in names else None


def _read_frame(
    path: Path, *, layer: str | None, encoding: str | None, source: str
) -> geopandas.GeoDataFrame:
    """Read with pyogrio, choosing the text encoding of a shapefile that does not declare one."""
    tries: list[str | None] = [encoding]
    if encoding is None and path.suffix.lower() == ".shp" and not _has_cpg(path):
        # Without a .cpg GDAL assumes ISO-8859-1, which turns Chinese text into mojibake silently;
        # UTF-8 fails loudly on GBK bytes, so it is safe to try first.
        tries = ["UTF-8", FALLBACK_ENCODING]
    last_error: Exception | None = None
    for attempt in tries:
        try:
            return geopandas.read_file(path, engine="pyogrio", layer=layer, encoding=attempt)
        except UnicodeDecodeError as error:
            last_error = error
        except (DataSourceError, DataLayerError, OSError) as error:
            problem = FeatureProblem("file", f"cannot be read: {error}")
            raise GridFileError([problem], source=source) from error
    raise GridFileError(
        [FeatureProblem("file", f"text is neither {' nor '.join(map(str, tries))}: {last_error}")],
        source=source,
    )


def _has_cpg(path: Path) -> bool:
    return any(path.with_suffix(suffix).exists() for suffix in (".cpg", ".CPG"))


def _to_storage_crs(gdf: geopandas.GeoDataFrame, source: str) -> geopandas.GeoDataFrame:
    """Refuse a file without CRS; bring any CRS pyproj can transform to EPSG:4326."""
    if gdf.crs is None:
        raise GridFileError(
            [FeatureProblem("file", "has no CRS (a shapefile needs its .prj); cannot place it")],
            source=source,
        )
    storage = pyproj.CRS(STORAGE_CRS)
    if gdf.crs.equals(storage, ignore_axis_order=True):
        # OGC:CRS84 (GeoJSON) is EPSG:4326 in lon/lat order, which is how geometries are held.
        return gdf.set_crs(STORAGE_CRS, allow_override=True)
    try:
        moved = gdf.to_crs(STORAGE_CRS)
    except pyproj.exceptions.ProjError as error:
        raise GridFileError(
            [FeatureProblem("file", f"its CRS {gdf.crs.name!r} cannot be transformed: {error}")],
            source=source,
        ) from error
    coordinates = shapely.get_coordinates(moved.geometry.to_numpy())
    if not np.isfinite(coordinates).all():
        raise GridFileError(
            [FeatureProblem("file", f"its CRS {gdf.crs.name!r} does not reach EPSG:4326 here")],
            source=source,
        )
    return moved


def _normalise_columns(gdf: geopandas.GeoDataFrame, level: str | None) -> geopandas.GeoDataFrame:
    """Full column names, codes as text, empty parent codes as None, level filled if implied."""
    by_lower = {str(c).lower(): c for c in gdf.columns if c != gdf.geometry.name}
    short_to_full = {short: full for full, short in SHAPEFILE_NAMES.items()}
    renames = {}
    for lower, column in by_lower.items():
        full = short_to_full.get(lower, lower)
        if full in GRID_COLUMNS and full not in gdf.columns:
            renames[column] = full
    gdf = gdf.rename(columns=renames)
    if level is not None and "level" not in gdf.columns:
        gdf["level"] = level
    for column in ("code", "parent_code", "district_code"):
        if column in gdf.columns:
            gdf[column] = _as_code_text(gdf[column])
    if "parent_code" in gdf.columns:
        parent = gdf["parent_code"].astype(object)
        gdf["parent_code"] = parent.where(parent.notna() & (parent != ""), None)
    return gdf


def _as_code_text(values: pd.Series) -> pd.Series:
    """Codes stored as numbers (a habit of spreadsheets and dBASE) become digit strings."""
    if pd.api.types.is_integer_dtype(values):
        return values.astype("int64").astype(str).astype(object)
    if pd.api.types.is_float_dtype(values):
        whole = values.notna() & (values == values.round())
        text = values.astype(object)
        text[whole] = values[whole].astype("int64").astype(str)
        return text.where(values.notna(), None)
    return values.astype(object)


def as_multipolygons(geometries: np.ndarray) -> np.ndarray:
    """Polygons become one-part MultiPolygons so that a layer has a single geometry type."""
    single = shapely.get_type_id(geometries) == 3
    out = geometries.copy()
    if single.any():
        out[single] = shapely.multipolygons(geometries[single].reshape(-1, 1))
    return out
