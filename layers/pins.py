"""Pins: command staff hold a grid at a colour, with a reason, until it expires or is released."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gis.errors import InvalidInput, NotFound
from layers.refresh import refresh_grids
from layers.rules import COLOURS, LayerRules, load_rules


def check_grid(conn: Connection, code: str) -> str:
    """The level of a current grid; InvalidInput for a malformed code, NotFound for an unknown."""
    if not code.isdigit() or len(code) not in (9, 12, 15):
        raise InvalidInput(f"{code!r} is not a grid code (9, 12 or 15 digits)")
    level = conn.execute(sa.text("SELECT level FROM grid_current WHERE code = :code"),
                         {"code": code}).scalar_one_or_none()
    if level is None:
        raise NotFound(f"no current grid {code}")
    return str(level)


def live_pin(conn: Connection, code: str, now: dt.datetime) -> dict[str, Any] | None:
    """The pin holding ``code`` at ``now``, or None (an expired pin holds nothing)."""
    row = conn.execute(sa.text(
        """SELECT id, colour, reason, pinned_by, pinned_at, expires_at FROM colour_pin
           WHERE code = :code AND released_at IS NULL AND pinned_at <= :now
             AND expires_at > :now
           ORDER BY pinned_at DESC LIMIT 1"""), {"code": code, "now": now}).mappings().first()
    return None if row is None else {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                     for k, v in row.items()}


def pin_colour(conn: Connection, code: str, colour: str, reason: str, expires_at: dt.datetime,
               pinned_by: str, now: dt.datetime | None = None,
               rules: LayerRules | None = None) -> dict[str, Any]:
    """Pin ``code`` at ``colour`` until ``expires_at``; a live pin on the grid is replaced."""
    now = now or dt.datetime.now(dt.UTC)
    rules = rules or load_rules()
    check_grid(conn, code)
    if colour not in COLOURS:
        raise InvalidInput(f"colour must be red, yellow or blue (got {colour!r})")
    if not reason.strip():
        raise InvalidInput("reason is required: say why the grid is pinned")
    if expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a time zone (e.g. 2026-12-31T18:00:00+08:00)")
    if expires_at <= now:
        raise InvalidInput(f"expires_at {expires_at.isoformat()} is not in the future")
    longest = now + dt.timedelta(days=rules.pins.max_days)
    if expires_at > longest:
        raise InvalidInput(f"a pin lasts at most {rules.pins.max_days} days "
                           f"(expires_at must be before {longest.isoformat()})")
    conn.execute(sa.text(
        """UPDATE colour_pin SET released_at = :now, released_by = :by
           WHERE code = :code AND released_at IS NULL"""),
        {"code": code, "now": now, "by": f"{pinned_by} (replaced by a new pin)"})
    conn.execute(sa.text(
        """INSERT INTO colour_pin (code, colour, reason, pinned_by, pinned_at, expires_at)
           VALUES (:code, :colour, :reason, :by, :now, :expires)"""),
        {"code": code, "colour": colour, "reason": reason.strip(), "by": pinned_by, "now": now,
         "expires": expires_at})
    refresh_grids(conn, [code], now, rules)
    pin = live_pin(conn, code, now)
    assert pin is not None
    return pin


def release_pin(conn: Connection, code: str, released_by: str, now: dt.datetime | None = None,
                rules: LayerRules | None = None) -> dict[str, Any]:
    """Release the live pin of ``code``; NotFound when there is none."""
    now = now or dt.datetime.now(dt.UTC)
    check_grid(conn, code)
    pin = live_pin(conn, code, now)
    if pin is None:
        raise NotFound(f"grid {code} has no live pin")
    conn.execute(sa.text(
        "UPDATE colour_pin SET released_at = :now, released_by = :by WHERE id = :id"),
        {"now": now, "by": released_by, "id": pin["id"]})
    refresh_grids(conn, [code], now, rules)
    return {**pin, "released_at": now.isoformat(), "released_by": released_by}
