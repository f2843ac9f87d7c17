"""The grid card: what a click on a grid shows the command centre."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.auth import Caller, mask_phone
from layers.pins import check_grid, live_pin

BEIJING = dt.timezone(dt.timedelta(hours=8))
TREND_DAYS = 30


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _code_range(code: str) -> dict[str, str]:
    # Codes nest (a child's code starts with its parent's): a grid's events are a key range.
    return {"low": code.ljust(15, "0"), "high": code.ljust(15, "9")}


def grid_card(conn: Connection, code: str, caller: Caller, now: dt.datetime | None = None
              ) -> dict[str, Any]:
    """Code, names, gridworkers (phone per role), colour, pin, open events and a 30-day trend."""
    now = now or dt.datetime.now(dt.UTC)
    check_grid(conn, code)
    grid = conn.execute(sa.text(
        """SELECT g.code, g.name, g.level, g.kind, g.parent_code, p.name AS parent_name,
                  g.district_code, d.name AS district_name,
                  c.colour, c.computed_colour, c.score, c.open_events, c.overdue_events,
                  c.events_7d, c.events_30d, c.red_children, c.yellow_children,
                  c.blue_children, c.rules_version, c.updated_at
           FROM grid_current g
           LEFT JOIN grid_current p ON p.code = g.parent_code
           LEFT JOIN district d ON d.code = g.district_code
           LEFT JOIN grid_colour c ON c.code = g.code
           WHERE g.code = :code"""), {"code": code}).mappings().one()
    pin = live_pin(conn, code, now)
    # A pin that expired since the last refresh no longer holds: the computed colour shows.
    colour = pin["colour"] if pin else grid["computed_colour"]
    workers = conn.execute(sa.text(
        """SELECT worker_id, name, phone, on_duty_since FROM gridworker
           WHERE grid_code = :code AND active = 1 ORDER BY worker_id"""), {"code": code}).all()
    key = _code_range(code)
    trend_start = (now.astimezone(BEIJING) - dt.timedelta(days=TREND_DAYS - 1)).date()
    counts: dict[dt.date, int] = dict(conn.execute(sa.text(
        """SELECT (reported_at AT TIME ZONE 'Asia/Shanghai')::date AS day, count(*)
           FROM event WHERE grid_code BETWEEN :low AND :high
             AND reported_at >= CAST(:start AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
             AND reported_at <= :now
           GROUP BY 1"""), {**key, "start": trend_start, "now": now}).all())
    trend = [{"day": (trend_start + dt.timedelta(days=i)).isoformat(),
              "events": int(counts.get(trend_start + dt.timedelta(days=i), 0))}
             for i in range(TREND_DAYS)]
    open_events = conn.execute(sa.text(
        """SELECT id, grid_code, category, severity, status, source, reported_at, due_at,
                  due_at < :now AS overdue
           FROM event WHERE grid_code BETWEEN :low AND :high
             AND status IN ('open', 'in_progress') AND reported_at <= :now
           ORDER BY (due_at < :now) DESC, severity DESC, reported_at DESC LIMIT 20"""),
        {**key, "now": now}).mappings()
    return {
        "code": grid["code"], "name": grid["name"], "level": grid["level"],
        "kind": grid["kind"],
        "parent": ({"code": grid["parent_code"], "name": grid["parent_name"]}
                   if grid["parent_code"] else None),
        "district": {"code": grid["district_code"], "name": grid["district_name"]},
        "gridworkers": [{"worker_id": w.worker_id, "name": w.name,
                         "phone": w.phone if caller.sees_gridworker_phone
                         else mask_phone(w.phone),
                         "on_duty_since": _iso(w.on_duty_since)} for w in workers],
        "colour": colour, "computed_colour": grid["computed_colour"],
        "score": grid["score"], "pinned": pin is not None,
        "pin": ({k: pin[k] for k in ("colour", "reason", "pinned_by", "pinned_at",
                                     "expires_at")} if pin else None),
        "open_events": grid["open_events"], "overdue_events": grid["overdue_events"],
        "events_7d": grid["events_7d"], "events_30d": grid["events_30d"],
        "children": ({"red": grid["red_children"], "yellow": grid["yellow_children"],
                      "blue": grid["blue_children"]} if grid["level"] != "small" else None),
        "open_event_list": [{k: _iso(v) for k, v in e.items()} for e in open_events],
        "trend": trend, "rules_version": grid["rules_version"],
        "computed_at": _iso(grid["updated_at"]),
    }


def colour_history(conn: Connection, code: str, limit: int = 100) -> list[dict[str, Any]]:
    """The grid's colour changes, newest first, with why."""
    check_grid(conn, code)
    rows = conn.execute(sa.text(
        """SELECT id, old_colour, new_colour, why, score, rules_version, as_of, changed_at
           FROM colour_change WHERE code = :code ORDER BY id DESC LIMIT :limit"""),
        {"code": code, "limit": limit}).mappings()
    return [{k: _iso(v) for k, v in r.items()} for r in rows]
