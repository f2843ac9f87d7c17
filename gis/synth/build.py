"""make_fixtures: generate the whole synthetic Lanzhou into a folder, deterministically."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import shapely

from gis.synth import events as events_module
from gis.synth import probes as probes_module
from gis.synth import roster as roster_module
from gis.synth.catalogue import Catalogue, Grid, build_catalogue
from gis.synth.dedicated import carve_dedicated
from gis.synth.edges import Polylines, straighten, wiggle_edges
from gis.synth.geography import DISTRICTS
from gis.synth.hierarchy import build_hierarchy
from gis.synth.names import NameMaker
from gis.synth.partition import Partition, build_partition
from gis.synth.rings import cell_shell, region_polygons
from gis.synth.seeds import sample_seeds
from gis.synth.writer import CoordinateText, sha256_of, write_csv, write_grids, write_json

GENERATOR_VERSION = "1"
DEFAULT_SEED = 20261125
DEFAULT_EVENTS = 30000
# Independent random streams per stage, so a change in one stage leaves the others' draws alone.
STREAMS = {"seeds": 1, "edges": 2, "dedicated": 3, "names": 4, "roster": 5, "events": 6,
           "probes": 7}
GRID_FILES = {"large": "grids_large.geojson", "medium": "grids_medium.geojson",
              "small": "grids_small.geojson"}


def _stream(seed: int, stage: str) -> np.random.Generator:
    return np.random.default_rng([seed, STREAMS[stage]])


def _cell_shells(partition: Partition, lines: Polylines,
                 edge_of: dict[tuple[int, int], int]) -> tuple[Polylines, list[np.ndarray]]:
    """Every cell's ring; cells that came out invalid get straight edges (a last resort)."""
    for _ in range(3):
        shells = [cell_shell(partition, lines, edge_of, c) for c in range(partition.n_cells)]
        index = np.repeat(np.arange(len(shells)), [len(s) for s in shells])
        rings = shapely.linearrings(np.vstack(shells).astype(np.float64), indices=index)
        valid = shapely.is_valid(shapely.polygons(rings))
        if valid.all():
            return lines, shells
        bad = [edge_of[(min(a, b), max(a, b))] for c in np.flatnonzero(~valid).tolist()
               for a, b in zip(partition.rings[c].tolist(),
                               np.roll(partition.rings[c], -1).tolist(), strict=True)]
        lines = straighten(lines, partition.vertices, np.array(sorted(set(bad))))
    raise RuntimeError("cells stay invalid with straight edges")


def _check_catalogue(catalogue: Catalogue) -> None:
    """The counts and validity the fixtures promise, checked before anything is written."""
    levels = catalogue.by_level()
    wanted = {"large": {"urban": 51, "rural": 59},
              "medium": {"urban": 380, "rural": 706},
              "small": {"urban": 2945, "rural": 3823, "dedicated": 739}}
    for level, kinds in wanted.items():
        got = Counter(g.kind for g in levels[level])
        if dict(got) != kinds:
            raise RuntimeError(f"{level} grid counts are {dict(got)}, expected {kinds}")
        if not shapely.is_valid(np.array([g.geometry for g in levels[level]])).all():
            raise RuntimeError(f"a {level} grid is invalid")
        if len({g.code for g in levels[level]}) != len(levels[level]):
            raise RuntimeError(f"{level} grid codes are not unique")


def _district_rows(larges: list[Grid]) -> list[dict[str, str]]:
    """districts.csv rows: code, name and area-weighted centre of the district's grids."""
    rows = []
    for d in DISTRICTS:
        parts = [p for g in larges if g.district is d for p in shapely.get_parts(g.geometry)]
        centre = shapely.centroid(shapely.MultiPolygon(parts))
        rows.append({"code": d.code, "name": d.name, "centre_lon": f"{centre.x:.6f}",
                     "centre_lat": f"{centre.y:.6f}"})
    return rows


def _counts(catalogue: Catalogue) -> dict[str, dict[str, int]]:
    out = {}
    for level, grids in catalogue.by_level().items():
        kinds = Counter(g.kind for g in grids)
        out[level] = {"total": len(grids), **dict(sorted(kinds.items()))}
    return out


def make_fixtures(out_dir: Path, seed: int = DEFAULT_SEED, events: int = DEFAULT_EVENTS) -> dict:
    """Generate grids, roster, events and probes into out_dir; return (and write) the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = sample_seeds(_stream(seed, "seeds"))
    partition = build_partition(seeds)
    keys = partition.edge_keys()
    edge_of = {k: i for i, k in enumerate(keys)}
    lines = wiggle_edges(keys, partition.vertices, _stream(seed, "edges"))
    lines, shells = _cell_shells(partition, lines, edge_of)
    hierarchy = build_hierarchy(partition)
    carves = carve_dedicated(shells, partition.n_urban, _stream(seed, "dedicated"))
    medium_rings = region_polygons(partition, lines, edge_of, hierarchy.medium_of_cell,
                                   len(hierarchy.mediums))
    large_rings = region_polygons(partition, lines, edge_of, hierarchy.large_of_cell,
                                  len(hierarchy.larges))
    catalogue = build_catalogue(hierarchy, shells, carves, medium_rings, large_rings,
                                NameMaker(_stream(seed, "names")))
    _check_catalogue(catalogue)

    coordinate_text = CoordinateText()
    for level, grids in catalogue.by_level().items():
        write_grids(out_dir / GRID_FILES[level], grids, coordinate_text)
    write_csv(out_dir / "districts.csv", ("code", "name", "centre_lon", "centre_lat"),
              _district_rows(catalogue.larges))
    roster_rng = _stream(seed, "roster")
    workers = roster_module.make_roster(catalogue.smalls, NameMaker(roster_rng), roster_rng)
    write_csv(out_dir / "gridworkers.csv", roster_module.COLUMNS,
              [w.row() for w in workers.values()])
    event_rng = _stream(seed, "events")
    event_rows = events_module.make_events(catalogue.smalls, workers, events, event_rng,
                                           NameMaker(event_rng))
    write_csv(out_dir / "events.csv", events_module.COLUMNS, event_rows)
    probe_rows = probes_module.make_probes(catalogue.smalls, partition, lines, edge_of, carves,
                                           _stream(seed, "probes"))
    write_csv(out_dir / "probes.csv", probes_module.COLUMNS, probe_rows)

    files = [*GRID_FILES.values(), "districts.csv", "gridworkers.csv", "events.csv", "probes.csv"]
    manifest = {
        "generator": "gis.synth",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "crs": "EPSG:4326",
        "coordinate_lattice_degrees": "2**-24",
        "owner_rule": "a point covered by several small grids belongs to the lowest code",
        "nearest_m_crs": probes_module.METRIC_CRS,
        "counts": _counts(catalogue),
        "districts": {
            d.code: {"name": d.name,
                     **{level: sum(1 for g in grids if g.district is d)
                        for level, grids in catalogue.by_level().items()}}
            for d in DISTRICTS
        },
        "events": {"total": len(event_rows),
                   "by_crs": dict(sorted(Counter(r["crs"] for r in event_rows).items())),
                   "outside": sum(1 for r in event_rows if not r["expected_code"])},
        "probes": dict(sorted(Counter(r["kind"] for r in probe_rows).items())),
        "files": {name: sha256_of(out_dir / name) for name in files},
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest
