"""Event ingest in the domain: idempotency, row-by-row validation, routing, snapping, CSV import.

Writes go to a module-scoped scratch city (grids only); the shared test database's fixture
events are read to check the fixture load.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pytest
import shapely
import sqlalchemy as sa
from event_truth import fixture_events
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from gis.events.ingest import (
    ALREADY,
    CREATED,
    PART_ROWS,
    REJECTED,
    StaleGridVersion,
    ingest_events,
    paused_gc,
)
from gis.grid_listener import libpq_url
from gis.grid_snapshot import GridSnapshot, load_snapshot
from gis.store import Database, create_engine

BEIJING = dt.timezone(dt.timedelta(hours=8))


@dataclasses.dataclass
class City:
    """A scratch city with grids and no events."""

    database: Database
    engine: Engine
    snapshot: GridSnapshot

    def ingest(self, rows: list[Any], **options: Any) -> Any:
        """Ingest in one committed transaction."""
        with self.engine.begin() as conn:
            return ingest_events(conn, self.snapshot, rows, **options)

    def count(self, sql: str, **params: Any) -> int:
        """A scalar count."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql), params).scalar_one())


@pytest.fixture(scope="module")
def city(grids_module_database: Database) -> Iterator[City]:
    engine = create_engine(grids_module_database)
    with engine.connect() as conn:
        snapshot = load_snapshot(conn)
    yield City(grids_module_database, engine, snapshot)
    engine.dispose()


def _inside(city: City, k: int = 0) -> tuple[str, float, float]:
    """The k-th small grid (by code) and a point well inside it."""
    code = sorted(city.snapshot.index.codes)[k]
    row = city.snapshot.index.codes.index(code)
    point = shapely.point_on_surface(city.snapshot.index.geoms[row])
    return code, point.x, point.y


def _event(source_id: str, lon: float | None = None, lat: float | None = None,
           **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"source": "12345", "source_id": source_id, "category": "环境卫生",
                             "severity": 2, "reported_at": "2026-11-20T09:30:00+08:00"}
    if lon is not None:
        event.update(lon=lon, lat=lat)
    event.update(fields)
    return event


def test_same_event_twice_is_stored_once(city: City) -> None:
    code, x, y = _inside(city)
    first = city.ingest([_event("TWICE-1", x, y, text="楼道堆放杂物")]).outcomes[0]
    again = city.ingest([_event("TWICE-1", x, y, text="楼道堆放杂物")]).outcomes[0]
    assert (first.result, first.grid_code, first.route) == (CREATED, code, "exact")
    assert (again.result, again.id, again.grid_code) == (ALREADY, first.id, code)
    assert city.count("SELECT count(*) FROM event WHERE source_id = 'TWICE-1'") == 1


def test_retried_batch_stores_no_duplicates(city: City) -> None:
    rows = []
    for k in range(40):
        _, x, y = _inside(city, k)
        rows.append(_event(f"RETRY-{k}", x, y))
    rows.append(_event("RETRY-0", *_inside(city, 0)[1:]))  # a repeat inside the batch itself
    first = city.ingest(rows)
    assert [o.result for o in first.outcomes] == [CREATED] * 40 + [ALREADY]
    assert first.outcomes[40].id == first.outcomes[0].id
    assert first.touched == {_inside(city, k)[0] for k in range(40)}
    retried = city.ingest(rows)
    assert [o.result for o in retried.outcomes] == [ALREADY] * 41
    assert [o.id for o in retried.outcomes] == [o.id for o in first.outcomes]
    assert retried.touched == set()
    assert city.count("SELECT count(*) FROM event WHERE source_id LIKE 'RETRY-%'") == 40


def test_mixed_batch_stores_the_good_rows_and_says_why_the_others_failed(city: City) -> None:
    code, x, y = _inside(city, 3)
    future = (dt.datetime.now(BEIJING) + dt.timedelta(days=1)).isoformat()
    rows: list[Any] = [
        _event("MIX-good-1", x, y),
        _event("MIX-bad-category", x, y, category="乱丢垃圾"),
        {k: v for k, v in _event("MIX-no-id", x, y).items() if k != "source_id"},
        _event("MIX-nan", float("nan"), y),
        _event("MIX-swapped", y, x),
        _event("MIX-unknown-code", grid_code="620102999999999"),
        _event("MIX-half") | {"lon": x},
        _event("MIX-due", x, y, due_at="2026-11-19T00:00:00+08:00"),
        _event("MIX-extra", x, y, lng=x),
        _event("MIX-future", x, y, reported_at=future),
        "not an object",
        _event("MIX-crs", x, y, crs="mercator"),
        _event("MIX-good-2", grid_code=code),
    ]
    result = city.ingest(rows)
    assert len(result.outcomes) == len(rows), "every row answers"
    reasons = {o.index: o.reason for o in result.outcomes if o.result == REJECTED}
    assert sorted(reasons) == list(range(1, 12))
    expected = {1: "category", 2: "source_id: Field required", 3: "NaN or infinite",
                4: "looks swapped", 5: "620102999999999 is not a current small grid",
                6: "lon and lat go together", 7: "before reported_at", 8: "lng: unknown field",
                9: "in the future", 10: "must be a JSON object", 11: "unknown crs 'mercator'"}
    for index, words in expected.items():
        assert words in str(reasons[index]), (index, reasons[index])
    assert [result.outcomes[i].result for i in (0, 12)] == [CREATED, CREATED]
    assert result.outcomes[12].route == "given"
    assert city.count("SELECT count(*) FROM event WHERE source_id LIKE 'MIX-%'") == 2


def test_unrouted_is_kept_with_its_reason(city: City) -> None:
    far = city.ingest([_event("FAR-1", 101.2, 35.1)]).outcomes[0]
    blank = city.ingest([_event("BLANK-1")]).outcomes[0]
    assert (far.result, far.route, far.grid_code) == (CREATED, "unrouted", None)
    assert "outside every grid" in str(far.route_note) and "nearest is" in str(far.route_note)
    assert (blank.route, blank.route_note) == ("unrouted", "no position and no grid code given")
    with city.engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT route, grid_code, grid_version, route_note, lon FROM event WHERE id = :id"),
            {"id": far.id}).one()
    assert stored.route == "unrouted" and stored.grid_code is None
    assert stored.grid_version == city.snapshot.version
    assert stored.route_note == far.route_note and stored.lon == 101.2


def _outward(city: City, metres: float) -> tuple[float, float, str]:
    """A point ``metres`` (in UTM) outside the city's edge, and the grid it is nearest to."""
    import geopandas as gpd

    grids = gpd.GeoDataFrame({"code": city.snapshot.index.codes},
                             geometry=list(city.snapshot.index.geoms), crs=4326).to_crs(32648)
    city_shape = shapely.union_all(grids.geometry.to_numpy())
    west = shapely.Point(city_shape.bounds[0], (city_shape.bounds[1] + city_shape.bounds[3]) / 2)
    edge = shapely.ops.nearest_points(city_shape.exterior, west)[0]
    outside = shapely.Point(edge.x - metres, edge.y)
    distances = grids.distance(outside)
    nearest = grids["code"].iloc[int(distances.argmin())]
    back = gpd.GeoSeries([outside], crs=32648).to_crs(4326).iloc[0]
    return back.x, back.y, str(nearest)


def test_outside_within_tolerance_is_snapped_beyond_it_unrouted(city: City) -> None:
    x, y, nearest = _outward(city, 120.0)
    snapped = city.ingest([_event("SNAP-1", x, y)]).outcomes[0]
    assert (snapped.route, snapped.grid_code) == ("snapped", nearest)
    assert snapped.snap_distance_m is not None and abs(snapped.snap_distance_m - 120.0) < 3.0
    fx, fy, _ = _outward(city, 300.0)
    beyond = city.ingest([_event("SNAP-2", fx, fy)]).outcomes[0]
    assert (beyond.route, beyond.grid_code) == ("unrouted", None)
    assert "200 m tolerance" in str(beyond.route_note)


def test_given_code_wins_and_notes_a_different_position(city: City) -> None:
    code, _, _ = _inside(city, 5)
    other, x, y = _inside(city, 6)
    given = city.ingest([_event("GIVEN-1", x, y, grid_code=code)]).outcomes[0]
    assert (given.route, given.grid_code) == ("given", code)
    assert given.route_note == f"given grid {code}; the position lies in {other}"


def test_stale_router_is_refused_before_anything_is_stored(city: City) -> None:
    stale = dataclasses.replace(city.snapshot, version=city.snapshot.version - 1)
    _, x, y = _inside(city)
    with city.engine.begin() as conn, pytest.raises(StaleGridVersion):
        ingest_events(conn, stale, [_event("STALE-1", x, y)])
    assert city.count("SELECT count(*) FROM event WHERE source_id = 'STALE-1'") == 0


def test_commit_notifies_the_events_channel(city: City) -> None:
    code, x, y = _inside(city, 9)
    with psycopg.connect(libpq_url(city.database.url), autocommit=True) as listener:
        listener.execute("LISTEN events")
        city.ingest([_event("NOTIFY-1", x, y), _event("NOTIFY-2", x, y)])
        notes = list(listener.notifies(timeout=5, stop_after=1))
    payload = json.loads(notes[0].payload)
    assert (notes[0].channel, payload["created"], payload["grids"], payload["codes"]) == \
        ("events", 2, 1, [code])


def test_gridworker_source_rule(city: City) -> None:
    _, x, y = _inside(city)
    result = city.ingest([_event("GW-1", x, y), _event("GW-2", x, y, source="网格员上报")],
                         only_source="网格员上报")
    assert [o.result for o in result.outcomes] == [REJECTED, CREATED]
    assert "source must be 网格员上报" in str(result.outcomes[0].reason)


# ---- the fixture load (shared database) ---------------------------------------------------


def test_fixture_load_routes_every_event_to_its_owner(engine: Engine, fixture_dir: Path) -> None:
    truth = fixture_events(fixture_dir)
    assert not truth["nearest_m"].between(195, 205).any(), "no event on the tolerance's edge"
    with engine.connect() as conn:
        stored = pd.read_sql(sa.text(
            """SELECT source, source_id, coalesce(grid_code, '') AS grid_code,
                      route AS stored_route FROM event"""), conn)
    both = truth.merge(stored, on=["source", "source_id"], how="left", validate="1:1")
    assert len(stored) == 30000
    assert int((both["grid_code"] == both["owner"]).sum()) == 30000
    assert (both["stored_route"] == both["route"]).all()
    assert both["stored_route"].value_counts().to_dict() == {"exact": 29700, "unrouted": 297,
                                                             "snapped": 3}
    # GCJ-02 / BD-09 positions land where their WGS84 truth lies.
    offset = both[(both["crs"] != "wgs84") & (both["expected_code"] != "")]
    assert len(offset) == 1806
    assert int((offset["grid_code"] == offset["expected_code"]).sum()) == len(offset)


# ---- CSV import ---------------------------------------------------------------------------


def test_csv_import_with_rejects_file(city: City, fixture_dir: Path, tmp_path: Path) -> None:
    from api.cli import app

    sample = pd.read_csv(fixture_dir / "events.csv", dtype=str, keep_default_na=False)
    rows = sample.iloc[:200].copy()
    rows["source_id"] = "CSV-" + rows["source_id"]
    rows.loc[rows.index[7], "severity"] = "9"
    rows.loc[rows.index[11], "lon"] = "东经103度"
    rows.loc[rows.index[12], "reported_at"] = "昨天"
    rows.loc[rows.index[13], "category"] = ""
    path = tmp_path / "events.csv"
    rows.to_csv(path, index=False)
    rejects = tmp_path / "rejects.csv"
    env = {"MINQING_DB_URL": city.database.url}
    done = CliRunner().invoke(app, ["events", "import", str(path), "--rejects", str(rejects)],
                              env=env)
    assert done.exit_code == 0, done.output
    kept = rows.drop(index=rows.index[[7, 11, 12, 13]])
    truth = fixture_events(fixture_dir).set_index("source_id")
    expect_unrouted = int((truth.loc[kept["source_id"].str[4:], "route"] == "unrouted").sum())
    assert f"created=196 already_had=0 rejected=4 unrouted={expect_unrouted}" in done.output
    refused = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert refused["row"].tolist() == ["8", "12", "13", "14"]
    assert refused["source_id"].tolist() == rows["source_id"].iloc[[7, 11, 12, 13]].tolist()
    assert "severity" in refused["reason"].iloc[0] and "lon" in refused["reason"].iloc[1]
    assert "reported_at" in refused["reason"].iloc[2]
    assert "category: Field required" in refused["reason"].iloc[3]
    again = CliRunner().invoke(app, ["events", "import", str(path), "--rejects", str(rejects)],
                               env=env)
    assert "created=0 already_had=196 rejected=4" in again.output
    assert city.count("SELECT count(*) FROM event WHERE source_id LIKE 'CSV-%'") == 196


def test_large_batch_keeps_row_order_and_repeats(city: City) -> None:
    n = 5500  # three parts of PART_ROWS
    assert PART_ROWS == 2500
    switch = sys.getswitchinterval()
    rows: list[Any] = []
    for k in range(n):
        _, x, y = _inside(city, k % 50)
        rows.append(_event(f"LARGE-{k}", x, y))
    rows[2500 + 7] = rows[3]  # repeats an event stored by the first part
    rows[2 * 2500 + 1] = _event("LARGE-bad", severity=0)
    result = city.ingest(rows)
    assert [o.index for o in result.outcomes] == list(range(n))
    assert result.outcomes[2500 + 7].result == ALREADY
    assert result.outcomes[2500 + 7].id == result.outcomes[3].id
    assert result.outcomes[2 * 2500 + 1].result == REJECTED
    assert result.count(CREATED) == n - 2
    assert city.count("SELECT count(*) FROM event WHERE source_id LIKE 'LARGE-%'") == n - 2
    assert sys.getswitchinterval() == switch  # the parts' short GIL switch interval is undone


def test_garbage_collector_is_back_after_each_batch(city: City) -> None:
    assert gc.isenabled()
    seen: list[bool] = []
    inner = threading.Event()
    outer_done = threading.Event()

    def other_batch() -> None:  # a second thread's batch outlasts the first one
        with paused_gc():
            inner.set()
            outer_done.wait(5)
            seen.append(gc.isenabled())
        seen.append(gc.isenabled())

    worker = threading.Thread(target=other_batch)
    with paused_gc():
        worker.start()
        assert inner.wait(5)
        seen.append(gc.isenabled())
    seen.append(gc.isenabled())  # the other batch still runs: still paused
    outer_done.set()
    worker.join(5)
    assert seen == [False, False, False, True]
    assert gc.isenabled()
    # A batch that fails (a stale router) hands the collector back too.
    stale = dataclasses.replace(city.snapshot, version=city.snapshot.version - 1)
    _, x, y = _inside(city)
    with city.engine.begin() as conn, pytest.raises(StaleGridVersion):
        ingest_events(conn, stale, [_event("GC-1", x, y)])
    assert gc.isenabled()
    # An application that turned the collector off keeps it off.
    gc.disable()
    try:
        assert city.ingest([_event("GC-2", x, y)]).count(CREATED) == 1
        assert not gc.isenabled()
    finally:
        gc.enable()
