"""Shared helpers of the layer tests: hand-built events and the score computed from the rules.

The expected score is worked out here from the rule file's numbers, independently of the SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from layers.rules import LayerRules

BEIJING = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=BEIJING)


@dataclass(frozen=True)
class Ev:
    """One hand-built event."""

    code: str
    category: str = "环境卫生"
    severity: int = 1
    status: str = "closed"
    days_ago: float = 1.0
    due_in_days: float | None = 10.0  # after the report; None: no due time

    def reported(self, now: dt.datetime) -> dt.datetime:
        """When it was reported."""
        return now - dt.timedelta(days=self.days_ago)

    def due(self, now: dt.datetime) -> dt.datetime | None:
        """When it is due."""
        if self.due_in_days is None:
            return None
        return self.reported(now) + dt.timedelta(days=self.due_in_days)


def insert_events(conn: sa.Connection, events: Iterable[Ev], now: dt.datetime = NOW,
                  tag: str = "t") -> int:
    """Insert events straight into the table (ingest is not under test here)."""
    rows = [{"sid": f"{tag}-{i}", "cat": e.category, "sev": e.severity, "status": e.status,
             "at": e.reported(now), "due": e.due(now), "code": e.code}
            for i, e in enumerate(events)]
    if rows:
        conn.execute(sa.text(
            """WITH stored AS (
                   INSERT INTO event (source, source_id, category, severity, status,
                                      reported_at, due_at, lon, lat, grid_code, grid_version,
                                      route)
                   SELECT 'test', :sid, :cat, :sev, :status, :at, :due,
                          ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)),
                          g.code, g.version_low, 'exact'
                   FROM grid_current g WHERE g.code = :code
                   RETURNING id, source, source_id, reported_at)
               INSERT INTO event_key (source, source_id, event_id, reported_at)
               SELECT source, source_id, id, reported_at FROM stored"""), rows)
    return len(rows)


def expected_score(events: Iterable[Ev], rules: LayerRules, now: dt.datetime = NOW
                   ) -> tuple[float, dict[str, int]]:
    """(score, counts) of one grid's events by the rules' numbers (see docs/LAYERS.md)."""
    s, w = rules.score, rules.windows
    short_sum = long_sum = 0.0
    counts = {"open": 0, "overdue": 0, "short": 0, "long": 0}
    for e in events:
        reported, due = e.reported(now), e.due(now)
        if reported > now:
            continue
        unresolved = e.status in ("open", "in_progress")
        overdue = unresolved and due is not None and due < now
        factor = 1.0
        if unresolved:
            factor = s.unresolved_factor * (s.overdue_factor if overdue else 1.0)
        weight = (s.category_weights.get(e.category, s.default_weight)
                  * s.severity_multipliers[e.severity - 1] * factor)
        in_short = reported > now - dt.timedelta(days=w.short_days)
        in_long = reported > now - dt.timedelta(days=w.long_days)
        short_sum += weight if (in_short or unresolved) else 0.0
        long_sum += weight if (in_long or unresolved) else 0.0
        counts["open"] += unresolved
        counts["overdue"] += overdue
        counts["short"] += in_short
        counts["long"] += in_long
    return max(w.short_scale * short_sum, w.long_scale * long_sum), counts


def colour_of(score: float, rules: LayerRules) -> str:
    """Thresholds of the rules."""
    if score >= rules.colours.red:
        return "red"
    return "yellow" if score >= rules.colours.yellow else "blue"


def rollup_colour(colours: list[str], rules: LayerRules) -> str:
    """A parent's colour from its children's by the rules' roll-up rule."""
    red, yellow, n = colours.count("red"), colours.count("yellow"), len(colours)
    rule = rules.rollup
    if rule.rule == "worst_child":
        return "red" if red else ("yellow" if yellow else "blue")
    if red >= rule.red_share * n:
        return "red"
    return "yellow" if red + yellow >= rule.yellow_share * n else "blue"


def reset_layer(conn: sa.Connection) -> None:
    """Empty events and every layer table (the module's city is shared by its tests)."""
    conn.execute(sa.text(
        """TRUNCATE event, event_key, colour_pin, colour_change, grid_colour, grid_heat,
                    layer_warning CASCADE;
           UPDATE layer_state SET layer_version = 0, rules_version = '',
                                  computed_as_of = NULL"""))
