"""Import a grid set into the store as a new grid version, all or nothing; export one back."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import InvalidInput
from gis.models import LEVELS
from gis.topology import check_topology

GRID_COLUMNS = ["code", "parent_code", "name", "level", "kind", "district_code", "district_name"]
CITY_COUNTS = {"large": 110, "medium": 1086, "small": 7507}


class TopologyRejected(InvalidInput):
    """A grid set whose topology is unsound; nothing was written."""


@dataclass
class ImportResult:
    """What an import changed, by code."""

    version: int | None
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> str:
        """One line for people and logs."""
        return (f"version {self.version}: {len(self.added)} added, {len(self.changed)} changed, "
                f"{len(self.retired)} retired, {self.unchanged} unchanged")


def current_grids(conn: Connection, levels: tuple[str, ...] = LEVELS,
                  at: dt.datetime | None = None) -> gpd.GeoDataFrame:
    """The grids in force now (or at ``at``) as a GeoDataFrame in EPSG:4326, sorted by code."""
    when = "g.version_high IS NULL" if at is None else (
        "g.valid_from <= :at AND (g.valid_to IS NULL OR g.valid_to > :at)")
    query = sa.text(
        f"""SELECT g.code, g.parent_code, g.name, g.level, g.kind, g.district_code,
                   d.name AS district_name, ST_AsBinary(g.geom) AS wkb
            FROM grid g JOIN district d ON d.code = g.district_code
            WHERE {when} AND g.level = ANY(:levels) ORDER BY g.code"""
    )
    rows = conn.execute(query, {"levels": list(levels), "at": at}).all()
    frame = pd.DataFrame([r[:-1] for r in rows], columns=GRID_COLUMNS)
    geometry: Any = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def _same(old: pd.Series, new: pd.Series) -> bool:
    for column in ("parent_code", "name", "kind", "district_code"):
        if (old[column] or None) != (new[column] or None):
            return False
    return bool(shapely.equals_exact(old.geometry, new.geometry, tolerance=0.0))


def import_grid_set(
    conn: Connection,
    grids: gpd.GeoDataFrame,
    *,
    author: str,
    reason: str,
    valid_from: dt.datetime | None = None,
    expected_counts: dict[str, int] | None = None,
) -> ImportResult:
    """Replace the current grids of the levels present in ``grids`` with them, as a new version.

    The other levels are kept; the combined set must pass the topology check, else
    TopologyRejected is raised and nothing is written. Run inside a transaction
    (``engine.begin()``): any failure rolls the whole import back.
    """
    levels = tuple(level for level in LEVELS if (grids["level"] == level).any())
    kept = current_grids(conn, tuple(lv for lv in LEVELS if lv not in levels))
    combined = gpd.GeoDataFrame(pd.concat([kept, grids[[*GRID_COLUMNS, "geometry"]]],
                                          ignore_index=True), crs="EPSG:4326")
    report = check_topology(combined, expected_counts=expected_counts)
    if not report.ok:
        raise TopologyRejected(
            f"the grid set is not sound: {len(report.faults)} fault(s); nothing was imported",
            details=report.to_json(),
        )
    old = current_grids(conn, levels).set_index("code", drop=False)
    new = grids.set_index("code", drop=False)
    result = ImportResult(version=None)
    for code, row in new.iterrows():
        if code not in old.index:
            result.added.append(str(code))
        elif _same(old.loc[code], row):
            result.unchanged += 1
        else:
            result.changed.append(str(code))
    result.retired = sorted(str(c) for c in old.index.difference(new.index))
    if not (result.added or result.changed or result.retired):
        return result
    valid_from = valid_from or dt.datetime.now(dt.UTC)
    result.version = int(conn.execute(
        sa.text("""INSERT INTO grid_version (valid_from, author, reason, summary)
                   VALUES (:valid_from, :author, :reason, '') RETURNING id"""),
        {"valid_from": valid_from, "author": author, "reason": reason},
    ).scalar_one())
    upsert_districts(conn, new)
    closing = result.changed + result.retired
    if closing:
        conn.execute(
            sa.text("""UPDATE grid SET version_high = :v, valid_to = :t
                       WHERE code = ANY(:codes) AND version_high IS NULL"""),
            {"v": result.version, "t": valid_from, "codes": closing},
        )
    insert_grids(conn, new.loc[result.added + result.changed], result.version, valid_from)
    conn.execute(sa.text("UPDATE grid_version SET summary = :s WHERE id = :v"),
                 {"s": result.summary(), "v": result.version})
    conn.execute(sa.text("SELECT pg_notify('grid_version', :v)"), {"v": str(result.version)})
    return result


def upsert_districts(conn: Connection, grids: pd.DataFrame) -> None:
    """Add the districts the grids name that the store does not know yet."""
    districts = grids[["district_code", "district_name"]].drop_duplicates("district_code")
    conn.execute(
        sa.text("""INSERT INTO district (code, name) VALUES (:code, :name)
                   ON CONFLICT (code) DO NOTHING"""),
        [{"code": r.district_code, "name": r.district_name} for r in districts.itertuples()],
    )


def insert_grids(conn: Connection, rows: gpd.GeoDataFrame, version: int,
                  valid_from: dt.datetime) -> None:
    """Insert grid rows opened by ``version`` (and their subdivided parts)."""
    if rows.empty:
        return
    params: list[dict[str, Any]] = [
        {
            "code": r.code, "level": r.level, "parent_code": r.parent_code or None,
            "name": r.name, "kind": r.kind, "district_code": r.district_code,
            "version": version, "valid_from": valid_from, "wkb": shapely.to_wkb(r.geometry),
        }
        for r in rows.itertuples()
    ]
    conn.execute(
        sa.text(
            """INSERT INTO grid (code, level, parent_code, name, kind, district_code,
                                 version_low, valid_from, vertex_count, geom)
               SELECT :code, :level, :parent_code, :name, :kind, :district_code, :version,
                      :valid_from, ST_NPoints(g), g
               FROM (SELECT ST_Multi(ST_GeomFromWKB(:wkb, 4326)) AS g) AS s"""
        ),
        params,
    )
    # Subdivided copies make the PostGIS reference lookup fast (MapIt does the same).
    conn.execute(
        sa.text(
            """INSERT INTO grid_part (grid_id, level, geom)
               SELECT id, level, ST_Subdivide(geom, 64) FROM grid
               WHERE version_low = :version"""
        ),
        {"version": version},
    )
