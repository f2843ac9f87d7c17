"""Recompute the red / yellow / blue layer: scores, colours, roll-ups, heat and warnings.

``refresh_all`` recomputes every grid in a few set-based statements; ``refresh_grids`` does the
same for some small grids and their parents. Both write only what differs, log every colour
change, and bump ``layer_state.layer_version`` (with ``NOTIFY layer_version``) when anything did.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import Connection

from layers.rules import LayerRules, load_rules
from layers.sql_files import code_params, event_filter, grid_filter, is_scalar, sql_file
from layers.warnings import raise_warnings, warning_params

# Serialises refreshes across processes (pg_advisory_xact_lock key: "layers" in ASCII).
REFRESH_LOCK = 0x6C6179657273
_DIALECT = PGDialect_psycopg(paramstyle="numeric_dollar")


@dataclass
class RefreshResult:
    """What a refresh did."""

    full: bool
    as_of: dt.datetime
    rules_version: str
    grids: int = 0
    colour_changes: int = 0
    rows_written: int = 0
    heat_rows_written: int = 0
    warnings: int = 0
    layer_version: int = 0
    changed: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly summary."""
        return {"full": self.full, "as_of": self.as_of.isoformat(),
                "rules_version": self.rules_version, "grids": self.grids,
                "colour_changes": self.colour_changes, "rows_written": self.rows_written,
                "heat_rows_written": self.heat_rows_written, "warnings": self.warnings,
                "layer_version": self.layer_version, "changed": self.changed,
                "seconds": {k: round(v, 4) for k, v in self.seconds.items()}}


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def _params(rules: LayerRules, now: dt.datetime) -> dict[str, Any]:
    short_days, long_days = rules.windows.days()
    long_start = now - dt.timedelta(days=long_days)
    warnings = warning_params(rules, now)
    return {"now": now, "short_start": now - dt.timedelta(days=short_days),
            "long_start": long_start, "short_days": short_days,
            "read_start": min(long_start, warnings["baseline_start"]), **warnings,
            "long_days": long_days, "short_scale": rules.windows.short_scale,
            "long_scale": rules.windows.long_scale, "red": rules.colours.red,
            "yellow": rules.colours.yellow, "rules_version": rules.version,
            **rules.score.sql_params(), **rules.rollup.sql_params(),
            "rollup_label": rules.rollup.label}


Statement = tuple[str, str, dict[str, Any]]  # label, SQL text, parameters


def _small_statement(params: dict[str, Any], codes: list[str] | None) -> Statement:
    """Score, colour, heat and warning candidates of the small grids (all for codes None)."""
    recent = "NOT MATERIALIZED" if codes is None else "MATERIALIZED"
    sql = sql_file("small_colour.sql").format(grids=grid_filter(codes),
                                              events=event_filter(codes), recent=recent) + \
        sql_file("write_colour.sql").format(old=grid_filter(codes, "o.code")) + \
        sql_file("small_tail.sql")
    return "small", sql, {**params, **code_params(codes)}


def _parent_statement(params: dict[str, Any], rules: LayerRules, level: str,
                      codes: list[str] | None) -> Statement:
    child = {"medium": "small", "large": "medium"}[level]
    sql = sql_file("parent_colour.sql").format(
        grids=grid_filter(codes, "p.code"), children=grid_filter(codes, "g.parent_code"),
        rollup=rules.rollup.sql_colour()) + \
        sql_file("write_colour.sql").format(old=grid_filter(codes, "o.code")) + \
        sql_file("colour_result.sql")
    return level, sql, {**params, **code_params(codes), "level": level, "child_level": child}


# Up to this many small grids, each grid's statements run on prepared (generic) plans of their
# own; more share statements over the codes array, planned for them (docs/LAYERS.md).
PER_GRID_MAX = 16


def _statements(rules: LayerRules, now: dt.datetime, small: list[str] | None,
                medium: list[str] | None, large: list[str] | None) -> list[Statement]:
    """The refresh's statements, in order: each level reads the colours the one before wrote."""
    params = _params(rules, now)
    if small is not None and medium is not None and large is not None \
            and len(small) <= PER_GRID_MAX:
        return [*(_small_statement(params, [c]) for c in small),
                *(_parent_statement(params, rules, "medium", [c]) for c in medium),
                *(_parent_statement(params, rules, "large", [c]) for c in large)]
    return [_small_statement(params, small),
            _parent_statement(params, rules, "medium", medium),
            _parent_statement(params, rules, "large", large)]


@lru_cache(maxsize=64)
def _native(sql: str) -> tuple[str, tuple[str, ...]]:
    """The text with PostgreSQL's own $n placeholders, and the parameter names in their order."""
    compiled = sa.text(sql).compile(dialect=_DIALECT)
    return str(compiled), tuple(compiled.positiontup or ())


def _pipelined(conn: Connection, statements: list[Statement]) -> list[list[Any]]:
    """Rows of each statement, sent to the server in one pipeline (one round trip).

    The statements for one grid each are prepared (planning them was most of their time); those
    over an array of codes are not (sql_files.is_scalar). A raw cursor takes the $n text as it is
    (psycopg would parse a long %(name)s text again on every call).
    """
    raw = conn.connection.driver_connection
    assert raw is not None
    cursors = []
    with raw.pipeline():
        for _, sql, params in statements:
            text, names = _native(sql)
            cursor = psycopg.RawCursor(raw)
            cursor.execute(text, [params[n] for n in names], prepare=is_scalar(sql))
            cursors.append(cursor)
    return [cursor.fetchall() for cursor in cursors]


# Bumps the version (and notifies) when a statement of this transaction's refresh wrote a row
# (small_tail.sql and colour_result.sql mark it) or grids left the layer; an incremental refresh
# leaves computed_as_of (the last full recompute, which the periodic refresh goes by) as it is,
# and touches nothing when the layer must first be computed in full.
_FINISH = """
UPDATE layer_state s
SET layer_version = s.layer_version + b.bump, rules_version = CAST(:rules_version AS text),
    computed_as_of = CASE WHEN CAST(:full AS boolean) THEN :as_of ELSE s.computed_as_of END,
    updated_at = CASE WHEN b.bump = 1 THEN now() ELSE s.updated_at END
FROM (SELECT CASE WHEN CAST(:gone AS boolean)
                       OR current_setting('minqing.layer_changed', true) = 'yes'
                  THEN 1 ELSE 0 END AS bump) AS b
WHERE s.id = 1 AND (CAST(:full AS boolean)
                    OR (s.computed_as_of IS NOT NULL
                        AND s.rules_version = CAST(:rules_version AS text)))
RETURNING s.layer_version, b.bump,
          CASE WHEN b.bump = 1 THEN pg_notify('layer_version', s.layer_version::text) END,
          set_config('minqing.layer_changed', '', true)
"""
_LOCK = "SELECT pg_advisory_xact_lock(CAST(:key AS bigint))"
# A statement of its own: its snapshot is taken after the lock is held.
_STATE = "SELECT rules_version, computed_as_of FROM layer_state WHERE id = 1"
# The one-grid statements run on generic plans from their first call, for the rest of the
# refresh: left to choose, PostgreSQL plans the warning candidates anew on every call (0.35 ms
# of a lone event's refresh, more than running them). The caller's setting is kept aside (the
# volatile subquery runs first) and put back by _PLANS_BACK, as the refresh may share its
# transaction.
_GENERIC_PLANS = """
SELECT set_config('plan_cache_mode', 'force_generic_plan', true)
FROM (SELECT set_config('minqing.plan_cache_mode', current_setting('plan_cache_mode'), true)
      ) AS kept
"""
_PLANS_BACK = """
SELECT set_config('plan_cache_mode', current_setting('minqing.plan_cache_mode'), true)
"""


def _finish_params(result: RefreshResult, gone: bool) -> dict[str, Any]:
    return {"rules_version": result.rules_version, "full": result.full, "as_of": result.as_of,
            "gone": gone}


def _finished(result: RefreshResult, row: Any) -> RefreshResult:
    result.layer_version, result.changed = int(row[0]), bool(row[1])
    return result


def _timed(result: RefreshResult, label: str, fn: Any) -> Any:
    started = time.perf_counter()
    value = fn()
    result.seconds[label] = time.perf_counter() - started
    return value


def _count(result: RefreshResult, statements: list[Statement], rows: list[Any]) -> list[Any]:
    """Adds the statements' counts to the result; the warning candidates."""
    candidates: list[Any] = []
    for (label, _, _), got in zip(statements, rows, strict=True):
        changes, written = got[0][:2]
        result.colour_changes += int(changes)
        result.rows_written += int(written)
        if label == "small":
            result.heat_rows_written += int(got[0][2])
            candidates.extend(got[0][4])
    return candidates


def refresh_all(conn: Connection, now: dt.datetime | None = None,
                rules: LayerRules | None = None) -> RefreshResult:
    """Recompute every grid's colour, the roll-ups, heat and warnings from all events."""
    now, rules = _now(now), rules or load_rules()
    started = time.perf_counter()
    result = RefreshResult(full=True, as_of=now, rules_version=rules.version)
    conn.execute(sa.text(_LOCK), {"key": REFRESH_LOCK})
    # Grids retired by a boundary change leave the layer.
    gone: Any = conn.execute(sa.text(
        """WITH a AS (DELETE FROM grid_colour c WHERE NOT EXISTS
                          (SELECT 1 FROM grid_current g WHERE g.code = c.code) RETURNING 1),
                b AS (DELETE FROM grid_heat h WHERE NOT EXISTS
                          (SELECT 1 FROM grid_current g WHERE g.code = h.code) RETURNING 1)
           SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)""")).scalar_one()
    # Every grid and every window's events are read: hash joins are right whatever the
    # statistics say (fresh fixtures have none, and nested loops then take 20 s instead of 0.2 s).
    saved: Any = conn.execute(sa.text(
        "SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)"
    )).scalar_one()
    statements = _statements(rules, now, None, None, None)
    try:
        rows: list[Any] = []
        for label, sql, params in statements:
            step = time.perf_counter()
            rows.append(conn.execute(sa.text(sql), params).all())
            result.seconds[label] = time.perf_counter() - step
    finally:
        conn.execute(sa.text("SELECT set_config('enable_nestloop', :v, true)"), {"v": saved})
    candidates = _count(result, statements, rows)
    result.rows_written += int(gone)
    raised = _timed(result, "warnings", lambda: raise_warnings(conn, rules, now, candidates))
    result.warnings = len(raised)
    result.grids = int(conn.execute(sa.text("SELECT count(*) FROM grid_colour")).scalar_one())
    row = conn.execute(sa.text(_FINISH), _finish_params(result, bool(gone))).one()
    result.seconds["total"] = time.perf_counter() - started
    return _finished(result, row)


def refresh_grids(conn: Connection, codes: list[str] | set[str], now: dt.datetime | None = None,
                  rules: LayerRules | None = None) -> RefreshResult:
    """Recompute the given grids (small ones with their events) and their parents.

    Codes of any level are accepted: a medium or large code recomputes that grid's roll-up and
    its parent. When the layer was never computed, or under other rules, this is refresh_all.
    The lock, the state check, every statement and the version bump go in one round trip.
    """
    now, rules = _now(now), rules or load_rules()
    started = time.perf_counter()
    wanted = sorted({c for c in codes if c})
    small = [c for c in wanted if len(c) == 15]
    medium = sorted({c[:12] for c in wanted if len(c) >= 12})
    large = sorted({c[:9] for c in wanted})
    result = RefreshResult(full=False, as_of=now, rules_version=rules.version)
    statements = _statements(rules, now, small, medium, large)
    head: list[Statement] = [("lock", _LOCK, {"key": REFRESH_LOCK}), ("state", _STATE, {})]
    tail: list[Statement] = [("finish", _FINISH, _finish_params(result, False))]
    # Not for statements over an array of codes, planned for their codes on every call
    # (force_generic_plan would reach them too: the protocol's unnamed statements obey it).
    if all(is_scalar(sql) for _, sql, _ in statements):
        head.append(("plans", _GENERIC_PLANS, {}))
        tail.append(("plans back", _PLANS_BACK, {}))
    got = _timed(result, "statements",
                 lambda: _pipelined(conn, [*head, *statements, *tail]))
    state, rows, finish = got[1], got[len(head):len(got) - len(tail)], got[-len(tail)]
    stored_rules, computed_as_of = state[0]
    if computed_as_of is None or stored_rules != rules.version:
        return refresh_all(conn, now, rules)  # what was written here is written again
    candidates = _count(result, statements, rows)
    raised = _timed(result, "warnings", lambda: raise_warnings(conn, rules, now, candidates))
    result.warnings = len(raised)
    result.grids = len(small) + len(medium) + len(large)
    result.seconds["total"] = time.perf_counter() - started
    return _finished(result, finish[0])


def ensure_layer(conn: Connection, now: dt.datetime | None = None,
                 rules: LayerRules | None = None) -> RefreshResult | None:
    """Run refresh_all when the layer was never computed or was computed under other rules."""
    rules = rules or load_rules()
    row = conn.execute(sa.text(
        "SELECT rules_version, computed_as_of FROM layer_state WHERE id = 1")).one()
    if row.computed_as_of is not None and row.rules_version == rules.version:
        return None
    return refresh_all(conn, now, rules)
