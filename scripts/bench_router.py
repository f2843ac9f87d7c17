"""Benchmark of the point -> small grid router against shapely, geopandas (and later PostGIS).

Usage: python scripts/bench_router.py [--fixtures DIR] [--points N] [--seed S]

Points are drawn like real events: the fixture events' true positions jittered by ~50 m
(mostly the dense urban valley), 5 % exactly on grid vertices and edge midpoints, 5 % outside
every grid. Every competitor answers the same points in the same process, and the answers are
compared: all must agree with the lowest-code covering rule. Figures are points per second and
ratios against the shapely STRtree baseline; nothing here is a test.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
import sqlalchemy as sa
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gis.router import GridIndex

Locator = Callable[[np.ndarray, np.ndarray], np.ndarray]


def load_small_grids(path: Path) -> tuple[list[str], list[BaseGeometry]]:
    """Codes and geometries of grids_small.geojson, coordinates parsed as PostGIS would."""
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    return [f["properties"]["code"] for f in features], [shape(f["geometry"]) for f in features]


def ensure_fixtures(fixtures: Path | None) -> Path:
    """Fixture folder holding grids_small.geojson, generating one in a temp folder if needed."""
    if fixtures is not None and (fixtures / "grids_small.geojson").exists():
        return fixtures
    from gis.synth.build import make_fixtures

    out = Path(tempfile.mkdtemp(prefix="minqing_bench_"))
    make_fixtures(out)
    return out


def draw_points(
    fixtures: Path, geoms: list[BaseGeometry], n: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """n points like real events: jittered events, 5 % on vertices/edges, 5 % outside."""
    rng = np.random.default_rng(seed)
    with (fixtures / "events.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    ev = np.array([(float(r["true_lon"]), float(r["true_lat"])) for r in rows])
    n_edge = n // 20
    n_out = n // 20
    n_ev = n - n_edge - n_out
    pick = ev[rng.integers(0, len(ev), n_ev)] + rng.normal(0.0, 5e-4, (n_ev, 2))
    rings = shapely.get_coordinates(
        shapely.get_exterior_ring([p for g in geoms for p in shapely.get_parts(g)])
    )
    a = rings[rng.integers(0, len(rings) - 1, n_edge)]
    on_vertex = rng.random(n_edge) < 0.5
    # Midpoints of consecutive ring vertices (on the 2**-24 lattice the midpoint is an exact
    # double on the edge; the last vertex of one ring pairs with the next ring: a few strays).
    idx = rng.integers(0, len(rings) - 1, n_edge)
    mid = (rings[idx] + rings[idx + 1]) / 2.0
    edge_pts = np.where(on_vertex[:, None], a, mid)
    box = np.array(shapely.total_bounds(geoms))
    out = np.column_stack(
        [rng.uniform(box[0] - 0.5, box[2] + 0.5, n_out), rng.uniform(box[3], box[3] + 0.5, n_out)]
    )
    pts = np.vstack([pick, edge_pts, out])
    pts = pts[rng.permutation(len(pts))]
    return pts[:, 0].copy(), pts[:, 1].copy()


def lowest_code_owner(
    n: int, point_idx: np.ndarray, grid_idx: np.ndarray, rank: np.ndarray
) -> np.ndarray:
    """Reduce (point, grid) covering pairs to the lowest-code owner per point (-1: none)."""
    owner = np.full(n, -1, dtype=np.int64)
    order = np.lexsort((rank[grid_idx], point_idx))
    p, g = point_idx[order], grid_idx[order]
    first = np.unique(p, return_index=True)[1]
    owner[p[first]] = g[first]
    return owner


def shapely_strtree(geoms: list[BaseGeometry], rank: np.ndarray) -> Locator:
    """Baseline: STRtree over prepared grids, query by point (predicate covered_by)."""
    prepared = np.array(geoms, dtype=object)
    shapely.prepare(prepared)
    tree = shapely.STRtree(prepared)

    def locate(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        pi, gi = tree.query(shapely.points(lon, lat), predicate="covered_by")
        return lowest_code_owner(len(lon), pi, gi, rank)

    return locate


def geopandas_sjoin(codes: list[str], geoms: list[BaseGeometry], rank: np.ndarray) -> Locator:
    """geopandas sjoin(points, grids, predicate='covered_by')."""
    import geopandas as gpd

    grids = gpd.GeoDataFrame({"row": np.arange(len(codes))}, geometry=geoms, crs="EPSG:4326")

    def locate(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
        joined = gpd.sjoin(pts, grids, predicate="covered_by", how="inner")
        return lowest_code_owner(len(lon), joined.index.to_numpy(), joined["row"].to_numpy(), rank)

    return locate


# A plain spatial join: the points as a GiST-indexed table against the subdivided parts.
# ST_Covers on a part may differ from the whole grid on a cut line; the agreement column shows it.
_POINTS_TABLE = (
    """
    CREATE TEMP TABLE bench_point ON COMMIT DROP AS
    SELECT i, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS geom
    FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[])) WITH ORDINALITY AS p(lon, lat, i)
    """,
    "CREATE INDEX ON bench_point USING gist (geom)",
    "ANALYZE bench_point",
)
_PARTS_JOIN = """
    SELECT p.i, min(g.code) FROM bench_point p
    JOIN grid_part gp ON gp.level = 'small' AND ST_Covers(gp.geom, p.geom)
    JOIN grid g ON g.id = gp.grid_id AND g.version_high IS NULL
    GROUP BY p.i
"""


def postgis_join(codes: list[str], fixtures: Path) -> dict[str, Locator]:
    """The PostGIS reference join (gis/pg_locate.py) on the configured or embedded store.

    The store is started, migrated and loaded with the same fixture files; None (with a note)
    when no database can be reached, so the in-process figures still print.
    """
    from api.settings import Settings
    from gis.fixture_load import load_fixtures
    from gis.pg_locate import owners_by_postgis
    from gis.store import create_engine, migrate, resolve_database, start_database

    settings = Settings()
    try:
        database = resolve_database(settings.db)
        start_database(database, settings.db.name)
        engine = create_engine(database)
        migrate(engine)
        with engine.begin() as conn:
            load_fixtures(conn, fixtures)
    except Exception as exc:  # a benchmark without a database still reports the rest
        print(f"PostGIS join skipped: {exc}")
        return {}
    position = {code: i for i, code in enumerate(codes)}

    def locate(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        with engine.connect() as conn:
            owners = owners_by_postgis(conn, lon.tolist(), lat.tolist())
        return np.array([-1 if c is None else position[c] for c in owners], dtype=np.int64)

    def locate_parts(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        owner = np.full(len(lon), -1, dtype=np.int64)
        with engine.begin() as conn:
            conn.execute(sa.text(_POINTS_TABLE[0]), {"lons": lon.tolist(), "lats": lat.tolist()})
            for statement in _POINTS_TABLE[1:]:
                conn.execute(sa.text(statement))
            rows: list[tuple[int, str]] = [(r[0], r[1]) for r in conn.execute(sa.text(_PARTS_JOIN))]
        for i, code in rows:
            owner[i - 1] = position[code]
        return owner

    return {"PostGIS join (ST_Covers)": locate, "PostGIS join (subdivided parts)": locate_parts}


def timed(
    fn: Locator, lon: np.ndarray, lat: np.ndarray, repeat: int = 1
) -> tuple[float, np.ndarray]:
    """Best wall time of `repeat` runs and the last answer."""
    best, answer = float("inf"), np.empty(0, dtype=np.int64)
    for _ in range(repeat):
        t = time.perf_counter()
        answer = fn(lon, lat)
        best = min(best, time.perf_counter() - t)
    return best, answer


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=Path("fixtures/out"))
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument(
        "--baseline-points",
        type=int,
        default=200_000,
        help="points given to the slow peers (rates are per point)",
    )
    args = parser.parse_args()

    fixtures = ensure_fixtures(args.fixtures)
    codes, geoms = load_small_grids(fixtures / "grids_small.geojson")
    rank = np.empty(len(codes), dtype=np.int64)
    rank[np.argsort(np.array(codes))] = np.arange(len(codes))
    t = time.perf_counter()
    index = GridIndex.build(codes, geoms, version=1)
    build_s = time.perf_counter() - t
    lon, lat = draw_points(fixtures, geoms, args.points, args.seed)
    index.locate(lon[:10], lat[:10])  # load or compile the kernels before timing

    ours_s, ours = timed(index.locate, lon, lat, repeat=5)
    nb = min(args.baseline_points, len(lon))
    peers: dict[str, Locator | None] = {
        "shapely STRtree (prepared)": shapely_strtree(geoms, rank),
        "geopandas sjoin": geopandas_sjoin(codes, geoms, rank),
        **postgis_join(codes, fixtures),
    }
    print(
        f"grids: {len(codes)}   points: {len(lon):,}   build: {build_s:.2f} s   "
        f"index: {index.size_bytes / 2**20:.1f} MiB   {index.stats()}"
    )
    print(f"{'method':32s} {'points/s':>14s} {'vs STRtree':>11s}  agreement")
    rates: dict[str, float] = {}
    for name, fn in peers.items():
        if fn is None:
            print(f"{name:32s} {'(not wired)':>14s}")
            continue
        secs, answer = timed(fn, lon[:nb], lat[:nb])
        rates[name] = nb / secs
        agree = int(np.sum(answer == ours[:nb]))
        print(
            f"{name:32s} {rates[name]:14,.0f} "
            f"{rates[name] / rates['shapely STRtree (prepared)']:10.2f}x  {agree}/{nb}"
        )
    ours_rate = len(lon) / ours_s
    print(
        f"{'GridIndex.locate (1 core)':32s} {ours_rate:14,.0f} "
        f"{ours_rate / rates['shapely STRtree (prepared)']:10.2f}x  (reference)"
    )
    t = time.perf_counter()
    for i in range(2000):
        index.locate_one(float(lon[i]), float(lat[i]))
    print(f"locate_one: {(time.perf_counter() - t) / 2000 * 1e6:.1f} us per call")


if __name__ == "__main__":
    main()
