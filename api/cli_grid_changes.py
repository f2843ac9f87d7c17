"""``minqing grids propose|commit|rollback|history``: boundary changes from files (QGIS exports)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from api.cli import _grid_engine, _say, grids_app


@grids_app.command("propose")
def grids_propose(
    file: Annotated[Path, typer.Argument(help="GeoPackage / GeoJSON / Shapefile of new grids")],
    reason: Annotated[str, typer.Option(help="Why the boundaries change (kept in history)")],
    retire: Annotated[list[str] | None, typer.Option(help="A code to retire (repeatable)")] = None,
    base_version: Annotated[int | None, typer.Option(help="Version drawn on (default: now)")]
    = None,
    author: Annotated[str, typer.Option(help="Who")] = "cli",
    commit: Annotated[bool, typer.Option(help="Commit at once when sound")] = False,
) -> None:
    """Check a change, print its impact and keep it as a proposal (or commit it)."""
    from gis.grid_change_commit import propose
    from gis.grid_change_proposal import current_version, read_proposal_file
    from layers.grid_changes import commit_and_recolour

    grids = read_proposal_file(file)
    engine = _grid_engine()
    with engine.begin() as conn:
        base = current_version(conn) if base_version is None else base_version
        change_id, state, impact = propose(conn, grids, retire or [], base_version=base,
                                           reason=reason, author=author)
    summary = impact.to_json()
    _say(f"proposal {change_id} ({state.kind}) on version {base}: {len(state.added)} added, "
         f"{len(state.changed)} changed, {len(state.retire)} retired; "
         f"{summary['open_events_moving']} open and {summary['historical_events_moving']} "
         f"historical events change owner")
    for pair in summary["by_grid"]:
        _say(f"  {pair['from']} -> {pair['to']}: {pair['open']} open, "
             f"{pair['historical']} historical")
    if commit:
        with engine.begin() as conn:
            result = commit_and_recolour(conn, change_id, author=author)
        _say(f"committed as grid version {result.version}: {result.events_moved} open events "
             "re-routed")
    typer.echo(json.dumps({"id": change_id, "kind": state.kind}, ensure_ascii=False))


@grids_app.command("commit")
def grids_commit(
    change_id: Annotated[int, typer.Argument(help="The proposal's id")],
    author: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Commit a stored proposal as a new grid version."""
    from layers.grid_changes import commit_and_recolour

    with _grid_engine().begin() as conn:
        result = commit_and_recolour(conn, change_id, author=author)
    typer.echo(json.dumps(result.to_json()))


@grids_app.command("rollback")
def grids_rollback(
    change_id: Annotated[int, typer.Argument(help="The committed change to undo")],
    reason: Annotated[str, typer.Option(help="Why it is undone")],
    author: Annotated[str, typer.Option(help="Who")] = "cli",
) -> None:
    """Undo a committed change as a new version."""
    from layers.grid_changes import rollback_and_recolour

    with _grid_engine().begin() as conn:
        result = rollback_and_recolour(conn, change_id, author=author, reason=reason)
    typer.echo(json.dumps(result.to_json()))


@grids_app.command("history")
def grids_history(code: Annotated[str, typer.Argument(help="A grid code")]) -> None:
    """A grid's versions over time."""
    from gis.grid_history import grid_history

    with _grid_engine().connect() as conn:
        for entry in grid_history(conn, code):
            typer.echo(f"v{entry['version_from']}-{entry['version_to'] or 'now'}  "
                       f"{entry['valid_from']} .. {entry['valid_to'] or ''}  "
                       f"{entry['area_m2']:.0f} m²  {entry['author']}: {entry['reason']}")
