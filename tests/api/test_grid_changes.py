"""Boundary changes end to end on a scratch copy of the city: propose, preview, commit, roll back.

Expected owners are computed independently with shapely from the geometries the test draws.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from shapely.geometry import LineString, mapping

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token
from gis.grid_import import current_grids
from gis.settings import PROJECT_ROOT, DatabaseSettings
from gis.store import Database, create_engine

pytestmark = pytest.mark.slow


class City:
    """A loaded scratch city, an app on it and tokens for each role."""

    def __init__(self, database: Database, client: TestClient, engine: sa.Engine,
                 tokens: dict[str, str]) -> None:
        self.database, self.client, self.engine, self.tokens = database, client, engine, tokens

    def headers(self, role: str = "planner") -> dict[str, str]:
        """Authorization header of a role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def version(self) -> int:
        """The grid version in force."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT max(id) FROM grid_version")).scalar_one())

    def small(self) -> Any:
        """The small grids in force, by code."""
        with self.engine.connect() as conn:
            grids = current_grids(conn, ("small",))
        grids.index = grids["code"].to_numpy()
        return grids

    def count(self, sql: str) -> int:
        """A scalar count."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(sql)).scalar_one())


@pytest.fixture(scope="module")
def city(city_module_database: Database) -> Iterator[City]:
    engine = create_engine(city_module_database)
    with engine.begin() as conn:
        tokens = {role: issue_token(conn, f"test {role}", role)
                  for role in ("planner", "viewer", "admin")}
    settings = Settings(db=DatabaseSettings(url=city_module_database.url))
    with TestClient(create_app(settings)) as client:
        yield City(city_module_database, client, engine, tokens)
    engine.dispose()


def _neighbours(city: City) -> tuple[Any, Any]:
    """Two small grids of one medium grid sharing a long edge (the first such pair by code).

    The widest strip the tests move (``_reshape``'s default width) must leave most of ``a``, so a
    small dedicated carve-out next to a block is passed over.
    """
    small = city.small()
    for _parent, group in small.groupby("parent_code"):
        rows = group.sort_values("code")
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                a, b = rows.iloc[i], rows.iloc[j]
                shared = shapely.intersection(a.geometry.boundary, b.geometry.boundary)
                if shared.length > 0.003 and _reshape(a, b)[2].area < 0.5 * a.geometry.area:
                    return a, b
    raise AssertionError("no neighbours with a long shared edge")


def _feature(row: Any, geometry: Any, **changes: str) -> dict[str, Any]:
    properties = {k: row[k] for k in ("code", "parent_code", "name", "level", "kind",
                                      "district_code", "district_name")}
    properties.update(changes)
    return {"type": "Feature", "properties": properties, "geometry": mapping(geometry)}


def _reshape(a: Any, b: Any, width: float = 0.0015) -> tuple[Any, Any, Any]:
    """Move a strip of ``a`` along the shared edge to ``b``: (new a, new b, the strip)."""
    shared = shapely.intersection(a.geometry.boundary, b.geometry.boundary)
    strip = shapely.intersection(a.geometry, shared.buffer(width, quad_segs=2))
    return a.geometry.difference(strip), b.geometry.union(strip), strip


def _insert_events(city: City, points: np.ndarray, owners: list[str], status: list[str],
                   tag: str) -> list[int]:
    with city.engine.begin() as conn:
        ids = [int(conn.execute(sa.text(
            """WITH stored AS (
                   INSERT INTO event (source, source_id, category, severity, status,
                                      reported_at, lon, lat, grid_code, grid_version, route)
                   VALUES ('12345', :sid, '环境卫生', 2, :status, now(), :lon, :lat, :code,
                           (SELECT max(id) FROM grid_version), 'exact')
                   RETURNING id, source, source_id, reported_at)
               INSERT INTO event_key (source, source_id, event_id, reported_at)
               SELECT source, source_id, id, reported_at FROM stored RETURNING event_id"""),
            {"sid": f"{tag}-{i}", "status": status[i], "lon": float(p[0]), "lat": float(p[1]),
             "code": owners[i]}).scalar_one()) for i, p in enumerate(points)]
    return ids


def _owner(points: np.ndarray, geoms: dict[str, Any]) -> list[str | None]:
    """Lowest code among the geometries covering each point (the project's owner rule)."""
    answer: list[str | None] = []
    for x, y in points:
        point = shapely.Point(x, y)
        covering = sorted(code for code, g in geoms.items() if g.covers(point))
        answer.append(covering[0] if covering else None)
    return answer


def _propose(city: City, features: list[dict[str, Any]], retire: list[str] | None = None,
             reason: str = "test change", base: int | None = None) -> httpx.Response:
    body = {"base_version": city.version() if base is None else base, "reason": reason,
            "features": {"type": "FeatureCollection", "features": features},
            "retire": retire or []}
    return city.client.post("/api/v1/grid-changes", json=body, headers=city.headers())


def test_only_planners_propose(city: City) -> None:
    assert city.client.post("/api/v1/grid-changes", json={}).status_code == 401
    answer = city.client.post("/api/v1/grid-changes", json={}, headers=city.headers("viewer"))
    assert answer.status_code == 403
    assert "planner" in answer.json()["message"]


def test_reshape_preview_commit_history_as_of_and_rollback(city: City) -> None:
    a, b = _neighbours(city)
    new_a, new_b, strip = _reshape(a, b)
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.union(a.geometry, b.geometry).bounds
    points = np.column_stack([rng.uniform(minx, maxx, 400), rng.uniform(miny, maxy, 400)])
    before_geoms = {c: g for c, g in zip(city.small()["code"], city.small().geometry,
                                         strict=True)
                    if g.intersects(shapely.box(minx, miny, maxx, maxy))}
    owners = _owner(points, before_geoms)
    keep = [i for i, o in enumerate(owners) if o is not None]
    points = points[keep]
    owners = [o for o in owners if o is not None]
    status = ["open" if i % 2 == 0 else "closed" for i in range(len(points))]
    # The city's own sample events in the two grids change owner too: expected the same way.
    with city.engine.connect() as conn:
        sample = conn.execute(sa.text(
            "SELECT id, lon, lat, grid_code, status, route FROM event "
            "WHERE grid_code = ANY(:codes) ORDER BY id"), {"codes": [a.code, b.code]}).all()
    assert {r.route for r in sample} <= {"exact"}
    ids = _insert_events(city, points, owners, status, "reshape")
    after_geoms = {**before_geoms, a.code: new_a, b.code: new_b}
    expected_new = _owner(points, after_geoms)
    expected_moves = {ids[i]: (owners[i], expected_new[i]) for i in range(len(ids))
                      if owners[i] != expected_new[i]}
    assert expected_moves, "the strip must hold some of the test events"
    sample_new = _owner(np.array([[r.lon, r.lat] for r in sample]), after_geoms)
    sample_moves = {r.id: (r.grid_code, new) for r, new in zip(sample, sample_new, strict=True)
                    if new != r.grid_code}
    sample_open = sum(1 for r in sample if r.id in sample_moves
                      and r.status in ("open", "in_progress"))
    assert {v for v in expected_moves.values()} == {(a.code, b.code)}
    assert {v for v in sample_moves.values()} <= {(a.code, b.code)}
    before = city.version()
    answer = _propose(city, [_feature(a, new_a), _feature(b, new_b)], reason="新楼盘划界")
    assert answer.status_code == 201, answer.text
    proposal = answer.json()
    assert proposal["kind"] == "reshape"
    assert proposal["changed"] == sorted([a.code, b.code])
    impact = proposal["impact"]
    assert {e["id"]: (e["from"], e["to"]) for e in impact["events"]} == \
        {**expected_moves, **sample_moves}
    opened = sum(1 for i in expected_moves if status[ids.index(i)] == "open")
    assert impact["open_events_moving"] == opened + sample_open
    assert impact["historical_events_moving"] == \
        len(expected_moves) + len(sample_moves) - opened - sample_open
    assert {w["grid_code"] for w in impact["gridworkers"]} <= {a.code, b.code}
    area = {x["code"]: x for x in impact["areas"]}
    assert area[a.code]["after_m2"] < area[a.code]["before_m2"]
    assert city.version() == before, "a proposal changes nothing until it is committed"

    committed = city.client.post(f"/api/v1/grid-changes/{proposal['id']}/commit",
                                 headers=city.headers())
    assert committed.status_code == 200, committed.text
    result = committed.json()
    assert result["version"] == before + 1
    assert result["events_moved"] == opened + sample_open
    with city.engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, grid_code FROM event WHERE id = ANY(:ids)"),
                                   {"ids": ids}).all())
    for i, event_id in enumerate(ids):
        moved = event_id in expected_moves and status[i] == "open"
        assert stored[event_id] == (expected_new[i] if moved else owners[i]), event_id

    inside = shapely.point_on_surface(strip)
    located = city.client.get("/api/v1/locate", params={"lon": inside.x, "lat": inside.y})
    assert located.json()["small"]["code"] == b.code
    assert located.json()["grid_version"] == before + 1
    history = city.client.get(f"/api/v1/grids/{a.code}/history").json()["versions"]
    assert [(v["version_from"], v["version_to"]) for v in history] == [(1, before + 1),
                                                                       (before + 1, None)]
    assert history[1]["reason"] == "新楼盘划界"
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    old = city.client.get("/api/v1/locate", params={"lon": inside.x, "lat": inside.y,
                                                     "at": yesterday})
    assert old.status_code == 200, old.text
    assert old.json()["small"]["code"] == a.code

    undone = city.client.post(f"/api/v1/grid-changes/{proposal['id']}/rollback",
                              params={"reason": "划错了"}, headers=city.headers())
    assert undone.status_code == 201, undone.text
    assert undone.json()["version"] == before + 2
    located = city.client.get("/api/v1/locate", params={"lon": inside.x, "lat": inside.y})
    assert located.json()["small"]["code"] == a.code
    with city.engine.connect() as conn:
        restored = dict(conn.execute(sa.text(
            "SELECT id, grid_code FROM event WHERE id = ANY(:ids)"), {"ids": ids}).all())
    assert restored == dict(zip(ids, owners, strict=True))
    again = city.client.post(f"/api/v1/grid-changes/{proposal['id']}/rollback",
                             params={"reason": "again"}, headers=city.headers())
    assert again.status_code == 409


def _unchanged(city: City) -> tuple[int, int, int]:
    return (city.version(), city.count("SELECT count(*) FROM grid_change"),
            city.count("SELECT count(*) FROM grid"))


@pytest.mark.parametrize("fault", ["overlap", "gap", "code", "outside_parent"])
def test_unsound_proposals_are_refused_with_their_fault(city: City, fault: str) -> None:
    a, b = _neighbours(city)
    new_a, new_b, _ = _reshape(a, b)
    features = {
        "overlap": [_feature(b, new_b)],
        "gap": [_feature(a, new_a)],
        "code": [_feature(a, a.geometry, code="620999999999001")],
        "outside_parent": [_feature(a, a.geometry.buffer(0.01, quad_segs=2))],
    }[fault]
    before = _unchanged(city)
    answer = _propose(city, features)
    assert answer.status_code == 422, answer.text
    if fault == "code":  # refused by the feature checks a grid file gets, before any topology
        details = answer.json()["details"]
        assert {"feature": "feature 0 (code 620999999999001)",
                "problem": f"code 620999999999001 does not start with its parent's code "
                           f"{a.parent_code}"} in details
    else:
        kinds = {d["kind"] for d in answer.json()["details"]}
        assert fault in kinds, answer.json()
    assert _unchanged(city) == before


def test_bad_proposal_input_answers_4xx(city: City) -> None:
    headers = {**city.headers(), "Content-Type": "application/json"}
    assert city.client.post("/api/v1/grid-changes", content=b"{", headers=headers
                            ).status_code == 400
    no_base = city.client.post("/api/v1/grid-changes", json={"reason": "x", "retire": ["1"]},
                               headers=city.headers())
    assert no_base.status_code == 422 and "base_version" in no_base.json()["message"]
    unknown = _propose(city, [], retire=["620102999999999"])
    assert unknown.status_code == 422 and "620102999999999" in unknown.json()["message"]
    a, _ = _neighbours(city)
    with_z = _feature(a, shapely.force_3d(a.geometry))
    assert _propose(city, [with_z]).status_code == 422
    assert city.client.post("/api/v1/grid-changes/999999/commit",
                            headers=city.headers()).status_code == 404


def test_stale_proposal_is_refused_with_what_changed(city: City) -> None:
    a, b = _neighbours(city)
    new_a, new_b, _ = _reshape(a, b, width=0.0008)
    first = _propose(city, [_feature(a, new_a), _feature(b, new_b)], reason="first")
    second = _propose(city, [_feature(a, new_a), _feature(b, new_b)], reason="second")
    assert first.status_code == second.status_code == 201
    ok = city.client.post(f"/api/v1/grid-changes/{first.json()['id']}/commit",
                          headers=city.headers())
    assert ok.status_code == 200
    late = city.client.post(f"/api/v1/grid-changes/{second.json()['id']}/commit",
                            headers=city.headers())
    assert late.status_code == 409
    assert "first" in late.json()["message"]
    stale = _propose(city, [_feature(a, a.geometry)], base=ok.json()["version"] - 1)
    assert stale.status_code == 409
    undo = city.client.post(f"/api/v1/grid-changes/{first.json()['id']}/rollback",
                            params={"reason": "restore"}, headers=city.headers())
    assert undo.status_code == 201


def test_split_merge_and_carve_out_keep_the_tiling(city: City) -> None:
    a, b = _neighbours(city)
    small_before = city.count("SELECT count(*) FROM grid_current WHERE level = 'small'")
    minx, miny, maxx, maxy = a.geometry.bounds
    middle = (minx + maxx) / 2
    cut = LineString([(middle, miny - 1), (middle, maxy + 1)])
    halves = sorted(shapely.get_parts(shapely.ops.split(a.geometry, cut)),
                    key=lambda g: g.centroid.x)
    west = shapely.union_all(halves[:1])
    east = shapely.union_all(halves[1:])
    code_1, code_2 = a.parent_code + "901", a.parent_code + "902"
    split = _propose(city, [_feature(a, west, code=code_1, name="拆分一"),
                            _feature(a, east, code=code_2, name="拆分二")], retire=[a.code])
    assert split.status_code == 201, split.text
    assert split.json()["kind"] == "split"
    done = city.client.post(f"/api/v1/grid-changes/{split.json()['id']}/commit",
                            headers=city.headers())
    assert done.status_code == 200, done.text
    assert city.count("SELECT count(*) FROM grid_current WHERE level = 'small'") == \
        small_before + 1
    # The commit recoloured what it touched: the retired grid left the layer, the new ones came.
    assert city.count(f"SELECT count(*) FROM grid_colour WHERE code = '{a.code}'") == 0
    assert city.count("SELECT count(*) FROM grid_colour WHERE code IN "
                      f"('{code_1}', '{code_2}')") == 2
    assert city.count("SELECT count(*) FROM grid_colour") == \
        city.count("SELECT count(*) FROM grid_current")

    merge = _propose(city, [_feature(a, shapely.union(west, east), code=code_1, name="合并")],
                     retire=[code_2])
    assert merge.status_code == 201, merge.text
    assert merge.json()["kind"] == "merge"
    assert city.client.post(f"/api/v1/grid-changes/{merge.json()['id']}/commit",
                            headers=city.headers()).status_code == 200
    assert city.count("SELECT count(*) FROM grid_current WHERE level = 'small'") == small_before

    small = city.small()
    merged, other = small.loc[code_1], small.loc[b.code]
    market = shapely.intersection(shapely.union(merged.geometry, other.geometry),
                                  shapely.box(*shared_box(merged.geometry, other.geometry)))
    carve = _propose(city, [
        _feature(merged, merged.geometry.difference(market)),
        _feature(other, other.geometry.difference(market)),
        _feature(merged, market, code=a.parent_code + "903", name="农贸市场", kind="dedicated"),
    ])
    assert carve.status_code == 201, carve.text
    assert carve.json()["kind"] == "carve_out"
    assert city.client.post(f"/api/v1/grid-changes/{carve.json()['id']}/commit",
                            headers=city.headers()).status_code == 200
    kinds = city.count("SELECT count(*) FROM grid_current WHERE code = "
                       f"'{a.parent_code}903' AND kind = 'dedicated'")
    assert kinds == 1
    assert city.count("SELECT count(*) FROM grid_current WHERE level = 'small'") == \
        small_before + 1


def shared_box(g1: Any, g2: Any) -> tuple[float, float, float, float]:
    """A small box around the middle of the edge two grids share."""
    shared = shapely.intersection(g1.boundary, g2.boundary)
    middle = shapely.line_interpolate_point(shapely.line_merge(shared), 0.5, normalized=True) \
        if shared.geom_type != "Point" else shared
    d = 0.0008
    return (middle.x - d, middle.y - d, middle.x + d, middle.y + d)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_another_worker_process_follows_a_commit(city: City, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "MINQING_DB_URL": city.database.url}
    code = ("import uvicorn; from api.app import create_app; "
            f"uvicorn.run(create_app(), host='127.0.0.1', port={port}, log_level='warning')")
    worker = subprocess.Popen([sys.executable, "-c", code], cwd=PROJECT_ROOT, env=env,
                              stdout=(tmp_path / "worker.log").open("wb"),
                              stderr=subprocess.STDOUT)
    try:
        a, b = _neighbours(city)
        new_a, new_b, strip = _reshape(a, b, width=0.0005)
        inside = shapely.point_on_surface(strip)
        url = f"http://127.0.0.1:{port}/api/v1/locate"
        params = {"lon": inside.x, "lat": inside.y}
        deadline = time.monotonic() + 120
        while True:
            try:
                first = httpx.get(url, params=params, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the second worker did not start"
                time.sleep(0.5)
        assert first.json()["small"]["code"] == a.code
        proposal = _propose(city, [_feature(a, new_a), _feature(b, new_b)])
        done = city.client.post(f"/api/v1/grid-changes/{proposal.json()['id']}/commit",
                                headers=city.headers()).json()
        deadline = time.monotonic() + 30
        while True:
            # A worker rebuilding its index answers slower for a moment; it must still answer.
            seen = httpx.get(url, params=params, timeout=15).json()
            if seen["grid_version"] == done["version"]:
                break
            assert time.monotonic() < deadline, f"the worker still answers {seen}"
            time.sleep(0.2)
        assert seen["small"]["code"] == b.code
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def test_change_list_and_detail(city: City) -> None:
    listed = city.client.get("/api/v1/grid-changes", headers=city.headers()).json()["changes"]
    assert len(listed) == city.count("SELECT count(*) FROM grid_change")
    assert [c["id"] for c in listed] == sorted((c["id"] for c in listed), reverse=True)
    detail = city.client.get(f"/api/v1/grid-changes/{listed[0]['id']}", headers=city.headers())
    assert detail.status_code == 200
    assert detail.json()["id"] == listed[0]["id"]
    assert detail.json()["status"] in ("proposed", "committed", "rolled_back")
    assert set(detail.json()["impact"]) >= {"events_moving", "by_grid", "areas", "gridworkers"}


def test_cli_proposes_a_qgis_geopackage_and_commits_it(city: City, tmp_path: Path) -> None:
    import geopandas as gpd
    from typer.testing import CliRunner

    from api.cli import app

    a, b = _neighbours(city)
    new_a, new_b, _ = _reshape(a, b, width=0.0006)
    features = [_feature(a, new_a), _feature(b, new_b)]
    frame = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326")
    path = tmp_path / "reshape.gpkg"
    frame.to_file(path, layer="small", driver="GPKG")
    before = city.version()
    result = CliRunner().invoke(
        app, ["grids", "propose", str(path), "--reason", "QGIS 调整", "--commit"],
        env={"MINQING_DB_URL": city.database.url})
    assert result.exit_code == 0, result.output
    assert city.version() == before + 1
    history = CliRunner().invoke(app, ["grids", "history", a.code],
                                 env={"MINQING_DB_URL": city.database.url})
    assert "QGIS 调整" in history.output
