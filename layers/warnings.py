"""Warnings (预警): a grid's events in a category jump above its own baseline (Poisson tail)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from layers.rules import LayerRules

BEIJING = dt.timezone(dt.timedelta(hours=8))


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean), summed from k upwards (exact for tiny tails)."""
    if k <= 0:
        return 1.0
    term = math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
    total, i = 0.0, k
    while term > total * 1e-17 and i < k + 10_000:
        total += term
        i += 1
        term *= mean / i
    return min(total, 1.0)


@dataclass(frozen=True)
class RaisedWarning:
    """One raised warning with the numbers behind it."""

    code: str
    category: str
    observed: int
    baseline_events: int
    expected: float
    p_value: float


def warning_params(rules: LayerRules, now: dt.datetime) -> dict[str, Any]:
    """The bound values the small grids' statement finds today's candidates with
    (layers/sql/small_tail.sql)."""
    rule = rules.warnings
    day_start = now - dt.timedelta(days=1)
    return {"day_start": day_start,
            "baseline_start": day_start - dt.timedelta(days=rule.baseline_days),
            "baseline_days": rule.baseline_days, "min_events": rule.min_events,
            "floor_per_day": rule.floor_per_day}


def raise_warnings(conn: Connection, rules: LayerRules, now: dt.datetime,
                   candidates: Sequence[Any]) -> list[RaisedWarning]:
    """Store the candidates (code, category, observed, baseline_events) whose tail is small."""
    rule = rules.warnings
    day_start = now - dt.timedelta(days=1)
    raised = []
    for code, category, observed, baseline_events in candidates:
        expected = max(baseline_events / rule.baseline_days, rule.floor_per_day)
        p = poisson_tail(int(observed), expected)
        if p < rule.p_value:
            raised.append(RaisedWarning(code, category, int(observed), int(baseline_events),
                                        expected, p))
    if raised:
        conn.execute(sa.text(
            """INSERT INTO layer_warning (code, category, window_start, window_end, warn_day,
                   observed, baseline_events, baseline_days, expected, p_value, rule,
                   rules_version)
               VALUES (:code, :category, :window_start, :now, :warn_day, :observed,
                       :baseline_events, :baseline_days, :expected, :p_value, :rule, :version)
               ON CONFLICT (code, category, warn_day) DO UPDATE SET
                   window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end,
                   observed = EXCLUDED.observed, baseline_events = EXCLUDED.baseline_events,
                   baseline_days = EXCLUDED.baseline_days, expected = EXCLUDED.expected,
                   p_value = EXCLUDED.p_value, rule = EXCLUDED.rule,
                   rules_version = EXCLUDED.rules_version, raised_at = now()"""),
            [{"code": w.code, "category": w.category, "window_start": day_start, "now": now,
              "warn_day": now.astimezone(BEIJING).date(), "observed": w.observed,
              "baseline_events": w.baseline_events, "baseline_days": rule.baseline_days,
              "expected": w.expected, "p_value": w.p_value, "rule": rule.describe(),
              "version": rules.version} for w in raised])
    return raised


def list_warnings(conn: Connection, *, district: str | None = None,
                  category: str | None = None, code: str | None = None,
                  since: dt.date | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Warnings newest first, with the grid's name and district."""
    rows = conn.execute(sa.text(
        """SELECT w.id, w.code, g.name, g.district_code, d.name AS district_name, w.category,
                  w.warn_day, w.window_start, w.window_end, w.observed, w.baseline_events,
                  w.baseline_days, w.expected, w.p_value, w.rule, w.rules_version, w.raised_at
           FROM layer_warning w
           LEFT JOIN grid_current g ON g.code = w.code
           LEFT JOIN district d ON d.code = g.district_code
           WHERE (CAST(:district AS text) IS NULL OR g.district_code = :district)
             AND (CAST(:category AS text) IS NULL OR w.category = :category)
             AND (CAST(:code AS text) IS NULL OR w.code LIKE :code || '%')
             AND (CAST(:since AS date) IS NULL OR w.warn_day >= :since)
           ORDER BY w.warn_day DESC, w.p_value, w.id DESC LIMIT :limit"""),
        {"district": district, "category": category, "code": code, "since": since,
         "limit": limit}).mappings()
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in rows]
