"""The in-process router agrees exactly with PostGIS ST_Covers (lowest code on ties)."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from gis.grid_import import current_grids, import_grid_set
from gis.grid_snapshot import load_snapshot
from gis.gridfiles import as_multipolygons
from gis.pg_locate import owners_by_postgis
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine


@pytest.fixture(scope="module")
def snapshot(engine: sa.Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return load_snapshot(conn)


def _multi(geometry: shapely.Geometry) -> shapely.Geometry:
    return as_multipolygons(np.array([geometry], dtype=object))[0]


def _event_like_points(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    urban = int(n * 0.8)
    lon = np.concatenate([rng.uniform(103.55, 104.0, urban), rng.uniform(102.5, 104.7, n - urban)])
    lat = np.concatenate([rng.uniform(36.0, 36.15, urban), rng.uniform(35.5, 37.2, n - urban)])
    return lon, lat


def test_100k_random_points_agree_with_postgis(engine: sa.Engine, snapshot) -> None:  # type: ignore[no-untyped-def]
    lon, lat = _event_like_points(100_000, seed=11)
    ours = [snapshot.index.codes[r] if r >= 0 else None for r in snapshot.index.locate(lon, lat)]
    with engine.connect() as conn:
        theirs = owners_by_postgis(conn, lon, lat)
    disagreements = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    assert disagreements == []
    assert sum(o is None for o in ours) == sum(t is None for t in theirs)


def test_probes_agree_with_postgis_and_with_their_expectations(
    engine: sa.Engine, snapshot, fixture_dir: Path  # type: ignore[no-untyped-def]
) -> None:
    with (fixture_dir / "probes.csv").open(encoding="utf-8", newline="") as handle:
        probes = list(csv.DictReader(handle))
    lon = np.array([float(p["lon"]) for p in probes])
    lat = np.array([float(p["lat"]) for p in probes])
    expected = [p["expected_code"] or None for p in probes]
    with engine.connect() as conn:
        assert owners_by_postgis(conn, lon, lat) == expected
    ours = [snapshot.index.codes[r] if r >= 0 else None for r in snapshot.index.locate(lon, lat)]
    assert ours == expected
    on_edges = [p for p in probes if p["kind"] in ("edge", "vertex")]
    assert len(on_edges) >= 100
    for probe in on_edges:
        covering = probe["covering_codes"].split(";")
        assert len(covering) >= 2
        rows = snapshot.index.covering(float(probe["lon"]), float(probe["lat"]))
        assert [snapshot.index.codes[r] for r in rows] == sorted(covering)


def test_every_vertex_of_a_medium_grid_agrees_with_postgis(engine: sa.Engine, snapshot) -> None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        mediums = current_grids(conn, ("medium",))
    coords = shapely.get_coordinates(mediums.geometry.iloc[:40].values)
    lon, lat = coords[:, 0], coords[:, 1]
    ours = [snapshot.index.codes[r] if r >= 0 else None for r in snapshot.index.locate(lon, lat)]
    with engine.connect() as conn:
        assert ours == owners_by_postgis(conn, lon, lat)


def test_index_rebuilds_after_a_boundary_change(
    city_database: Database
) -> None:
    engine = create_engine(city_database)
    with engine.begin() as conn:
        small = current_grids(conn, ("small",))
    dedicated = small[small["kind"] == "dedicated"].iloc[0]
    host = small[(small["parent_code"] == dedicated["parent_code"])
                 & small.geometry.touches(dedicated.geometry)
                 & (small["code"] != dedicated["code"])].iloc[0]
    point = dedicated.geometry.representative_point()
    settings = Settings(db=DatabaseSettings(url=city_database.url))
    with TestClient(create_app(settings)) as client:
        before = client.get("/api/v1/locate", params={"lon": point.x, "lat": point.y}).json()
        assert before["small"]["code"] == dedicated["code"] and before["grid_version"] == 1
        # Retire the dedicated grid: its host grows over it (the carve-out hole disappears).
        merged = small[small["code"] != dedicated["code"]].copy()
        grown = _multi(shapely.union(host.geometry, dedicated.geometry))
        merged.loc[merged["code"] == host["code"], "geometry"] = grown
        with engine.begin() as conn:
            result = import_grid_set(conn, merged, author="test", reason="merge carve-out")
        assert result.retired == [dedicated["code"]] and result.changed == [host["code"]]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            after = client.get("/api/v1/locate", params={"lon": point.x, "lat": point.y}).json()
            if after["grid_version"] == 2:
                break
            time.sleep(0.2)
        assert after["grid_version"] == 2
        assert after["small"]["code"] == host["code"]
    engine.dispose()
