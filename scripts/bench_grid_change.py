"""Benchmark of a boundary change with the city's order of events in the store.

Usage: python scripts/bench_grid_change.py [--events 2400000] [--pairs 10]

Uses its own database (``minqing_bench``) on the embedded cluster (or MINQING_DB_URL): the
synthetic Lanzhou plus N events drawn like real ones (a fifth of them open). It reshapes
``pairs`` pairs of neighbouring small grids (20 grids), timing each step of the change:
check, impact preview, store, commit (re-routing the open events that change owner), and the
roll-back that restores the city. The commit is timed with the recolouring of the touched
grids that the API and CLI run in the same transaction (`layers.grid_changes`). For comparison,
in the same run: owners of every event from scratch, by a PostGIS join and by the in-process
router.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry import mapping

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_city import bench_city

from gis.grid_change_commit import commit_change, rollback_change, store_proposal
from gis.grid_change_impact import preview
from gis.grid_change_proposal import current_version, grids_from_geojson, propose_state
from gis.grid_import import GRID_COLUMNS, current_grids
from gis.grid_snapshot import load_snapshot
from layers.grid_changes import recolour_version
from layers.refresh import refresh_all

BENCH_DB = "minqing_bench"


def bench_engine() -> sa.Engine:
    """The benchmark database, migrated and loaded with the synthetic Lanzhou."""
    return bench_city(BENCH_DB)[0]


def fill_events(engine: sa.Engine, n: int, seed: int) -> None:
    """Top the event table up to ``n`` events, routed by the in-process index."""
    with engine.connect() as conn:
        have = int(conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one())
        snapshot = load_snapshot(conn)
        small = current_grids(conn, ("small",))
    if have >= n:
        return
    rng = np.random.default_rng(seed)
    centres = shapely.get_coordinates(shapely.point_on_surface(small.geometry.to_numpy()))
    urban = np.flatnonzero(small["kind"].to_numpy() != "rural")
    started = time.perf_counter()
    for start in range(have, n, 200_000):
        m = min(200_000, n - start)
        pick = np.where(rng.random(m) < 0.85, rng.choice(urban, m), rng.integers(0, len(small), m))
        xy = centres[pick] + rng.normal(0.0, 0.002, (m, 2))
        owners = snapshot.index.locate(xy[:, 0], xy[:, 1])
        inside = owners >= 0
        codes = np.array(snapshot.index.codes, dtype=object)[owners[inside]]
        xy = xy[inside]
        status = np.where(rng.random(len(xy)) < 0.2, "open", "closed")
        with engine.begin() as conn:
            conn.execute(sa.text(
                """WITH stored AS (
                       INSERT INTO event (source, source_id, category, severity, status,
                                          reported_at, lon, lat, grid_code, grid_version, route)
                       SELECT 'bench', 'B' || (:start + i), '环境卫生', 2, s,
                              now() - make_interval(days => CAST(i % 60 AS int)), x, y, c, 1,
                              'exact'
                       FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[]),
                                   CAST(:c AS text[]), CAST(:s AS text[]))
                            WITH ORDINALITY AS t(x, y, c, s, i)
                       RETURNING id, source, source_id, reported_at)
                   INSERT INTO event_key (source, source_id, event_id, reported_at)
                   SELECT source, source_id, id, reported_at FROM stored"""),
                {"start": start, "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
                 "c": codes.tolist(), "s": status.tolist()})
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE event"))
    print(f"inserted events up to {n:,} in {time.perf_counter() - started:.1f} s")


def reshape_pairs(engine: sa.Engine, pairs: int) -> list[dict[str, object]]:
    """GeoJSON features moving a strip between ``pairs`` pairs of neighbouring urban grids."""
    with engine.connect() as conn:
        small = current_grids(conn, ("small",))
    small = small[small["kind"] == "urban"].sort_values("code")
    used: set[str] = set()
    features: list[dict[str, object]] = []
    for _, group in small.groupby("parent_code"):
        rows = group.to_dict("records")
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                if a["code"] in used or b["code"] in used:
                    continue
                shared = shapely.intersection(a["geometry"].boundary, b["geometry"].boundary)
                if shared.length < 0.003:
                    continue
                strip = shapely.intersection(a["geometry"], shared.buffer(0.001, quad_segs=2))
                for row, geometry in ((a, a["geometry"].difference(strip)),
                                      (b, b["geometry"].union(strip))):
                    properties = {k: row[k] for k in GRID_COLUMNS}
                    features.append({"type": "Feature", "properties": properties,
                                     "geometry": mapping(geometry)})
                used.update((a["code"], b["code"]))
                break
        if len(used) >= 2 * pairs:
            break
    return features


def timed(label: str, fn, figures: dict[str, float]):  # type: ignore[no-untyped-def]
    """Run ``fn`` and keep its wall time under ``label``."""
    started = time.perf_counter()
    result = fn()
    figures[label] = time.perf_counter() - started
    return result


def main() -> None:
    """Run the benchmark and print the steps' times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_400_000)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()

    engine = bench_engine()
    fill_events(engine, args.events, args.seed)
    features = reshape_pairs(engine, args.pairs)
    grids: gpd.GeoDataFrame = grids_from_geojson(features)
    figures: dict[str, float] = {}
    with engine.begin() as conn:
        total = int(conn.execute(sa.text("SELECT count(*) FROM event")).scalar_one())
        base = current_version(conn)
        state = timed("check (files + scoped topology)", lambda: propose_state(conn, grids, []),
                      figures)
        assert not state.faults, state.faults
        impact = timed("impact preview", lambda: preview(conn, state), figures)
        change_id = timed("store proposal", lambda: store_proposal(
            conn, state, impact, base_version=base, reason="bench", author="bench"), figures)
    with engine.connect() as conn:  # the colours as the service has them before the change
        with conn.begin():
            refresh_all(conn)
    with engine.begin() as conn:  # what layers.grid_changes.commit_and_recolour does, in steps
        result = timed("commit (version + re-route)",
                       lambda: commit_change(conn, change_id, author="bench"), figures)
        timed("recolour (touched grids)", lambda: recolour_version(conn, result.version),
              figures)
    with engine.begin() as conn:
        undone = timed("roll back", lambda: rollback_change(conn, change_id, author="bench",
                                                            reason="bench restore"), figures)
        recolour_version(conn, undone.version)
    with engine.connect() as conn:
        timed("baseline: every event's owner by PostGIS", lambda: conn.execute(sa.text(
            """SELECT count(*) FROM event e JOIN grid g ON g.version_high IS NULL
               AND g.level = 'small' AND ST_Covers(g.geom, e.geom)""")).scalar_one(), figures)
        xy = np.array(conn.execute(sa.text("SELECT lon, lat FROM event")).all(), dtype=float)
        snapshot = load_snapshot(conn)
    timed("baseline: every event's owner by the router",
          lambda: snapshot.index.locate(xy[:, 0], xy[:, 1]), figures)
    touched = len(state.touched)
    print(f"events in store: {total:,}   grids touched: {touched}   "
          f"events changing owner: {len(impact.moves):,} (open re-routed: "
          f"{result.events_moved:,})")
    whole = sum(figures[k] for k in list(figures)[:5])
    for label, seconds in figures.items():
        print(f"{label:44s} {seconds:8.3f} s")
    print(f"{'whole change (check+preview+store+commit+recolour)':44s} {whole:8.3f} s")
    print(pd.Series(figures).round(3).to_json())


if __name__ == "__main__":
    main()
