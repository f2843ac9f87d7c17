"""Grid files: round trips in every format, CRS transforms, bad files refused feature by feature."""

from __future__ import annotations

from pathlib import Path

import geopandas
import numpy as np
import pyogrio
import pytest
import shapely
from grid_shapes import (
    BOWTIE,
    BOWTIE_CROSSING,
    EMPTY,
    LINE,
    MULTIPART,
    SQUARE,
    WITH_HOLE,
    Z_POLYGON,
    lattice_hierarchy,
)
from shapely.geometry import MultiPolygon
from shapely.testing import assert_geometries_equal

from gis.errors import GridFileError, InvalidInput
from gis.gridfiles import read_grid_file, write_grid_file


@pytest.fixture(scope="module")
def grids() -> geopandas.GeoDataFrame:
    """2 large, 4 medium, 16 small grids with 16 vertices each, Chinese names."""
    gdf = lattice_hierarchy(units=4, unit=0.0025)
    gdf.loc[gdf["level"] == "small", "kind"] = ["urban"] * 8 + ["rural"] * 6 + ["dedicated"] * 2
    return gdf


def assert_same_grids(read: geopandas.GeoDataFrame, expected: geopandas.GeoDataFrame) -> None:
    assert read.crs is not None and read.crs.to_epsg() == 4326
    for column in (
        "code",
        "parent_code",
        "name",
        "level",
        "kind",
        "district_code",
        "district_name",
    ):
        assert list(read[column]) == list(expected[column]), column
    assert set(shapely.get_type_id(read.geometry.to_numpy())) == {6}  # all MultiPolygon
    assert_geometries_equal(read.geometry.to_numpy(), expected.geometry.to_numpy(), tolerance=1e-9)


def write_raw(gdf: geopandas.GeoDataFrame, path: Path) -> Path:
    """Write as a careless tool would: whatever geometries, no normalising."""
    pyogrio.write_dataframe(gdf, path, geometry_type="Unknown")
    return path


def problems_of(path: Path, **kwargs: object) -> list[str]:
    with pytest.raises(GridFileError) as caught:
        read_grid_file(path, **kwargs)  # type: ignore[arg-type]
    assert caught.value.source == str(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("name", ["grids.gpkg", "grids.geojson", "grids.shp"])
def test_round_trip(grids: geopandas.GeoDataFrame, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_grid_file(grids, path)
    assert_same_grids(read_grid_file(path), grids)


def test_shapefile_keeps_full_column_names(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "grids.shp"
    write_grid_file(grids, path)
    assert pyogrio.read_info(path)["fields"].tolist() == [
        "code",
        "parent_cod",
        "name",
        "level",
        "kind",
        "district_c",
        "district_n",
    ]
    assert path.with_suffix(".cpg").read_text() == "UTF-8"
    assert list(read_grid_file(path).columns[:7]) == [
        "code",
        "parent_code",
        "name",
        "level",
        "kind",
        "district_code",
        "district_name",
    ]


def test_gbk_shapefile_with_cpg(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "grids.shp"
    write_grid_file(grids, path, encoding="GBK")
    assert path.with_suffix(".cpg").read_text() == "GBK"
    assert "城关区".encode("gbk") in path.with_suffix(".dbf").read_bytes()
    assert_same_grids(read_grid_file(path), grids)


def test_gbk_shapefile_without_cpg(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    """As from a Chinese desktop GIS: GBK text, no .cpg; UTF-8 fails, GBK is tried next."""
    path = tmp_path / "grids.shp"
    write_grid_file(grids, path, encoding="GBK")
    path.with_suffix(".cpg").unlink()
    assert_same_grids(read_grid_file(path), grids)


def test_utf8_shapefile_without_cpg(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "grids.shp"
    write_grid_file(grids, path)
    path.with_suffix(".cpg").unlink()
    assert_same_grids(read_grid_file(path), grids)


def test_caller_encoding_wins(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "grids.shp"
    write_grid_file(grids, path, encoding="GBK")
    path.with_suffix(".cpg").write_text("UTF-8")  # a wrong .cpg
    assert_same_grids(read_grid_file(path, encoding="GBK"), grids)


def test_levels_as_layers_of_one_geopackage(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "grids.gpkg"
    for level in ("large", "medium", "small"):
        write_grid_file(grids[grids["level"] == level], path, layer=level)
    assert [str(name) for name, _ in pyogrio.list_layers(path)] == ["large", "medium", "small"]
    large = read_grid_file(path, level="large")
    medium = read_grid_file(path, level="medium", known_parents=set(large["code"]))
    small = read_grid_file(path, layer="small", known_parents=set(medium["code"]))
    assert (len(large), len(medium), len(small)) == (2, 4, 16)
    assert_same_grids(small, grids[grids["level"] == "small"].reset_index(drop=True))


def test_level_argument_fills_a_missing_level_column(
    grids: geopandas.GeoDataFrame, tmp_path: Path
) -> None:
    small = grids[grids["level"] == "small"].drop(columns="level")
    path = write_raw(small, tmp_path / "small.gpkg")
    read = read_grid_file(path, level="small")
    assert list(read["level"]) == ["small"] * 16


@pytest.mark.parametrize("epsg", [4547, 3857, 4490])
def test_other_crs_is_transformed(grids: geopandas.GeoDataFrame, tmp_path: Path, epsg: int) -> None:
    path = tmp_path / f"grids_{epsg}.gpkg"
    write_grid_file(grids.to_crs(epsg), path)
    assert pyogrio.read_info(path)["crs"] == f"EPSG:{epsg}"
    read = read_grid_file(path)
    assert read.crs.to_epsg() == 4326
    assert_geometries_equal(read.geometry.to_numpy(), grids.geometry.to_numpy(), tolerance=1e-7)


@pytest.mark.parametrize("shape", [SQUARE, WITH_HOLE, MULTIPART], ids=["square", "hole", "multi"])
def test_canonical_polygons_are_accepted(
    grids: geopandas.GeoDataFrame, tmp_path: Path, shape: shapely.Geometry
) -> None:
    one = grids[grids["level"] == "large"].iloc[:1].copy()
    one["geometry"] = [shape]
    read = read_grid_file(write_raw(one, tmp_path / "one.gpkg"))
    assert read.geometry.iloc[0].geom_type == "MultiPolygon"
    assert_geometries_equal(read.geometry.iloc[0], shapely.multipolygons(shapely.get_parts(shape)))


def test_codes_stored_as_numbers_become_text(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    large = grids[grids["level"] == "large"].copy()
    large["code"] = large["code"].astype("int64")
    large["district_code"] = large["district_code"].astype("int64")
    read = read_grid_file(write_raw(large, tmp_path / "numbers.gpkg"))
    assert list(read["code"]) == ["620102001", "620102002"]
    assert list(read["district_code"]) == ["620102", "620102"]


def test_missing_column(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = write_raw(grids.drop(columns=["kind", "district_name"]), tmp_path / "bad.gpkg")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith("file: missing column(s) kind, district_name (columns present: ")


def test_wrong_level(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    bad = grids.copy()
    bad.loc[3, "level"] = "middle"
    bad.loc[7, "level"] = "medium"  # a small grid's 15-digit code under a medium level
    path = write_raw(bad, tmp_path / "bad.gpkg")
    assert problems_of(path) == [
        "feature 3 (code 620102001002): level 'middle' is not one of large, medium, small",
        "feature 7 (code 620102001001002): code '620102001001002' is not 12 digits,"
        " as a medium grid's code must be",
        "feature 7 (code 620102001001002): parent_code '620102001001' is not 9 digits,"
        " as a large grid's code must be",
    ]


def test_level_of_a_one_level_file(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = write_raw(grids[grids["level"] != "medium"], tmp_path / "bad.gpkg")
    problems = problems_of(path, level="small")
    assert problems == [
        "feature 0 (code 620102001): level is 'large' but this file holds small grids",
        "feature 1 (code 620102002): level is 'large' but this file holds small grids",
    ]


def test_unknown_parent(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    bad = grids.copy()
    bad.loc[10, "parent_code"] = "620102001009"
    bad.loc[10, "code"] = "620102001009001"
    path = write_raw(bad, tmp_path / "bad.gpkg")
    assert problems_of(path) == [
        "feature 10 (code 620102001009001): unknown parent 620102001009:"
        " no medium grid has that code",
    ]


def test_parents_of_a_one_level_file_checked_against_known_parents(
    grids: geopandas.GeoDataFrame, tmp_path: Path
) -> None:
    path = write_raw(grids[grids["level"] == "medium"], tmp_path / "medium.gpkg")
    assert len(read_grid_file(path)) == 4  # nothing to check the parents against
    assert problems_of(path, known_parents={"620102001"}) == [
        f"feature {i} (code 62010200200{i - 1}): unknown parent 620102002:"
        " no large grid has that code"
        for i in (2, 3)
    ]


def test_code_not_starting_with_parent_and_duplicates(
    grids: geopandas.GeoDataFrame, tmp_path: Path
) -> None:
    bad = grids.copy()
    bad.loc[6, "code"] = "620102002001001"  # feature 14's code; its parent is 620102001001
    bad.loc[9, "code"] = "62010200100100A"
    path = write_raw(bad, tmp_path / "bad.gpkg")
    assert problems_of(path) == [
        "feature 6 (code 620102002001001): code 620102002001001 does not start with its parent's"
        " code 620102001001",
        "feature 9 (code 62010200100100A): code '62010200100100A' is not 15 digits,"
        " as a small grid's code must be",
        "feature 6 (code 620102002001001): code 620102002001001 appears 2 times (features 6, 14)",
    ]


def test_bad_geometries_are_each_named(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    bad = grids.copy()
    bad["geometry"] = list(bad.geometry)
    bad.loc[6, "geometry"] = BOWTIE
    bad.loc[7, "geometry"] = EMPTY
    bad.loc[8, "geometry"] = Z_POLYGON
    bad.loc[9, "geometry"] = LINE
    bad.loc[10, "geometry"] = None
    bad = bad.set_geometry("geometry", crs=4326)
    path = write_raw(bad, tmp_path / "bad.gpkg")
    x, y = BOWTIE_CROSSING
    assert problems_of(path) == [
        "feature 6 (code 620102001001001): invalid geometry:"
        f" Self-intersection at ({x:.7f}, {y:.7f})",
        "feature 7 (code 620102001001002): empty geometry",
        "feature 8 (code 620102001001003): geometry has Z coordinates; grids are 2D (lon, lat)",
        "feature 9 (code 620102001001004): geometry is a LineString, not a (multi)polygon",
        "feature 10 (code 620102001002001): missing geometry",
    ]


def test_no_crs(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    path = tmp_path / "grids.shp"
    write_grid_file(grids, path)
    path.with_suffix(".prj").unlink()
    assert problems_of(path) == ["file: has no CRS (a shapefile needs its .prj); cannot place it"]


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "grids.gpkg"
    path.write_text("not a geopackage")
    problems = problems_of(path)
    assert len(problems) == 1 and problems[0].startswith("file: cannot be read: ")


def test_error_message_lists_problems(grids: geopandas.GeoDataFrame, tmp_path: Path) -> None:
    bad = grids.copy()
    bad.loc[7, "geometry"] = EMPTY
    path = write_raw(bad, tmp_path / "bad.gpkg")
    with pytest.raises(GridFileError) as caught:
        read_grid_file(path)
    assert caught.value.message == (
        f"{path}: 1 problem(s): feature 7 (code 620102001001002): empty geometry"
    )
    assert caught.value.http_status == 422
    assert caught.value.to_dict()["details"] == [
        {"feature": "feature 7 (code 620102001001002)", "problem": "empty geometry"}
    ]


def test_write_refuses_unknown_format_and_gbk_geojson(
    grids: geopandas.GeoDataFrame, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="cannot tell the file format"):
        write_grid_file(grids, tmp_path / "grids.kml")
    with pytest.raises(InvalidInput, match="only shapefiles take GBK"):
        write_grid_file(grids, tmp_path / "grids.geojson", encoding="GBK")
    with pytest.raises(InvalidInput, match="no CRS"):
        write_grid_file(grids.set_crs(None, allow_override=True), tmp_path / "grids.gpkg")


def test_written_geometries_are_multipolygons(
    grids: geopandas.GeoDataFrame, tmp_path: Path
) -> None:
    single = grids.copy()
    single["geometry"] = [shapely.get_parts(g)[0] for g in grids.geometry]
    path = tmp_path / "grids.geojson"
    write_grid_file(single, path)
    assert pyogrio.read_info(path)["geometry_type"] == "MultiPolygon"
    assert np.all(shapely.get_type_id(read_grid_file(path).geometry.to_numpy()) == 6)
    assert isinstance(read_grid_file(path).geometry.iloc[0], MultiPolygon)


def test_canonical_shapes_are_what_they_say() -> None:
    from grid_shapes import POINT_ON_EDGE, POINT_ON_VERTEX

    assert shapely.is_valid(np.array([SQUARE, WITH_HOLE, MULTIPART], dtype=object)).all()
    assert shapely.is_valid_reason(BOWTIE) == "Self-intersection[103.805 36.055]"
    assert EMPTY.is_empty and Z_POLYGON.has_z and LINE.geom_type == "LineString"
    for point in (POINT_ON_EDGE, POINT_ON_VERTEX):
        assert SQUARE.covers(point) and not SQUARE.contains(point)
    assert POINT_ON_VERTEX.coords[0] in list(SQUARE.exterior.coords)
