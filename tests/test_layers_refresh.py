"""Colours, roll-ups, pins, heat and warnings on a scratch copy of the city.

Every expectation is computed in the test from the rule file's numbers (tests/layer_cases.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from layer_cases import (
    NOW,
    Ev,
    colour_of,
    expected_score,
    insert_events,
    reset_layer,
    rollup_colour,
)

from gis.store import Database, create_engine
from layers.pins import pin_colour, release_pin
from layers.refresh import REFRESH_LOCK, RefreshResult, refresh_all, refresh_grids
from layers.refresher import PeriodicRefresh
from layers.rules import DEFAULT_RULES, LayerRules, load_rules, parse_rules

RULES = load_rules(DEFAULT_RULES)


@pytest.fixture(scope="module")
def engine(city_module_database: Database) -> Iterator[sa.Engine]:
    engine = create_engine(city_module_database)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.begin() as conn:
        reset_layer(conn)
    with engine.connect() as conn:
        yield conn
        conn.commit()


def _children(conn: sa.Connection, parent: str) -> list[str]:
    return list(conn.execute(sa.text(
        "SELECT code FROM grid_current WHERE parent_code = :p ORDER BY code"), {"p": parent}
    ).scalars())


def _family(conn: sa.Connection, at_least: int = 6) -> tuple[str, list[str]]:
    """The first medium grid (by code) with at least ``at_least`` small grids, and them."""
    medium = conn.execute(sa.text(
        """SELECT parent_code FROM grid_current WHERE level = 'small' GROUP BY parent_code
           HAVING count(*) >= :n ORDER BY parent_code LIMIT 1"""), {"n": at_least}).scalar_one()
    return medium, _children(conn, medium)


def _row(conn: sa.Connection, code: str) -> sa.Row:
    return conn.execute(sa.text("SELECT * FROM grid_colour WHERE code = :c"), {"c": code}).one()


def _variant(replace: dict[str, str], version: str) -> LayerRules:
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return parse_rules(text.replace('version: "2026.12-1"', f'version: "{version}"'))


def test_colours_match_the_rules_numbers_one_rule_at_a_time(conn: sa.Connection) -> None:
    _, small = _family(conn, 8)
    heavy = max(RULES.score.category_weights, key=lambda c: RULES.score.category_weights[c])
    cases = {
        # category weights (one unknown category: the default weight)
        small[0]: [Ev(small[0], heavy, days_ago=d) for d in (1, 2, 3)]
        + [Ev(small[0], "不在名单", days_ago=2)],
        # severity multipliers
        small[1]: [Ev(small[1], "环境卫生", severity=s, days_ago=1) for s in (1, 2, 3, 4, 4)],
        # unresolved, not yet due
        small[2]: [Ev(small[2], heavy, 2, "open", days_ago=1, due_in_days=5),
                   Ev(small[2], heavy, 2, "in_progress", days_ago=2, due_in_days=5)],
        # overdue, and an unresolved event older than the long window
        small[3]: [Ev(small[3], heavy, 3, "open", days_ago=3, due_in_days=1),
                   Ev(small[3], heavy, 2, "open", days_ago=45, due_in_days=3),
                   Ev(small[3], heavy, 1, "resolved", days_ago=45)],
        # windows: events only in the long window, one just inside, one just outside it
        small[4]: [Ev(small[4], heavy, 4, days_ago=d) for d in (8, 10, 15, 20, 29.9, 30.1)],
        # events after "now" do not count; no due time never makes an event overdue
        small[5]: [Ev(small[5], heavy, 4, "open", days_ago=-1),
                   Ev(small[5], heavy, 1, "open", days_ago=1, due_in_days=None)],
    }
    insert_events(conn, [e for evs in cases.values() for e in evs])
    result = refresh_all(conn, NOW, RULES)
    assert result.grids == 7507 + 1086 + 110
    seen = set()
    for code, events in cases.items():
        score, counts = expected_score(events, RULES)
        row = _row(conn, code)
        assert row.score == pytest.approx(score, abs=1e-6), code
        assert row.computed_colour == row.colour == colour_of(score, RULES), code
        assert (row.open_events, row.overdue_events, row.events_7d, row.events_30d) == (
            counts["open"], counts["overdue"], counts["short"], counts["long"]), code
        seen.add(colour_of(score, RULES))
    assert seen == {"red", "yellow", "blue"}, "the cases must reach every colour"
    others = conn.execute(sa.text(
        """SELECT count(*) FROM grid_colour WHERE level = 'small' AND score = 0
           AND colour = 'blue'""")).scalar_one()
    assert others == 7507 - sum(1 for evs in cases.values()
                                if expected_score(evs, RULES)[0] > 0)


def test_threshold_edges_and_a_new_rules_version_recolour(conn: sa.Connection) -> None:
    _, small = _family(conn)
    events = [Ev(small[0], "矛盾纠纷", 3, "open", days_ago=2, due_in_days=1),
              Ev(small[0], "安全隐患", 2, days_ago=3)]
    insert_events(conn, events)
    score, _ = expected_score(events, RULES)
    at_red = _variant({"  red: 36.0": f"  red: {score!r}", "  yellow: 15.0": "  yellow: 1.0"},
                      "edge-red")
    refresh_all(conn, NOW, at_red)
    assert _row(conn, small[0]).colour == "red"  # score == red threshold: red
    above = _variant({"  red: 36.0": f"  red: {score + 0.001!r}",
                      "  yellow: 15.0": f"  yellow: {score!r}"}, "edge-yellow")
    refresh_grids(conn, [small[0]], NOW, above)
    assert _row(conn, small[0]).colour == "yellow"
    blue = _variant({"  red: 36.0": f"  red: {score + 1!r}",
                     "  yellow: 15.0": f"  yellow: {score + 0.001!r}"}, "edge-blue")
    refresh_all(conn, NOW, blue)
    row = _row(conn, small[0])
    assert (row.colour, row.rules_version) == ("blue", "edge-blue")
    whys = conn.execute(sa.text(
        "SELECT old_colour, new_colour, why FROM colour_change WHERE code = :c ORDER BY id"),
        {"c": small[0]}).all()
    assert [(w.old_colour, w.new_colour) for w in whys] == [
        (None, "red"), ("red", "yellow"), ("yellow", "blue")]
    assert whys[1].why.startswith("rules edge-red -> edge-yellow; score")
    state = conn.execute(sa.text("SELECT rules_version FROM layer_state")).scalar_one()
    assert state == "edge-blue"


@pytest.mark.parametrize("rule", ["share_of_children", "worst_child"])
def test_roll_up_to_medium_and_large(conn: sa.Connection, rule: str) -> None:
    rules = RULES if rule == "share_of_children" else _variant(
        {"  rule: share_of_children": "  rule: worst_child", "  red_share: 0.2\n": "",
         "  yellow_share: 0.3\n": ""}, "worst")
    medium, small = _family(conn, 6)
    large = medium[:9]
    red_event = [Ev("", "矛盾纠纷", 4, "open", days_ago=1, due_in_days=0.5)] * 2
    yellow_event = [Ev("", "矛盾纠纷", 3, days_ago=1)] * 2
    plan = {small[0]: red_event, small[1]: yellow_event, small[2]: yellow_event}
    events = [Ev(code, e.category, e.severity, e.status, e.days_ago, e.due_in_days)
              for code, evs in plan.items() for e in evs]
    insert_events(conn, events)
    refresh_all(conn, NOW, rules)
    colours = [colour_of(expected_score([e for e in events if e.code == c], rules)[0], rules)
               for c in small]
    assert colours[:3] == ["red", "yellow", "yellow"]
    row = _row(conn, medium)
    assert (row.red_children, row.yellow_children, row.blue_children) == (
        1, 2, len(small) - 3)
    assert row.colour == rollup_colour(colours, rules)
    mediums = _children(conn, large)
    shown = dict(conn.execute(sa.text(
        "SELECT code, colour FROM grid_colour WHERE code = ANY(:c)"), {"c": mediums}).all())
    expected_medium = {m: (rollup_colour(colours, rules) if m == medium else "blue")
                       for m in mediums}
    assert shown == expected_medium
    assert _row(conn, large).colour == rollup_colour(list(expected_medium.values()), rules)
    assert _row(conn, large).red_children == list(expected_medium.values()).count("red")


def test_a_few_grids_refreshed_one_by_one_log_each_parent_once_and_equal_a_full_one(
        conn: sa.Connection) -> None:
    # A yellow and a red sibling and a pinned one, a cousin in another medium grid of the same
    # large one, and a third medium grid asked for by its code alone (its pin has expired):
    # statements of one grid each, each parent rolled up once, from its children's final rows
    # (worst child: the medium grid would be yellow after its first child alone, red after the
    # second, and the log would show it).
    rules = _variant({"  rule: share_of_children": "  rule: worst_child",
                      "  red_share: 0.2\n": "", "  yellow_share: 0.3\n": ""}, "worst")
    medium, small = _family(conn, 6)
    large = medium[:9]
    others = [m for m in _children(conn, large) if m != medium]
    cousin_medium, alone = others[0], others[1]
    cousin = _children(conn, cousin_medium)[0]
    later = NOW + dt.timedelta(hours=2)
    refresh_all(conn, NOW, rules)
    pin_colour(conn, small[2], "blue", "已约谈", NOW + dt.timedelta(days=1), "指挥中心", NOW,
               rules)
    pin_colour(conn, alone, "yellow", "重点关注", NOW + dt.timedelta(hours=1), "指挥中心", NOW,
               rules)
    red = [Ev("", "矛盾纠纷", 4, "open", days_ago=1, due_in_days=0.5)] * 2
    yellow = [Ev("", "矛盾纠纷", 3, days_ago=1)] * 2
    plan = {small[0]: yellow, small[1]: red, small[2]: red, cousin: yellow}
    events = [Ev(code, e.category, e.severity, e.status, e.days_ago, e.due_in_days)
              for code, evs in plan.items() for e in evs]
    insert_events(conn, events)
    computed = {c: colour_of(expected_score([e for e in events if e.code == c], rules,
                                            later)[0], rules) for c in plan}
    assert computed == {small[0]: "yellow", small[1]: "red", small[2]: "red", cousin: "yellow"}
    watched = [*plan, medium, cousin_medium, alone, large]
    before = {c: _row(conn, c).colour for c in watched}
    assert before == {c: "yellow" if c in (alone, large) else "blue" for c in watched}

    step = refresh_grids(conn, [*plan, alone], later, rules)

    shown = {c: _row(conn, c).colour for c in watched}
    assert shown == {small[0]: "yellow", small[1]: "red", small[2]: "blue", cousin: "yellow",
                     medium: "red", cousin_medium: "yellow", alone: "blue", large: "red"}
    assert _row(conn, small[2]).computed_colour == "red"
    log = conn.execute(sa.text(
        "SELECT code, old_colour, new_colour FROM colour_change WHERE as_of = :t"),
        {"t": later}).all()
    assert sorted(tuple(r) for r in log) == sorted(
        (c, before[c], shown[c]) for c in watched if before[c] != shown[c])
    assert step.colour_changes == len(log) == 7
    incremental = _layer(conn)
    full = refresh_all(conn, later, rules)
    assert (full.rows_written, full.heat_rows_written, full.changed) == (0, 0, False)
    assert _layer(conn) == incremental


def test_pin_wins_until_it_expires_or_is_released(conn: sa.Connection) -> None:
    medium, small = _family(conn)
    events = [Ev(small[0], "矛盾纠纷", 4, "open", days_ago=1, due_in_days=0.5)] * 3
    insert_events(conn, events)
    refresh_all(conn, NOW, RULES)
    assert _row(conn, small[0]).colour == "red"
    pin_colour(conn, small[0], "blue", "已约谈，情况可控", NOW + dt.timedelta(hours=2), "指挥中心",
               NOW, RULES)
    row = _row(conn, small[0])
    assert (row.colour, row.computed_colour, row.pinned, row.reason) == (
        "blue", "red", True, "已约谈，情况可控")
    refresh_all(conn, NOW + dt.timedelta(hours=1), RULES)  # a refresh keeps the pin
    assert _row(conn, small[0]).colour == "blue"
    refresh_all(conn, NOW + dt.timedelta(hours=3), RULES)  # expired
    row = _row(conn, small[0])
    assert (row.colour, row.pinned) == ("red", False)
    pin_colour(conn, medium, "red", "重点关注", NOW + dt.timedelta(days=1), "指挥中心",
               NOW + dt.timedelta(hours=3), RULES)
    assert _row(conn, medium).colour == "red"
    release_pin(conn, medium, "指挥中心", NOW + dt.timedelta(hours=4), RULES)
    assert _row(conn, medium).colour == rollup_colour(
        ["red"] + ["blue"] * (len(small) - 1), RULES)
    log = conn.execute(sa.text(
        "SELECT code, old_colour, new_colour, why FROM colour_change WHERE code = ANY(:c) "
        "AND old_colour IS NOT NULL ORDER BY id"), {"c": [small[0], medium]}).all()
    assert [(r.code, r.old_colour, r.new_colour) for r in log] == [
        (small[0], "red", "blue"), (small[0], "blue", "red"),
        (medium, rollup_colour(["red"] + ["blue"] * (len(small) - 1), RULES), "red"),
        (medium, "red", rollup_colour(["red"] + ["blue"] * (len(small) - 1), RULES)),
    ][: len(log)]
    assert log[0].why.startswith("pinned blue by 指挥中心 until")
    assert log[1].why.startswith("pin expired; score")
    assert log[-1].why.startswith("pin released by 指挥中心; roll-up")


def _poisson_sf(k: int, mean: float) -> float:
    return 1.0 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))


def test_warning_fires_on_a_spike_and_not_on_steady_data(conn: sa.Connection) -> None:
    _, small = _family(conn)
    steady, spike, new = small[0], small[1], small[2]
    rule = RULES.warnings
    events = [Ev(steady, "噪音扰民", days_ago=d + 0.5) for d in range(rule.baseline_days + 1)]
    events += [Ev(steady, "噪音扰民", days_ago=0.2)]
    events += [Ev(spike, "噪音扰民", days_ago=d + 1.5) for d in range(rule.baseline_days)]
    k = 8
    events += [Ev(spike, "噪音扰民", days_ago=0.05 * (i + 1)) for i in range(k)]
    # A grid with no history: the floor mean makes 4 events improbable, but 4 < min_events.
    events += [Ev(new, "噪音扰民", days_ago=0.1)] * (rule.min_events - 1)
    insert_events(conn, events)
    result = refresh_all(conn, NOW, RULES)
    rows = conn.execute(sa.text("SELECT * FROM layer_warning")).all()
    assert result.warnings == len(rows) == 1
    w = rows[0]
    mean = rule.baseline_days / rule.baseline_days
    assert (w.code, w.category, w.observed, w.baseline_events, w.baseline_days) == (
        spike, "噪音扰民", k, rule.baseline_days, rule.baseline_days)
    assert w.expected == pytest.approx(mean)
    assert w.p_value == pytest.approx(_poisson_sf(k, mean), rel=1e-9)
    assert w.p_value < rule.p_value
    assert w.warn_day == dt.date(2026, 11, 30)
    assert _poisson_sf(rule.min_events - 1, rule.floor_per_day) < rule.p_value  # why min_events
    refresh_all(conn, NOW + dt.timedelta(minutes=5), RULES)  # same day: updated, not doubled
    assert conn.execute(sa.text("SELECT count(*) FROM layer_warning")).scalar_one() == 1


def test_a_warning_baseline_longer_than_the_long_window_counts_all_its_days(
        conn: sa.Connection) -> None:
    # The score, heat and warnings read the grid's events once, from the earlier of the long
    # window's and the baseline's start: here the baseline (40 days) reaches past the 30 days.
    rules = _variant({"  baseline_days: 28": "  baseline_days: 40"}, "test-baseline-40")
    spike = _family(conn)[1][0]
    events = [Ev(spike, "噪音扰民", days_ago=d + 1.5) for d in range(40)]  # one a day
    events += [Ev(spike, "噪音扰民", days_ago=0.05 * (i + 1)) for i in range(8)]
    insert_events(conn, events)
    for refresh in (refresh_all, lambda c, now, r: refresh_grids(c, [spike], now, r)):
        conn.execute(sa.text("DELETE FROM layer_warning"))
        assert refresh(conn, NOW, rules).warnings == 1
        warning = conn.execute(sa.text(
            "SELECT code, observed, baseline_events, baseline_days, expected FROM layer_warning"
        )).one()
        assert tuple(warning) == (spike, 8, 40, 40, 1.0)
        heat = conn.execute(sa.text(
            "SELECT events_7d, events_30d FROM grid_heat WHERE code = :c AND category = :k"),
            {"c": spike, "k": "噪音扰民"}).one()
        assert tuple(heat) == (8 + 6, 8 + 29)  # 1.5-6.5 and 1.5-29.5 days ago
        assert _row(conn, spike).events_30d == 8 + 29


def _fixture_events(fixture_dir: Path) -> list[dict[str, str]]:
    with (fixture_dir / "events.csv").open(encoding="utf-8", newline="") as handle:
        return [r for r in csv.DictReader(handle) if r["expected_code"]]


def _insert_fixture_rows(conn: sa.Connection, rows: list[dict[str, str]], shift: dt.timedelta,
                         tag: str) -> None:
    conn.execute(sa.text(
        """WITH stored AS (
               INSERT INTO event (source, source_id, category, severity, status, reported_at,
                                  due_at, lon, lat, grid_code, grid_version, route)
               VALUES (:source, :sid, :category, :severity, :status,
                       CAST(:reported AS timestamptz) + :shift,
                       CAST(:due AS timestamptz) + :shift, :lon, :lat, :code, 1, 'exact')
               RETURNING id, source, source_id, reported_at)
           INSERT INTO event_key (source, source_id, event_id, reported_at)
           SELECT source, source_id, id, reported_at FROM stored"""),
        [{"source": r["source"], "sid": tag + r["source_id"], "category": r["category"],
          "severity": int(r["severity"]), "status": r["status"], "reported": r["reported_at"],
          "due": r["due_at"], "shift": shift, "lon": float(r["true_lon"]),
          "lat": float(r["true_lat"]), "code": r["expected_code"]} for r in rows])


def _layer(conn: sa.Connection) -> tuple[list[tuple], list[tuple]]:
    colours = conn.execute(sa.text(
        """SELECT code, level, colour, computed_colour, score, open_events, overdue_events,
                  events_7d, events_30d, pinned, red_children, yellow_children, blue_children
           FROM grid_colour ORDER BY code""")).all()
    heat = conn.execute(sa.text("SELECT * FROM grid_heat ORDER BY code, category")).all()
    return [tuple(r) for r in colours], [tuple(r) for r in heat]


def _computed_but_the_last(
        conn: sa.Connection, fixture_dir: Path, held_back: int
) -> tuple[list[dict[str, str]], dt.timedelta, dt.datetime, RefreshResult]:
    """The fixture events but the last ``held_back`` stored and the layer computed an hour after
    the newest: the held-back rows, the shift that re-dates them into the last hour, now, and
    the full refresh's result."""
    rows = _fixture_events(fixture_dir)
    last = dt.datetime.fromisoformat(max(r["reported_at"] for r in rows))
    now = last + dt.timedelta(hours=1)
    _insert_fixture_rows(conn, rows[:-held_back], dt.timedelta(0), "a-")
    conn.execute(sa.text("ANALYZE event"))
    return rows[-held_back:], now - last - dt.timedelta(minutes=30), now, refresh_all(
        conn, now, RULES)


def test_incremental_refresh_equals_a_full_one_and_notifies(
        conn: sa.Connection, engine: sa.Engine, fixture_dir: Path) -> None:
    late, shift, now, first = _computed_but_the_last(conn, fixture_dir, 300)
    assert first.colour_changes == 7507 + 1086 + 110  # every grid's first colour is logged
    again = refresh_all(conn, now, RULES)
    assert (again.rows_written, again.heat_rows_written, again.changed) == (0, 0, False)
    assert again.layer_version == first.layer_version
    # The last 300 fixture events, re-dated into the last hour, arrive as a batch.
    _insert_fixture_rows(conn, late, shift, "b-")
    step = refresh_grids(conn, {r["expected_code"] for r in late}, now, RULES)
    assert step.changed and step.layer_version == first.layer_version + 1
    incremental = _layer(conn)
    full = refresh_all(conn, now, RULES)
    assert (full.rows_written, full.heat_rows_written) == (0, 0)
    assert _layer(conn) == incremental
    conn.commit()  # a refresh holds the refresh lock until its transaction ends
    with psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False), autocommit=True) as listener:
        listener.execute("LISTEN layer_version")
        with engine.begin() as other:
            insert_events(other, [Ev(late[0]["expected_code"], "矛盾纠纷", 4, "open",
                                     days_ago=0.01)], now, "c")
            bumped = refresh_grids(other, [late[0]["expected_code"]], now, RULES)
        notes = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
    assert notes == [str(bumped.layer_version)]


def test_one_grid_refreshes_on_prepared_plans_equal_a_full_one(
        conn: sa.Connection, engine: sa.Engine, fixture_dir: Path) -> None:
    late, shift, now, first = _computed_but_the_last(conn, fixture_dir, 40)
    conn.commit()
    codes = sorted({r["expected_code"] for r in late})
    # One grid at a time, as events arrive one by one, on a connection whose transactions
    # commit (so it keeps its prepared statements), each statement on its generic plan from the
    # first call; the caller's plan_cache_mode is its own again once the refresh is done.
    fresh = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)  # no statement prepared
    with fresh.connect() as refresher:
        for i, r in enumerate(late):
            with engine.begin() as other:
                _insert_fixture_rows(other, [r], shift, f"b{i}-")
            if i == 1:
                refresher.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))
            refresh_grids(refresher, [r["expected_code"]], now, RULES)
            mode = refresher.execute(sa.text("SHOW plan_cache_mode")).scalar_one()
            assert mode == ("force_custom_plan" if i == 1 else "auto")
            refresher.commit()
        plans = {row.statement.strip().split("\n")[0]: (row.generic_plans, row.custom_plans)
                 for row in refresher.execute(sa.text(
                     "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                     " WHERE statement NOT LIKE '%pg_prepared_statements%'"
                     " AND statement NOT LIKE 'SHOW %'"))}
        refresher.commit()
    fresh.dispose()
    # The lock, the state and the plan switch run under the caller's mode (only the lock has a
    # parameter: custom plans on its first five calls); the small (with heat and warning
    # candidates), medium and large (one text) statements, the bump and the switch back: generic
    # plans only.
    assert len(plans) == 7
    lock = "SELECT pg_advisory_xact_lock(CAST($1 AS bigint))"
    assert {first for first, (_, c) in plans.items() if c} == {lock}
    assert plans[lock] == (len(late) - 5, 5)
    assert sum(g for g, _ in plans.values()) == 8 * len(late) - 5
    state = conn.execute(sa.text(
        "SELECT layer_version, computed_as_of FROM layer_state WHERE id = 1")).one()
    # computed_as_of stays the full recompute's: the periodic refresh goes by it.
    assert state.computed_as_of == first.as_of
    assert state.layer_version == first.layer_version + len(late)  # each new event changed it
    incremental = _layer(conn)
    full = refresh_all(conn, now, RULES)
    assert (full.rows_written, full.heat_rows_written, full.changed) == (0, 0, False)
    assert _layer(conn) == incremental
    assert len(codes) > 5  # many grids, each through the same prepared statements


def test_the_service_refresh_runs_only_on_a_computed_layer_when_due(
        conn: sa.Connection, engine: sa.Engine) -> None:
    conn.commit()
    periodic = PeriodicRefresh(engine, DEFAULT_RULES, 600)
    assert periodic.run_once() is False  # never computed: left to start-up or the CLI
    with engine.begin() as other:
        refresh_all(other, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=400), RULES)
    assert periodic.run_once() is True  # computed 400 s ago: more than half of 600 s
    assert periodic.run_once() is False  # just ran


def test_cli_refresh_prints_steps_and_colours(conn: sa.Connection, engine: sa.Engine,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from api.cli import app

    _, small = _family(conn)
    insert_events(conn, [Ev(small[0], "矛盾纠纷", 4, "open", days_ago=1, due_in_days=0.5)] * 2)
    conn.commit()
    monkeypatch.setenv("MINQING_DB_URL", engine.url.render_as_string(hide_password=False))
    result = CliRunner().invoke(app, ["layers", "refresh", "--as-of", NOW.isoformat()])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["full"], summary["grids"], summary["rules_version"]) == (
        True, 7507 + 1086 + 110, RULES.version)
    assert "small  red     1  yellow     0  blue  7506" in result.stderr
    bad = CliRunner().invoke(app, ["layers", "refresh", "--as-of", "2026-11-30T12:00"])
    assert bad.exit_code == 2 and "time zone" in bad.output


def test_an_expired_pin_no_longer_shows_even_before_a_refresh(conn: sa.Connection) -> None:
    from gis.auth import ANONYMOUS
    from layers.card import grid_card
    from layers.summary import layer_summary

    _, small = _family(conn)
    insert_events(conn, [Ev(small[0], "矛盾纠纷", 4, "open", days_ago=1, due_in_days=0.5)] * 3)
    refresh_all(conn, NOW, RULES)
    pin_colour(conn, small[0], "blue", "观察", NOW + dt.timedelta(hours=1), "指挥中心", NOW, RULES)
    later = NOW + dt.timedelta(hours=2)
    assert _row(conn, small[0]).colour == "blue"  # stored as of the last refresh
    card = grid_card(conn, small[0], ANONYMOUS, later)
    assert (card["colour"], card["pinned"], card["pin"]) == ("red", False, None)
    during = layer_summary(conn, window_days=7, short_days=7, now=NOW)["totals"]["small"]
    after = layer_summary(conn, window_days=7, short_days=7, now=later)["totals"]["small"]
    assert (during["red"], during["pinned"], after["red"], after["pinned"]) == (0, 1, 1, 0)


def test_refreshes_asked_while_one_runs_share_the_next(
        conn: sa.Connection, engine: sa.Engine) -> None:
    from layers.coalesce import GridRefresher

    now = dt.datetime.now(dt.UTC)
    refresh_all(conn, now, RULES)
    conn.commit()
    _, small = _family(conn)
    events = [Ev(code, "矛盾纠纷", 4, "open", days_ago=0.5, due_in_days=1) for code in small[:6]]
    with engine.begin() as other:
        insert_events(other, events, now, "co")
    refresher = GridRefresher(engine, DEFAULT_RULES)
    blocker = engine.connect()  # holds the refresh lock: the first round waits on it
    blocker.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": REFRESH_LOCK})
    first = threading.Thread(target=refresher.refresh, args=([small[0]],))
    first.start()
    deadline = time.monotonic() + 30
    while refresher.stats.requests < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    others = [threading.Thread(target=refresher.refresh, args=([code],)) for code in small[1:6]]
    for t in others:
        t.start()
    while refresher.pending < 5:  # the five wait for the round that will take their grids
        assert time.monotonic() < deadline
        time.sleep(0.01)
    blocker.rollback()
    blocker.close()
    for t in [first, *others]:
        t.join(timeout=30)
    assert (refresher.stats.requests, refresher.stats.rounds,
            refresher.stats.failed_rounds) == (6, 2, 0)
    score, _ = expected_score(events[:1], RULES, now)
    assert [_row(conn, code).score for code in small[:6]] == [round(score, 6)] * 6
    coalesced = _layer(conn)
    assert refresh_all(conn, now, RULES).rows_written == 0
    assert _layer(conn) == coalesced
