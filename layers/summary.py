"""Counts of red / yellow / blue grids per district and level."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

LEVELS = ("large", "medium", "small")


def layer_summary(conn: Connection, *, district: str | None = None, level: str | None = None,
                  window_days: int, short_days: int, now: dt.datetime | None = None
                  ) -> dict[str, Any]:
    """Red / yellow / blue counts and window event totals per district and level.

    Colours are those shown now (a pin that has expired no longer counts); ``window_days`` picks
    which window's event count (short or long) is totalled beside them.
    """
    now = now or dt.datetime.now(dt.UTC)
    events = "c.events_7d" if window_days == short_days else "c.events_30d"
    rows = conn.execute(sa.text(
        f"""SELECT g.district_code, d.name AS district_name, g.level,
                   count(*) FILTER (WHERE s.colour = 'red') AS red,
                   count(*) FILTER (WHERE s.colour = 'yellow') AS yellow,
                   count(*) FILTER (WHERE s.colour = 'blue') AS blue,
                   count(*) FILTER (WHERE s.pinned) AS pinned,
                   coalesce(sum({events}), 0) AS events,
                   coalesce(sum(c.open_events), 0) AS open_events,
                   coalesce(sum(c.overdue_events), 0) AS overdue_events
            FROM grid_current g
            JOIN district d ON d.code = g.district_code
            LEFT JOIN grid_colour c ON c.code = g.code
            LEFT JOIN LATERAL (
                SELECT coalesce(p.colour, c.computed_colour, 'blue') AS colour,
                       p.colour IS NOT NULL AS pinned
                FROM (SELECT 1) AS one
                LEFT JOIN LATERAL (SELECT colour FROM colour_pin
                                   WHERE code = g.code AND released_at IS NULL
                                     AND pinned_at <= :now AND expires_at > :now
                                   ORDER BY pinned_at DESC LIMIT 1) AS p ON true
            ) AS s ON true
            WHERE (CAST(:district AS text) IS NULL OR g.district_code = :district)
              AND (CAST(:level AS text) IS NULL OR g.level = :level)
            GROUP BY g.district_code, d.name, g.level
            ORDER BY g.district_code, g.level"""),
        {"district": district, "level": level, "now": now}).mappings().all()
    districts: dict[str, dict[str, Any]] = {}
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        entry = districts.setdefault(r["district_code"], {
            "code": r["district_code"], "name": r["district_name"], "levels": {}})
        counts = {k: int(r[k]) for k in ("red", "yellow", "blue", "pinned", "events",
                                         "open_events", "overdue_events")}
        entry["levels"][r["level"]] = counts
        total = totals.setdefault(r["level"], dict.fromkeys(counts, 0))
        for k, v in counts.items():
            total[k] += v
    state = conn.execute(sa.text(
        "SELECT layer_version, rules_version, computed_as_of FROM layer_state WHERE id = 1")).one()
    return {"window_days": window_days, "as_of": now.isoformat(),
            "computed_as_of": state.computed_as_of.isoformat() if state.computed_as_of else None,
            "layer_version": state.layer_version, "rules_version": state.rules_version,
            "districts": list(districts.values()), "totals": totals}
