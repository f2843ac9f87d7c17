"""The layer endpoints on a scratch copy of the city: summary, heat, grid card, pins, warnings.

Events are inserted straight into the table around the real clock (the routes compute as of now).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
import sqlalchemy as sa
from fastapi.testclient import TestClient
from layer_cases import Ev, insert_events

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token, mask_phone
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine

ROLES = ("viewer", "command", "admin", "planner")


class City:
    """A loaded scratch city, an app on it and a token per role."""

    def __init__(self, client: TestClient, engine: sa.Engine, tokens: dict[str, str],
                 now: dt.datetime, events: list[Ev]) -> None:
        self.client, self.engine, self.tokens, self.now, self.events = (
            client, engine, tokens, now, events)

    def headers(self, role: str) -> dict[str, str]:
        """Authorization header of a role."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value."""
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()


def _smalls(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            """SELECT code FROM grid_current WHERE level = 'small' AND kind = 'urban'
               ORDER BY code LIMIT 40""")).scalars())


@pytest.fixture(scope="module")
def city(grids_module_database: Database) -> Iterator[City]:
    engine = create_engine(grids_module_database)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        tokens = {role: issue_token(conn, f"test {role}", role) for role in ROLES}
    smalls = _smalls(engine)
    events = [Ev(smalls[0], "矛盾纠纷", 4, "open", days_ago=d, due_in_days=0.1)
              for d in (0.5, 1.5, 2.5)]
    events += [Ev(smalls[1], "环境卫生", 1, "closed", days_ago=d + 0.5) for d in range(0, 40, 3)]
    # A spike for the warning: a steady one a day for 28 days, then nine in the last hours.
    events += [Ev(smalls[2], "噪音扰民", days_ago=d + 1.5) for d in range(28)]
    events += [Ev(smalls[2], "噪音扰民", days_ago=0.02 * (i + 1)) for i in range(9)]
    with engine.begin() as conn:
        insert_events(conn, events, now, "api")
    settings = Settings(db=DatabaseSettings(url=grids_module_database.url))
    with TestClient(create_app(settings)) as client:
        yield City(client, engine, tokens, now, events)
    engine.dispose()


@pytest.fixture(scope="module")
def refreshed(city: City) -> dict[str, Any]:
    answer = city.client.post("/api/v1/layers/refresh", headers=city.headers("admin"))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_only_admins_refresh(city: City) -> None:
    assert city.client.post("/api/v1/layers/refresh").status_code == 401
    for role in ("viewer", "command", "planner"):
        answer = city.client.post("/api/v1/layers/refresh", headers=city.headers(role))
        assert answer.status_code == 403, role
        assert "admin" in answer.json()["message"]


def test_refresh_answers_what_it_did(refreshed: dict[str, Any]) -> None:
    assert refreshed["full"] is True
    assert refreshed["grids"] == 7507 + 1086 + 110
    assert refreshed["warnings"] == 1
    assert refreshed["changed"] is True


def test_summary_counts_every_grid_per_district(city: City, refreshed: dict[str, Any],
                                               fixture_dir: Path) -> None:
    manifest = json.loads((fixture_dir / "manifest.json").read_text(encoding="utf-8"))
    answer = city.client.get("/api/v1/layers/summary")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["window_days"] == 7
    for level, total in (("large", 110), ("medium", 1086), ("small", 7507)):
        counts = body["totals"][level]
        assert counts["red"] + counts["yellow"] + counts["blue"] == total
    for district in body["districts"]:
        small = district["levels"]["small"]
        assert small["red"] + small["yellow"] + small["blue"] == \
            manifest["districts"][district["code"]]["small"]
    red = city.scalar("SELECT count(*) FROM grid_colour WHERE level = 'small' AND colour = 'red'")
    assert body["totals"]["small"]["red"] == red == 1  # only the grid with three overdue disputes
    week = sum(1 for e in city.events if e.days_ago <= 7)
    month = sum(1 for e in city.events if e.days_ago <= 30)
    assert body["totals"]["small"]["events"] == week
    one = city.client.get("/api/v1/layers/summary",
                          params={"district": "620102", "window": "30d", "level": "small"})
    assert one.status_code == 200
    assert [d["code"] for d in one.json()["districts"]] == ["620102"]
    assert list(one.json()["districts"][0]["levels"]) == ["small"]
    assert one.json()["totals"]["small"]["events"] == month


@pytest.mark.parametrize(("params", "message"), [
    ({"window": "14d"}, "window must be 7d or 30d"),
    ({"window": "week"}, "window must be 7d or 30d"),
    ({"level": "tiny"}, "level must be large, medium or small"),
    ({"district": "62a"}, "district must be a 6-digit county code"),
])
def test_summary_refuses_bad_filters(city: City, params: dict[str, str], message: str) -> None:
    answer = city.client.get("/api/v1/layers/summary", params=params)
    assert answer.status_code == 422
    assert message in answer.json()["message"]


def test_grid_card_shows_phones_by_role_and_the_trend(city: City, refreshed: dict[str, Any],
                                                      fixture_dir: Path) -> None:
    code = _smalls(city.engine)[0]
    with (fixture_dir / "gridworkers.csv").open(encoding="utf-8", newline="") as handle:
        workers = [w for w in csv.DictReader(handle) if w["grid_code"] == code]
    assert workers
    public = city.client.get(f"/api/v1/grids/{code}")
    assert public.status_code == 200, public.text
    card = public.json()
    assert (card["code"], card["level"], card["kind"]) == (code, "small", "urban")
    assert card["parent"]["code"] == code[:12]
    assert card["district"]["code"] == code[:6]
    assert [w["phone"] for w in card["gridworkers"]] == [mask_phone(w["phone"]) for w in workers]
    staff = city.client.get(f"/api/v1/grids/{code}", headers=city.headers("viewer")).json()
    assert [w["phone"] for w in staff["gridworkers"]] == [w["phone"] for w in workers]
    assert (card["colour"], card["pinned"], card["open_events"], card["overdue_events"]) == (
        "red", False, 3, 3)
    assert len(card["open_event_list"]) == 3 and all(e["overdue"] for e in card["open_event_list"])
    assert len(card["trend"]) == 30
    beijing = dt.timezone(dt.timedelta(hours=8))
    days = Counter((city.now - dt.timedelta(days=e.days_ago)).astimezone(beijing).date()
                   .isoformat() for e in city.events if e.code == code)
    assert {t["day"]: t["events"] for t in card["trend"] if t["events"]} == dict(days)
    medium = city.client.get(f"/api/v1/grids/{code[:12]}").json()
    assert medium["level"] == "medium" and medium["gridworkers"] == []
    assert sum(medium["children"].values()) == city.scalar(
        "SELECT count(*) FROM grid_current WHERE parent_code = :p", p=code[:12])


@pytest.mark.parametrize(("path", "status", "message"), [
    ("/api/v1/grids/620102999999999", 404, "no current grid 620102999999999"),
    ("/api/v1/grids/12ab", 422, "is not a grid code"),
    ("/api/v1/grids/620102999999999/colour-history", 404, "no current grid"),
])
def test_unknown_and_malformed_codes(city: City, path: str, status: int, message: str) -> None:
    answer = city.client.get(path)
    assert answer.status_code == status
    assert message in answer.json()["message"]


def test_pins_need_command_staff_and_valid_expiry(city: City, refreshed: dict[str, Any]) -> None:
    code = _smalls(city.engine)[0]
    body = {"colour": "blue", "reason": "已约谈当事人", "hours": 2}
    assert city.client.post(f"/api/v1/grids/{code}/pin", json=body).status_code == 401
    viewer = city.client.post(f"/api/v1/grids/{code}/pin", json=body,
                              headers=city.headers("viewer"))
    assert viewer.status_code == 403 and "command" in viewer.json()["message"]
    past = (city.now - dt.timedelta(hours=1)).isoformat()
    far = (dt.datetime.now(dt.UTC) + dt.timedelta(days=200)).isoformat()
    for bad, message in [
        ({**body, "hours": None, "expires_at": past}, "is not in the future"),
        ({**body, "hours": None, "expires_at": far}, "a pin lasts at most 90 days"),
        ({**body, "hours": None, "expires_at": "2026-12-31T18:00:00"}, "needs a time zone"),
        ({**body, "expires_at": far}, "exactly one of expires_at or hours"),
        ({**body, "colour": "green"}, "colour"),
        ({**body, "reason": ""}, "reason"),
    ]:
        answer = city.client.post(f"/api/v1/grids/{code}/pin", json=bad,
                                  headers=city.headers("command"))
        assert answer.status_code == 422, bad
        assert message in answer.json()["message"], answer.json()
    assert city.client.post("/api/v1/grids/620102999999999/pin", json=body,
                            headers=city.headers("command")).status_code == 404
    pinned = city.client.post(f"/api/v1/grids/{code}/pin", json=body,
                              headers=city.headers("command"))
    assert pinned.status_code == 201, pinned.text
    assert pinned.json()["pin"]["colour"] == "blue"
    card = city.client.get(f"/api/v1/grids/{code}").json()
    assert (card["colour"], card["computed_colour"], card["pinned"]) == ("blue", "red", True)
    assert card["pin"]["reason"] == "已约谈当事人" and card["pin"]["pinned_by"] == "test command"
    summary = city.client.get("/api/v1/layers/summary").json()["totals"]["small"]
    assert (summary["red"], summary["pinned"]) == (0, 1)
    released = city.client.delete(f"/api/v1/grids/{code}/pin", headers=city.headers("command"))
    assert released.status_code == 200
    again = city.client.delete(f"/api/v1/grids/{code}/pin", headers=city.headers("command"))
    assert again.status_code == 404 and "no live pin" in again.json()["message"]
    assert city.client.get(f"/api/v1/grids/{code}").json()["colour"] == "red"
    history = city.client.get(f"/api/v1/grids/{code}/colour-history").json()["changes"]
    assert [(h["old_colour"], h["new_colour"]) for h in history] == [
        ("blue", "red"), ("red", "blue"), (None, "red")]
    assert history[0]["why"].startswith("pin released by test command")


def test_heat_cells_count_the_window_events(city: City, refreshed: dict[str, Any]) -> None:
    answer = city.client.get("/api/v1/layers/heat", params={"window": "30d"})
    assert answer.status_code == 200, answer.text
    cells = answer.json()
    month = sum(1 for e in city.events if e.days_ago <= 30)
    assert sum(f["properties"]["events"] for f in cells["features"]) == month
    with city.engine.connect() as conn:
        points = [shapely.Point(x, y) for x, y in conn.execute(sa.text(
            "SELECT lon, lat FROM event WHERE reported_at > now() - interval '30 days'"))]
    for feature in cells["features"]:
        hexagon = shapely.geometry.shape(feature["geometry"])
        assert len(hexagon.exterior.coords) == 7  # six corners, closed
        inside = sum(1 for p in points if hexagon.covers(p))
        assert inside >= feature["properties"]["events"]
    noise = city.client.get("/api/v1/layers/heat", params={
        "window": "7d", "category": "噪音扰民", "shape": "square", "size": 500}).json()
    assert sum(f["properties"]["events"] for f in noise["features"]) == sum(
        1 for e in city.events if e.category == "噪音扰民" and e.days_ago <= 7)
    far = city.client.get("/api/v1/layers/heat", params={"bbox": "100,30,100.5,30.5"}).json()
    assert far["features"] == []


@pytest.mark.parametrize("params", [{"bbox": "1,2,3"}, {"bbox": "104,36,103,37"},
                                    {"bbox": "a,b,c,d"}, {"window": "1d"}, {"size": 5},
                                    {"shape": "circle"}])
def test_heat_refuses_bad_parameters(city: City, params: dict[str, Any]) -> None:
    assert city.client.get("/api/v1/layers/heat", params=params).status_code == 422


def test_warnings_list_the_spike(city: City, refreshed: dict[str, Any]) -> None:
    spike = _smalls(city.engine)[2]
    answer = city.client.get("/api/v1/warnings")
    assert answer.status_code == 200
    found = answer.json()["warnings"]
    assert [(w["code"], w["category"], w["observed"], w["baseline_events"]) for w in found] == [
        (spike, "噪音扰民", 9, 28)]
    assert found[0]["p_value"] < 0.001
    assert city.client.get("/api/v1/warnings", params={"district": "620103"}
                           ).json()["warnings"] == ([] if spike[:6] != "620103" else found)
    assert city.client.get("/api/v1/warnings", params={"code": spike[:9]}
                           ).json()["warnings"] == found
    assert city.client.get("/api/v1/warnings", params={"code": "12"}).status_code == 422
