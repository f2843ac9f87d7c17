"""Load the generated synthetic Lanzhou (fixtures/out) into the store."""

from __future__ import annotations

import csv
import datetime as dt
import json
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.events.csv_import import ImportCounts, import_csv
from gis.events.partitions import maintain_partitions
from gis.grid_import import CITY_COUNTS, GRID_COLUMNS, ImportResult, import_grid_set
from gis.grid_snapshot import load_snapshot
from gis.store import grid_counts
from gis.synth import make_fixtures

FIXTURE_VALID_FROM = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))


@dataclass(frozen=True)
class LoadResult:
    """What a fixture load did."""

    loaded: bool
    grids: ImportResult | None
    gridworkers: int
    events: ImportCounts | None = None


def read_fixture_grids(fixture_dir: Path) -> gpd.GeoDataFrame:
    """The three grid levels of the fixture as one GeoDataFrame."""
    frames = [
        gpd.read_file(fixture_dir / f"grids_{level}.geojson", engine="pyogrio")
        for level in ("large", "medium", "small")
    ]
    grids = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")
    grids["parent_code"] = grids["parent_code"].where(grids["parent_code"].notna(), None)
    return grids[[*GRID_COLUMNS, "geometry"]]


def load_fixture_events(conn: Connection, fixture_dir: Path) -> ImportCounts:
    """The sample events of events.csv, through the same ingest path as any CSV import."""
    snapshot = load_snapshot(conn)
    return import_csv(lambda: nullcontext(conn), lambda _rebuild: snapshot,
                      fixture_dir / "events.csv", progress=False)


def load_fixtures(conn: Connection, fixture_dir: Path, *, force: bool = False,
                  events: bool = True) -> LoadResult:
    """Load districts, grids, the gridworker roster and sample events unless grids are there."""
    if not force and any(grid_counts(conn).values()):
        return LoadResult(loaded=False, grids=None, gridworkers=0)
    with (fixture_dir / "districts.csv").open(encoding="utf-8", newline="") as handle:
        districts = list(csv.DictReader(handle))
    conn.execute(
        sa.text(
            """INSERT INTO district (code, name, centre)
               VALUES (:code, :name, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, centre = EXCLUDED.centre"""
        ),
        [{"code": d["code"], "name": d["name"], "lon": float(d["centre_lon"]),
          "lat": float(d["centre_lat"])} for d in districts],
    )
    result = import_grid_set(
        conn, read_fixture_grids(fixture_dir), author="fixtures",
        reason="synthetic Lanzhou", valid_from=FIXTURE_VALID_FROM, expected_counts=CITY_COUNTS,
    )
    with (fixture_dir / "gridworkers.csv").open(encoding="utf-8", newline="") as handle:
        workers = list(csv.DictReader(handle))
    conn.execute(
        sa.text(
            """INSERT INTO gridworker (worker_id, grid_code, name, phone, on_duty_since)
               VALUES (:worker_id, :grid_code, :name, :phone, CAST(:on_duty_since AS date))
               ON CONFLICT (worker_id) DO UPDATE SET grid_code = EXCLUDED.grid_code,
                 name = EXCLUDED.name, phone = EXCLUDED.phone"""
        ),
        [{k: w[k] for k in ("worker_id", "grid_code", "name", "phone", "on_duty_since")}
         for w in workers],
    )
    stored = load_fixture_events(conn, fixture_dir) if events else None
    if stored is not None:  # months before the migration's first partition wait in DEFAULT
        maintain_partitions(lambda: nullcontext(conn))
    return LoadResult(loaded=True, grids=result, gridworkers=len(workers), events=stored)


def ensure_fixture_files(fixture_dir: Path, seed: int, events: int) -> bool:
    """Generate the synthetic Lanzhou into ``fixture_dir`` unless it is there; True if generated."""
    manifest = fixture_dir / "manifest.json"
    if manifest.exists():
        known = json.loads(manifest.read_text(encoding="utf-8"))
        same = known.get("seed") == seed and known.get("events", {}).get("total") == events
        if same and all((fixture_dir / name).exists() for name in known.get("files", {})):
            return False

    make_fixtures(fixture_dir, seed=seed, events=events)
    return True
