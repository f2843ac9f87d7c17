"""``minqing layers refresh``: recompute every colour, heat and warning from all events."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli import _grid_engine, _say, app

layers_app = typer.Typer(help="The red / yellow / blue layer.", no_args_is_help=True)
app.add_typer(layers_app, name="layers")


@layers_app.command("refresh")
def layers_refresh(
    rules: Annotated[Path | None, typer.Option(help="Rules file (default MINQING_LAYERS_RULES)")]
    = None,
    as_of: Annotated[str | None, typer.Option(help="Compute as of this time (ISO, with zone)")]
    = None,
) -> None:
    """Full recompute; prints each step's time and the colours per level."""
    import sqlalchemy as sa

    from layers.refresh import refresh_all
    from layers.rules import load_rules

    now = None
    if as_of:
        try:
            now = dt.datetime.fromisoformat(as_of)
        except ValueError as exc:
            raise typer.BadParameter(f"not an ISO time: {as_of!r}", param_hint="--as-of") from exc
        if now.tzinfo is None:
            raise typer.BadParameter("give a time zone, e.g. +08:00", param_hint="--as-of")
    loaded = load_rules(rules)
    _say(f"rules {loaded.version}; recomputing every grid ...")
    with _grid_engine().begin() as conn:
        result = refresh_all(conn, now, loaded)
        counts = conn.execute(sa.text(
            """SELECT level, colour, count(*) FROM grid_colour GROUP BY 1, 2
               ORDER BY 1, 2""")).all()
    for label, seconds in result.seconds.items():
        _say(f"  {label:9s} {seconds:7.3f} s")
    by_level: dict[str, dict[str, int]] = {}
    for row in counts:
        by_level.setdefault(str(row[0]), {})[str(row[1])] = int(row[2])
    for level in ("large", "medium", "small"):
        c = by_level.get(level, {})
        _say(f"  {level:6s} red {c.get('red', 0):5d}  yellow {c.get('yellow', 0):5d}  "
             f"blue {c.get('blue', 0):5d}")
    _say(f"{result.colour_changes} colour changes, {result.warnings} warnings, layer version "
         f"{result.layer_version}")
    typer.echo(json.dumps(result.to_json(), ensure_ascii=False))
