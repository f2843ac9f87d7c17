"""A planner's boundary change: read it, work out the grids it would leave, and check them.

A proposal names the grids it redraws or adds (full rows with geometry) and the codes it retires.
Only the part of the city it touches is checked: the touched grids, their parents, every sibling
under those parents and the touched grids' own children. That is where tiling can break, and it
keeps the check of a 20-grid reshape well under a second instead of re-checking 8,703 grids.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from pyogrio.errors import DataLayerError, DataSourceError
from sqlalchemy.engine import Connection

from gis.errors import BadRequest, FeatureProblem, GridFileError, InvalidInput
from gis.grid_files_set import read_grid_files
from gis.grid_import import GRID_COLUMNS
from gis.gridfiles import read_grid_file
from gis.topology import check_topology
from gis.topology_report import Fault

MAX_FEATURES = 2_000


class ProposalRejected(InvalidInput):
    """A proposal whose grids would not be sound; nothing was stored."""


@dataclass
class ProposedState:
    """The grids a proposal would leave in its scope, and how they differ from now."""

    grids: gpd.GeoDataFrame  # the proposed rows (changed and new), EPSG:4326
    retire: list[str]
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    scope: gpd.GeoDataFrame | None = None  # current rows around the change
    faults: list[Fault] = field(default_factory=list)

    @property
    def touched(self) -> list[str]:
        """Every code whose row the change closes or opens."""
        return sorted({*self.added, *self.changed, *self.retire})

    @property
    def kind(self) -> str:
        """reshape, split, merge, carve_out, add, retire or mixed (for people and filters)."""
        new, changed, gone = len(self.added), len(self.changed), len(self.retire)
        if new == 0 and gone == 0:
            return "reshape"
        if new == 0 and changed == 0:
            return "retire"
        if new == 0:
            return "merge"
        new_kinds = set(self.grids.loc[self.grids["code"].isin(self.added), "kind"])
        dedicated = new_kinds == {"dedicated"}
        if gone == 0 and dedicated:
            return "carve_out"
        if gone == 0:
            return "split" if changed else "add"
        if new == 1 and gone >= 2 and changed == 0:
            return "merge"
        if gone == 1 and new >= 2:
            return "split"
        return "mixed"


def grids_from_geojson(features: Any) -> gpd.GeoDataFrame:
    """Proposed grids from GeoJSON features, with the checks a grid file gets."""
    if isinstance(features, dict) and features.get("type") == "FeatureCollection":
        features = features.get("features")
    if not isinstance(features, list):
        raise BadRequest("features must be a GeoJSON FeatureCollection or a list of Features")
    if len(features) > MAX_FEATURES:
        raise InvalidInput(f"{len(features)} features; a proposal takes at most {MAX_FEATURES}")
    if not features:
        return gpd.GeoDataFrame(columns=[*GRID_COLUMNS, "geometry"], geometry="geometry",
                                crs="EPSG:4326")
    with tempfile.TemporaryDirectory(prefix="minqing_proposal_") as folder:
        path = Path(folder) / "proposal.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                        encoding="utf-8")
        grids = read_grid_file(path)
    return grids[[*GRID_COLUMNS, "geometry"]]


def grids_from_upload(body: bytes, content_type: str) -> gpd.GeoDataFrame:
    """Proposed grids from an uploaded GeoPackage or zipped Shapefile (as exported by QGIS)."""
    suffix = {"application/geopackage+sqlite3": ".gpkg", "application/zip": ".zip"}.get(
        content_type.split(";")[0].strip().lower())
    if suffix is None:
        raise BadRequest(f"cannot read a {content_type or 'typeless'} body: send JSON, "
                         "application/geopackage+sqlite3 or application/zip (a Shapefile)")
    if suffix == ".zip" and not zipfile.is_zipfile(io.BytesIO(body)):
        raise InvalidInput("the upload is not a zip archive (a zipped Shapefile is expected)")
    with tempfile.TemporaryDirectory(prefix="minqing_proposal_") as folder:
        path = Path(folder) / f"proposal{suffix}"
        path.write_bytes(body)
        try:
            return read_grid_files([path])
        except GridFileError as error:  # name "the upload", not a temporary path
            problems = [FeatureProblem(p.feature, p.problem.replace("/vsizip/", "")
                                       .replace(str(path), "the upload")) for p in error.problems]
            raise GridFileError(problems, source="the upload") from None
        except (DataSourceError, DataLayerError) as error:
            kind = "GeoPackage" if suffix == ".gpkg" else "zipped Shapefile"
            raise InvalidInput(f"the upload cannot be read as a {kind}: "
                               f"{str(error).split(';')[0].replace(str(path), 'it')}") from None


def _current_rows(conn: Connection, codes: list[str], parents: list[str]) -> gpd.GeoDataFrame:
    rows = conn.execute(sa.text(
        """SELECT g.code, g.parent_code, g.name, g.level, g.kind, g.district_code,
                  d.name AS district_name, ST_AsBinary(g.geom) AS wkb
           FROM grid g JOIN district d ON d.code = g.district_code
           WHERE g.version_high IS NULL
             AND (g.code = ANY(:codes) OR g.parent_code = ANY(:parents))
           ORDER BY g.code"""), {"codes": codes, "parents": parents}).all()
    frame = pd.DataFrame([r[:-1] for r in rows], columns=GRID_COLUMNS)
    geometry: Any = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=geometry, crs="EPSG:4326")


def current_version(conn: Connection) -> int:
    """The grid version in force."""
    return int(conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM grid_version")).scalar_one())


def propose_state(conn: Connection, grids: gpd.GeoDataFrame, retire: list[str]) -> ProposedState:
    """Work out and check what the proposal would leave; faults are listed, not raised."""
    retire = sorted({str(c) for c in retire})
    proposed = [str(c) for c in grids["code"]]
    if not proposed and not retire:
        raise InvalidInput("the proposal changes nothing: give features and/or codes to retire")
    both = sorted(set(proposed) & set(retire))
    if both:
        raise InvalidInput(f"code(s) {', '.join(both)} are both redrawn and retired")
    existing = _current_rows(conn, sorted({*proposed, *retire}), [])
    known = set(existing["code"])
    state = ProposedState(grids=grids.reset_index(drop=True), retire=retire)
    state.changed = sorted(c for c in proposed if c in known)
    state.added = sorted(c for c in proposed if c not in known)
    unknown = [c for c in retire if c not in known]
    if unknown:
        raise InvalidInput(f"cannot retire {', '.join(unknown)}: no such grid in force")
    parents = {*existing["parent_code"].dropna(), *grids["parent_code"].dropna()}
    parents = {str(p) for p in parents if p}
    scope = _scope_rows(conn, state.touched, parents,
                        any_large=bool((grids["level"] == "large").any()
                                       or (existing["level"] == "large").any()))
    state.scope = scope
    kept = scope[~scope["code"].isin([*state.touched])]
    after = gpd.GeoDataFrame(pd.concat([kept, grids[[*GRID_COLUMNS, "geometry"]]],
                                       ignore_index=True), crs="EPSG:4326")
    report = check_topology(after)
    in_force_elsewhere = _codes_in_force(conn, [str(p) for p in after["parent_code"].dropna()
                                                if p and p not in set(after["code"])])
    state.faults = [f for f in report.faults
                    if not (f.kind == "orphan" and len(f.codes) == 2
                            and f.codes[1] in in_force_elsewhere and f.codes[1] not in retire)]
    return state


def _scope_rows(conn: Connection, touched: list[str], parents: set[str], *,
                any_large: bool) -> gpd.GeoDataFrame:
    """Touched grids, their parents, all siblings, and the children of every medium in scope."""
    codes = sorted({*touched, *parents})
    scope = _current_rows(conn, codes, codes)
    if any_large:  # large grids tile the city together: all of them are each other's siblings
        larges = [str(row[0]) for row in conn.execute(sa.text(
            "SELECT code FROM grid WHERE version_high IS NULL AND level = 'large'"))]
        scope = _current_rows(conn, sorted({*codes, *larges}), codes)
    mediums = sorted(set(scope.loc[scope["level"] == "medium", "code"]) - set(codes))
    if mediums:
        more = _current_rows(conn, [], mediums)
        scope = gpd.GeoDataFrame(pd.concat([scope, more], ignore_index=True), crs="EPSG:4326")
        scope = scope.drop_duplicates("code").reset_index(drop=True)
    return scope


def _codes_in_force(conn: Connection, codes: list[str]) -> set[str]:
    if not codes:
        return set()
    found = conn.execute(sa.text("SELECT code FROM grid WHERE version_high IS NULL "
                                 "AND code = ANY(:codes)"), {"codes": sorted(set(codes))})
    return {str(row[0]) for row in found}


def fault_json(fault: Fault) -> dict[str, Any]:
    """A fault as the API shows it: kind, grids, area, location and message."""
    return {"kind": fault.kind, "codes": list(fault.codes),
            "area_m2": None if fault.area_m2 is None else round(fault.area_m2, 1),
            "location": None if fault.location is None else list(fault.location),
            "message": fault.message}


def rejected(state: ProposedState) -> ProposalRejected:
    """The error for an unsound proposal, every fault named."""
    lines = "; ".join(f.message for f in state.faults[:10])
    more = f" (and {len(state.faults) - 10} more)" if len(state.faults) > 10 else ""
    return ProposalRejected(
        f"the proposal would leave the grids unsound: {len(state.faults)} fault(s): "
        f"{lines}{more}; nothing was stored",
        details=[fault_json(f) for f in state.faults])


def read_proposal_file(path: Path) -> gpd.GeoDataFrame:
    """Proposed grids from a GeoPackage / GeoJSON / Shapefile on disk (the CLI's door)."""
    return read_grid_files([path])
