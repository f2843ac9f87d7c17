"""``minqing events import FILE.csv``: ingest events from a CSV file (streamed, idempotent)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli import _grid_engine, _say, app

events_app = typer.Typer(help="Events: import, monthly partitions.", no_args_is_help=True)
app.add_typer(events_app, name="events")


@events_app.command("import")
def events_import(
    source: Annotated[Path, typer.Argument(help="CSV with the event columns (docs/EVENTS.md)")],
    crs: Annotated[str, typer.Option(help="CRS of rows with no crs cell: wgs84, cgcs2000, "
                                     "gcj02 or bd09")] = "wgs84",
    rejects: Annotated[Path | None, typer.Option(help="Refused rows with the reason "
                                                 "(default SOURCE.rejects.csv)")] = None,
    encoding: Annotated[str, typer.Option(help="Input encoding (utf-8, gbk...)")] = "utf-8",
    chunk: Annotated[int, typer.Option(help="Rows per transaction", min=100, max=100_000)]
    = 20_000,
) -> None:
    """Import every row (a repeat of a stored source + source_id is counted, not duplicated)."""
    from gis.events.csv_import import import_csv
    from gis.grid_snapshot import GridSnapshot, load_snapshot
    from layers.refresh import refresh_grids

    if not source.exists():
        raise typer.BadParameter(f"no such file: {source}", param_hint="SOURCE")
    engine = _grid_engine()
    held: list[GridSnapshot] = []

    def snapshot(rebuild: bool) -> GridSnapshot:
        if rebuild or not held:
            with engine.connect() as conn:
                held[:] = [load_snapshot(conn)]
        return held[0]

    rejects = rejects or source.with_suffix(".rejects.csv")
    counts = import_csv(engine.begin, snapshot, source, rejects=rejects, crs=crs,
                        chunk_rows_n=chunk, encoding=encoding)
    if counts.touched:
        with engine.begin() as conn:
            refresh_grids(conn, sorted(counts.touched))
    ignored = f"; ignored columns: {', '.join(counts.ignored_columns)}" \
        if counts.ignored_columns else ""
    _say(f"{counts.summary()}; rejects in {rejects}{ignored}")
    typer.echo(f"created={counts.created} already_had={counts.already_had} "
               f"rejected={counts.rejected} unrouted={counts.unrouted}")


@events_app.command("partitions")
def events_partitions(
    ahead: Annotated[int, typer.Option(help="Months ahead of the current one to create",
                                       min=0, max=24)] = 3,
    since: Annotated[str | None, typer.Option(
        help="Also create every month from YYYY-MM on (before importing old events)")] = None,
) -> None:
    """Create the missing monthly partitions and move their events out of the DEFAULT one."""
    import datetime as dt

    from gis.events.partitions import maintain_partitions

    first = None
    if since is not None:
        try:
            first = dt.date.fromisoformat(since + "-01")
        except ValueError:
            raise typer.BadParameter(f"{since!r} is not a month (YYYY-MM)",
                                     param_hint="--since") from None
    report = maintain_partitions(_grid_engine().begin, ahead=ahead, since=first)
    typer.echo(report.summary())
    raise typer.Exit(1 if report.skipped else 0)
