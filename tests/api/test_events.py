"""The events API: filters and paging on the loaded city, writes on a scratch city.

Expected counts come from events.csv with pandas (tests/event_truth.py), not from the service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from event_truth import fixture_events
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token, mask_phone
from gis.grid_snapshot import load_snapshot
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine

BEIJING = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def truth(fixture_dir: Path) -> pd.DataFrame:
    return fixture_events(fixture_dir)


@pytest.fixture(scope="module")
def busy_grid(truth: pd.DataFrame) -> str:
    """The small grid with the most fixture events (lowest code among equals)."""
    counts = truth[truth["owner"] != ""].groupby("owner").size()
    return str(counts[counts == counts.max()].index.min())


@pytest.fixture(scope="module")
def tokens(engine: Engine, busy_grid: str) -> dict[str, str]:
    with engine.begin() as conn:
        made = {role: issue_token(conn, f"events test {role}", role)
                for role in ("viewer", "planner", "admin", "ingest")}
        made["gridworker"] = issue_token(conn, "events test gridworker", "gridworker", busy_grid)
    return made


def _as(tokens: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def _total(client: TestClient, tokens: dict[str, str], path: str = "/api/v1/events",
           **params: Any) -> int:
    answer = client.get(path, params={**params, "total": "true", "limit": 1},
                        headers=_as(tokens, "viewer"))
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def test_reading_events_needs_a_role_that_may(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/api/v1/events/unrouted").status_code == 401
    refused = client.get("/api/v1/events", headers=_as(tokens, "ingest"))
    assert refused.status_code == 403 and "viewer" in refused.json()["message"]


def test_filters_match_counts_from_the_fixture(client: TestClient, tokens: dict[str, str],
                                               truth: pd.DataFrame, busy_grid: str) -> None:
    owner = truth["owner"]
    checks: list[tuple[dict[str, Any], pd.Series]] = [
        ({"grid": busy_grid[:9]}, owner.str.startswith(busy_grid[:9])),
        ({"grid": busy_grid[:12]}, owner.str.startswith(busy_grid[:12])),
        ({"grid": busy_grid}, owner == busy_grid),
        ({"district": "620102"}, owner.str.startswith("620102")),
        ({"district": "620123"}, owner.str.startswith("620123")),
        ({"category": "劳资欠薪"}, truth["category"] == "劳资欠薪"),
        ({"category": "逾期交房,拆迁安置"}, truth["category"].isin(["逾期交房", "拆迁安置"])),
        ({"source": "信访", "status": "open"},
         (truth["source"] == "信访") & (truth["status"] == "open")),
        ({"from": "2026-10-01", "to": "2026-10-08"},
         truth["reported_at"].between(pd.Timestamp("2026-09-30T16:00Z"),
                                      pd.Timestamp("2026-10-07T16:00Z"), inclusive="left")),
        ({"from": "2026-11-01T12:00:00+08:00"},
         truth["reported_at"] >= pd.Timestamp("2026-11-01T04:00Z")),
        ({"grid": busy_grid[:9], "category": "环境卫生", "status": "closed,resolved"},
         owner.str.startswith(busy_grid[:9]) & (truth["category"] == "环境卫生")
         & truth["status"].isin(["closed", "resolved"])),
    ]
    for params, expected in checks:
        assert _total(client, tokens, **params) == int(expected.sum()), params
    x0, y0, x1, y1 = 103.80, 36.03, 103.86, 36.07
    lon, lat = truth["true_lon"].astype(float), truth["true_lat"].astype(float)
    inside = lon.between(x0, x1) & lat.between(y0, y1)
    assert _total(client, tokens, bbox=f"{x0},{y0},{x1},{y1}") == int(inside.sum())


def test_overdue_is_unresolved_past_its_due_time(client: TestClient, tokens: dict[str, str],
                                                 truth: pd.DataFrame) -> None:
    unresolved = truth["status"].isin(["open", "in_progress"])
    before = pd.Timestamp.now(tz="UTC")
    got = _total(client, tokens, overdue="true")
    not_overdue = _total(client, tokens, overdue="false")
    after = pd.Timestamp.now(tz="UTC")
    low = int((unresolved & (truth["due_at"] < before)).sum())
    high = int((unresolved & (truth["due_at"] < after)).sum())
    assert low <= got <= high and low > 0
    assert got + not_overdue == 30000
    page = client.get("/api/v1/events", params={"overdue": "true", "limit": 20},
                      headers=_as(tokens, "viewer")).json()["events"]
    assert all(e["overdue"] and e["status"] in ("open", "in_progress") for e in page)


def test_paging_walks_every_match_once(client: TestClient, tokens: dict[str, str],
                                       truth: pd.DataFrame, busy_grid: str) -> None:
    medium = busy_grid[:12]
    expected = set(truth.loc[truth["owner"].str.startswith(medium), "source_id"])
    url: str | None = f"/api/v1/events?grid={medium}&limit=37"
    seen: list[str] = []
    stamps: list[tuple[str, int]] = []
    while url:
        page = client.get(url, headers=_as(tokens, "viewer")).json()
        seen += [e["source_id"] for e in page["events"]]
        stamps += [(e["reported_at"], e["id"]) for e in page["events"]]
        url = page["next"]
    assert len(seen) == len(set(seen)) == len(expected) and set(seen) == expected
    assert [dt.datetime.fromisoformat(s) for s, _ in stamps] == sorted(
        (dt.datetime.fromisoformat(s) for s, _ in stamps), reverse=True)


def test_unrouted_list_holds_the_events_outside_the_city(client: TestClient,
                                                         tokens: dict[str, str],
                                                         truth: pd.DataFrame) -> None:
    expected = set(truth.loc[truth["route"] == "unrouted", "source_id"])
    answer = client.get("/api/v1/events/unrouted", params={"limit": 1000, "total": "true"},
                        headers=_as(tokens, "viewer")).json()
    assert answer["total"] == len(expected) == 297
    assert {e["source_id"] for e in answer["events"]} == expected
    assert all(e["grid"] is None and "outside every grid" in e["route_note"]
               for e in answer["events"])
    snapped = client.get("/api/v1/events", params={"route": "snapped"},
                         headers=_as(tokens, "viewer")).json()["events"]
    want = truth[truth["route"] == "snapped"].set_index("source_id")
    assert {e["source_id"]: e["grid"]["small"] for e in snapped} == want["owner"].to_dict()
    for e in snapped:
        assert abs(e["snap_distance_m"] - want.loc[e["source_id"], "nearest_m"]) < 1.0


def _first(client: TestClient, tokens: dict[str, str], **params: Any) -> dict[str, Any]:
    page = client.get("/api/v1/events", params={**params, "limit": 1},
                      headers=_as(tokens, "admin")).json()
    return dict(page["events"][0])


def test_personal_data_only_for_roles_that_may_see_it(client: TestClient,
                                                      tokens: dict[str, str],
                                                      busy_grid: str) -> None:
    mine = _first(client, tokens, grid=busy_grid)
    other = _first(client, tokens, district="620123")
    assert mine["reporter_name"] and mine["reporter_phone"] and mine["text"]

    def seen(role: str, event: dict[str, Any]) -> dict[str, Any]:
        answer = client.get(f"/api/v1/events/{event['id']}", headers=_as(tokens, role))
        assert answer.status_code == 200
        return dict(answer.json())

    for event in (mine, other):
        viewer = seen("viewer", event)
        assert "reporter_name" not in viewer and viewer["text"] == event["text"]
        assert viewer["reporter_phone"] == mask_phone(event["reporter_phone"])
        assert event["reporter_phone"] not in str(viewer)
        planner = seen("planner", event)
        assert not {"reporter_name", "reporter_phone", "text"} & set(planner)
        assert event["reporter_phone"] not in str(planner)
    own = seen("gridworker", mine)
    assert (own["reporter_name"], own["reporter_phone"], own["text"]) == \
        (mine["reporter_name"], mine["reporter_phone"], mine["text"])
    elsewhere = seen("gridworker", other)
    assert not {"reporter_name", "reporter_phone", "text"} & set(elsewhere)
    listed = client.get("/api/v1/events", params={"district": "620123", "limit": 50},
                        headers=_as(tokens, "planner")).json()["events"]
    assert len(listed) == 50 and not any({"reporter_name", "reporter_phone", "text"} & set(e)
                                         for e in listed)


def test_geojson_listing(client: TestClient, tokens: dict[str, str], busy_grid: str) -> None:
    answer = client.get("/api/v1/events", params={"grid": busy_grid, "f": "geojson",
                                                  "limit": 5}, headers=_as(tokens, "viewer"))
    body = answer.json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 5
    for feature in body["features"]:
        assert feature["geometry"]["type"] == "Point"
        assert feature["properties"]["grid"]["small"] == busy_grid


@pytest.mark.parametrize("params", [
    {"grid": "12345"}, {"district": "62"}, {"bbox": "1,2,3"}, {"after": "not-a-cursor"},
    {"category": "乱丢垃圾"}, {"from": "yesterday"}, {"limit": 0}, {"status": "done"},
    {"from": "2026-11-02", "to": "2026-11-01"},
])
def test_bad_list_parameters_answer_422(client: TestClient, tokens: dict[str, str],
                                        params: dict[str, Any]) -> None:
    answer = client.get("/api/v1/events", params=params, headers=_as(tokens, "viewer"))
    assert answer.status_code == 422, answer.text
    assert answer.json()["message"]


def test_missing_event_is_404(client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get("/api/v1/events/999999999", headers=_as(tokens, "viewer")).status_code \
        == 404


# ---- writes: a scratch city ----------------------------------------------------------------


class City:
    """A scratch city (grids, no events) with an app and a token per role."""

    def __init__(self, client: TestClient, engine: Engine, tokens: dict[str, str],
                 codes: list[str], points: dict[str, tuple[float, float]]) -> None:
        self.client, self.engine, self.tokens = client, engine, tokens
        self.codes, self.points = codes, points

    def headers(self, role: str) -> dict[str, str]:
        """Authorization header of a role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def event(self, source_id: str, code: str | None = None, **fields: Any) -> dict[str, Any]:
        """An event body placed inside ``code`` (the first grid by default)."""
        x, y = self.points[code or self.codes[0]]
        body = {"source": "12345", "source_id": source_id, "category": "安全隐患",
                "severity": 3, "reported_at": "2026-11-28T10:00:00+08:00", "lon": x, "lat": y,
                "reporter_name": "张三", "reporter_phone": "13912345678", "text": "井盖破损"}
        body.update(fields)
        return body


@pytest.fixture(scope="module")
def city(grids_module_database: Database) -> Iterator[City]:
    engine = create_engine(grids_module_database)
    with engine.begin() as conn:
        snapshot = load_snapshot(conn)
        codes = sorted(snapshot.index.codes)[:4]
        made = {role: issue_token(conn, f"w {role}", role)
                for role in ("viewer", "admin", "ingest")}
        made["gridworker"] = issue_token(conn, "w gridworker", "gridworker", codes[0])
    geoms = dict(zip(snapshot.index.codes, snapshot.index.geoms, strict=True))
    points = {c: (shapely.point_on_surface(geoms[c]).x, shapely.point_on_surface(geoms[c]).y)
              for c in codes}
    settings = Settings(db=DatabaseSettings(url=grids_module_database.url))
    with TestClient(create_app(settings)) as client:
        yield City(client, engine, made, codes, points)
    engine.dispose()


def test_post_one_is_201_then_200_already_had_it(city: City) -> None:
    body = city.event("API-ONE-1")
    first = city.client.post("/api/v1/events", json=body, headers=city.headers("ingest"))
    assert first.status_code == 201, first.text
    assert first.json()["result"] == "created" and first.json()["grid_code"] == city.codes[0]
    assert first.headers["Location"] == f"/api/v1/events/{first.json()['id']}"
    again = city.client.post("/api/v1/events", json=body, headers=city.headers("ingest"))
    assert again.status_code == 200
    assert (again.json()["result"], again.json()["id"]) == ("already had it", first.json()["id"])
    bad = city.client.post("/api/v1/events", json={**body, "severity": 7},
                           headers=city.headers("ingest"))
    assert bad.status_code == 422 and "severity" in bad.json()["message"]
    assert city.client.post("/api/v1/events", json=body).status_code == 401
    assert city.client.post("/api/v1/events", json=body,
                            headers=city.headers("viewer")).status_code == 403


def test_post_batch_json_and_geojson(city: City) -> None:
    rows = [city.event(f"API-B-{k}", city.codes[k % 3]) for k in range(6)]
    rows[4] = {**rows[4], "category": "不存在"}
    answer = city.client.post("/api/v1/events/batch", json=rows, headers=city.headers("ingest"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["created"], body["rejected"], body["already_had"]) == (5, 1, 0)
    assert [r["result"] for r in body["results"]] == ["created"] * 4 + ["rejected", "created"]
    assert "category" in body["results"][4]["reason"]
    retried = city.client.post("/api/v1/events/batch", json={"events": rows},
                               headers=city.headers("ingest")).json()
    assert (retried["created"], retried["already_had"], retried["rejected"]) == (0, 5, 1)
    x, y = city.points[city.codes[1]]
    features = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
         "properties": {k: v for k, v in city.event("API-G-1").items() if k not in ("lon", "lat")}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[x, y], [y, x]]},
         "properties": city.event("API-G-2")},
    ]}
    geo = city.client.post("/api/v1/events/batch", json=features,
                           headers=city.headers("ingest")).json()
    assert geo["results"][0]["grid_code"] == city.codes[1]
    assert geo["results"][1]["result"] == "rejected" and "Point" in geo["results"][1]["reason"]
    with city.engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT count(*) FROM event WHERE source_id LIKE 'API-B-%' OR source_id LIKE 'API-G-%'"
        )).scalar_one()
    assert stored == 6


def test_batch_limits_and_malformed_bodies(city: City) -> None:
    headers = city.headers("ingest")
    too_many = [city.event(f"X{k}") for k in range(10_001)]
    assert city.client.post("/api/v1/events/batch", json=too_many,
                            headers=headers).status_code == 413
    assert city.client.post("/api/v1/events/batch", json={"rows": []},
                            headers=headers).status_code == 400
    assert city.client.post("/api/v1/events/batch", json=[], headers=headers).status_code == 422
    broken = city.client.post("/api/v1/events/batch", content=b"[{",
                              headers={**headers, "Content-Type": "application/json"})
    assert broken.status_code == 400  # a body that cannot be read at all
    assert "not valid JSON" in broken.json()["message"]


def test_gridworker_posts_gridworker_reports_only(city: City) -> None:
    headers = city.headers("gridworker")
    hotline = city.client.post("/api/v1/events", json=city.event("API-GW-1"), headers=headers)
    assert hotline.status_code == 422 and "网格员上报" in hotline.json()["message"]
    own = city.client.post("/api/v1/events", json=city.event("API-GW-2", source="网格员上报"),
                           headers=headers)
    assert own.status_code == 201


def _post(city: City, source_id: str, **fields: Any) -> int:
    answer = city.client.post("/api/v1/events", json=city.event(source_id, **fields),
                              headers=city.headers("ingest"))
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_status_transitions_are_checked_and_recorded(city: City) -> None:
    event_id = _post(city, "API-ST-1")
    url = f"/api/v1/events/{event_id}"
    admin = city.headers("admin")
    for status in ("in_progress", "resolved", "in_progress", "closed"):
        answer = city.client.patch(url, json={"status": status}, headers=admin)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == status
    final = city.client.patch(url, json={"status": "open"}, headers=admin)
    assert final.status_code == 409 and "closed is final" in final.json()["message"]
    history = city.client.get(url, headers=admin).json()["status_history"]
    assert [(h["from"], h["to"], h["by"]) for h in history] == [
        ("open", "in_progress", "w admin"), ("in_progress", "resolved", "w admin"),
        ("resolved", "in_progress", "w admin"), ("in_progress", "closed", "w admin")]
    assert city.client.patch(url, json={"status": "done"}, headers=admin).status_code == 422
    assert city.client.patch(url, json={}, headers=admin).status_code == 422


def test_who_may_change_an_event(city: City) -> None:
    mine = _post(city, "API-R-1", code=city.codes[0])
    theirs = _post(city, "API-R-2", code=city.codes[1])
    assert city.client.patch(f"/api/v1/events/{mine}", json={"status": "in_progress"},
                             headers=city.headers("viewer")).status_code == 403
    assert city.client.patch(f"/api/v1/events/{theirs}", json={"status": "in_progress"},
                             headers=city.headers("gridworker")).status_code == 403
    ok = city.client.patch(f"/api/v1/events/{mine}", json={"status": "in_progress"},
                           headers=city.headers("gridworker"))
    assert ok.status_code == 200 and ok.json()["reporter_name"] == "张三"
    assert city.client.patch(f"/api/v1/events/{mine}", json={"grid_code": city.codes[1]},
                             headers=city.headers("gridworker")).status_code == 403


def test_unrouted_event_placed_by_hand(city: City) -> None:
    event_id = _post(city, "API-U-1", lon=101.3, lat=35.2)
    listed = city.client.get("/api/v1/events/unrouted", headers=city.headers("viewer")).json()
    assert event_id in [e["id"] for e in listed["events"]]
    bad = city.client.patch(f"/api/v1/events/{event_id}", json={"grid_code": "620102"},
                            headers=city.headers("admin"))
    assert bad.status_code == 422
    placed = city.client.patch(f"/api/v1/events/{event_id}",
                               json={"grid_code": city.codes[2]}, headers=city.headers("admin"))
    assert placed.status_code == 200, placed.text
    body = placed.json()
    assert (body["route"], body["grid"]["small"]) == ("manual", city.codes[2])
    assert body["route_note"].startswith("placed by hand by w admin (was unrouted")
    after = city.client.get("/api/v1/events/unrouted", headers=city.headers("viewer")).json()
    assert event_id not in [e["id"] for e in after["events"]]


def test_overdue_follows_due_time_and_status(city: City) -> None:
    past = (dt.datetime.now(BEIJING) - dt.timedelta(hours=2)).replace(microsecond=0)
    late = _post(city, "API-O-1", reported_at=(past - dt.timedelta(hours=3)).isoformat(),
                 due_at=past.isoformat(), code=city.codes[3])
    fresh = _post(city, "API-O-2", reported_at=past.isoformat(), severity=1, code=city.codes[3])
    admin = city.headers("admin")
    assert city.client.get(f"/api/v1/events/{late}", headers=admin).json()["overdue"] is True
    default_due = city.client.get(f"/api/v1/events/{fresh}", headers=admin).json()
    assert default_due["overdue"] is False
    assert dt.datetime.fromisoformat(default_due["due_at"]) == past + dt.timedelta(hours=360)
    listed = city.client.get("/api/v1/events", params={"overdue": "true", "grid": city.codes[3]},
                             headers=admin).json()["events"]
    assert [e["id"] for e in listed] == [late]
    city.client.patch(f"/api/v1/events/{late}", json={"status": "resolved"}, headers=admin)
    assert city.client.get(f"/api/v1/events/{late}", headers=admin).json()["overdue"] is False
