"""The ``minqing`` command line: serve, database, fixtures, grids."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from api.settings import Settings
from gis.store import create_engine, migrate, resolve_database, start_database

app = typer.Typer(help="民情地图 (Minqing Map) grid-governance GIS service.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
db_app = typer.Typer(help="The PostGIS database (embedded cluster by default).",
                     no_args_is_help=True)
fixtures_app = typer.Typer(help="The synthetic Lanzhou fixtures.", no_args_is_help=True)
grids_app = typer.Typer(help="Grid files: validate, import, export.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(fixtures_app, name="fixtures")
app.add_typer(grids_app, name="grids")
users_app = typer.Typer(help="API tokens and their roles.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _prepare_database(settings: Settings, *, load: bool) -> bool:
    """Start (embedded), migrate and optionally load fixtures; True if the cluster was started."""
    from gis.fixture_load import ensure_fixture_files, load_fixtures

    database = resolve_database(settings.db)
    started = start_database(database, settings.db.name)
    engine = create_engine(database)
    try:
        migrate(engine)
        if load:
            fx = settings.fixtures
            if ensure_fixture_files(fx.dir, fx.seed, fx.events):
                _say(f"generated the synthetic Lanzhou in {fx.dir}")
            with engine.begin() as conn:
                result = load_fixtures(conn, fx.dir)
            if result.loaded and result.grids is not None:
                events = f", events: {result.events.summary()}" if result.events else ""
                _say(f"loaded fixtures: {result.grids.summary()}, "
                     f"{result.gridworkers} gridworkers{events}")
            from layers.refresh import ensure_layer

            with engine.begin() as conn:  # colours at start: once, or after a rules change
                if (done := ensure_layer(conn)) is not None:
                    _say(f"layers computed: {done.grids} grids in {done.seconds['total']:.2f} s")
    finally:
        engine.dispose()
    return started


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    load: Annotated[bool, typer.Option(help="Load the synthetic Lanzhou if empty")] = True,
    keep_db: Annotated[bool, typer.Option(help="Leave the embedded database running")] = False,
    workers: Annotated[int | None, typer.Option(help="Worker processes (own index each)")] = None,
) -> None:
    """Start the service (and, on the embedded default, its own PostGIS)."""
    import logging.config

    import uvicorn

    from api.app import create_app
    from api.log_format import logging_config

    settings = Settings()
    log_config = logging_config(settings.api.log_format == "json")
    logging.config.dictConfig(log_config)
    # The OGC API builds its links on the address served; workers read it from the environment.
    settings.api.host, settings.api.port = host or settings.api.host, port or settings.api.port
    os.environ["MINQING_API_HOST"], os.environ["MINQING_API_PORT"] = (
        settings.api.host, str(settings.api.port))
    database = resolve_database(settings.db)
    _prepare_database(settings, load=load)
    _say(f"database: {database.display_url()}")
    # uvicorn re-raises SIGTERM once it has shut down; turn it into SystemExit so the embedded
    # database below is stopped instead of the process dying with it still running.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    try:
        count = workers or settings.api.workers
        # Several workers import the factory and read the same settings from the environment.
        uvicorn.run(create_app(settings) if count == 1 else "api.app:create_app",
                    factory=count > 1, workers=count if count > 1 else None,
                    host=host or settings.api.host, port=port or settings.api.port,
                    log_level="info", access_log=settings.api.access_log,
                    log_config=log_config)
    finally:
        if database.cluster is not None and not keep_db:
            database.cluster.stop()
            _say("embedded database stopped")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster and apply migrations."""
    settings = Settings()
    _prepare_database(settings, load=False)
    _say(resolve_database(settings.db).display_url())


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster."""
    database = resolve_database(Settings().db)
    if database.cluster is None:
        _say("a configured database URL is in use: nothing to stop")
        return
    database.cluster.stop()


@db_app.command("status")
def db_status() -> None:
    """Say which database is used and whether the embedded one runs."""
    database = resolve_database(Settings().db)
    running = database.cluster.running() if database.cluster else None
    typer.echo(json.dumps({"url": database.display_url(), "embedded": database.embedded,
                           "running": running}))


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply the migrations to the configured database."""
    _prepare_database(Settings(), load=False)


@fixtures_app.command("make")
def fixtures_make(
    out: Annotated[Path | None, typer.Option(help="Output folder")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed")] = None,
    events: Annotated[int | None, typer.Option(help="Number of sample events")] = None,
) -> None:
    """Generate the synthetic Lanzhou (same seed, same bytes)."""
    from gis.synth import make_fixtures

    fx = Settings().fixtures
    manifest = make_fixtures(out or fx.dir, seed=fx.seed if seed is None else seed,
                             events=fx.events if events is None else events)
    typer.echo(json.dumps(manifest.get("counts", manifest), ensure_ascii=False, indent=1))


@fixtures_app.command("load")
def fixtures_load(force: Annotated[bool, typer.Option(help="Load even if grids exist")] = False,
                  ) -> None:
    """Load the synthetic Lanzhou into the database."""
    from gis.fixture_load import ensure_fixture_files, load_fixtures

    settings = Settings()
    _prepare_database(settings, load=False)
    fx = settings.fixtures
    ensure_fixture_files(fx.dir, fx.seed, fx.events)
    engine = create_engine(resolve_database(settings.db))
    with engine.begin() as conn:
        result = load_fixtures(conn, fx.dir, force=force)
    _say(result.grids.summary() if result.grids else "grids already loaded; nothing done")


def _grid_engine() -> Engine:
    settings = Settings()
    database = resolve_database(settings.db)
    start_database(database, settings.db.name)
    engine = create_engine(database)
    migrate(engine)
    return engine


@grids_app.command("validate")
def grids_validate(
    files: Annotated[list[Path] | None, typer.Argument(help="Grid files; none: the store")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    city: Annotated[bool, typer.Option(help="Expect the full city's counts")] = False,
    encoding: Annotated[str | None, typer.Option(help="Attribute encoding (GBK...)")] = None,
) -> None:
    """Check topology: validity, gaps, overlaps, nesting, counts. Exit 1 on faults."""
    from gis.grid_files_set import read_grid_files
    from gis.grid_import import CITY_COUNTS, current_grids
    from gis.topology import check_topology

    if files:
        grids = read_grid_files(files, encoding=encoding)
    else:
        with _grid_engine().connect() as conn:
            grids = current_grids(conn)
    report = check_topology(grids, expected_counts=CITY_COUNTS if city else None)
    typer.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=1) if as_json
               else report.to_text())
    raise typer.Exit(0 if report.ok else 1)


@grids_app.command("import")
def grids_import(
    files: Annotated[list[Path], typer.Argument(help="GeoPackage / GeoJSON / Shapefile")],
    reason: Annotated[str, typer.Option(help="Why (kept in the history)")] = "import",
    author: Annotated[str, typer.Option(help="Who")] = "cli",
    encoding: Annotated[str | None, typer.Option(help="Attribute encoding (GBK...)")] = None,
) -> None:
    """Import grids as a new version, all or nothing (levels in the files replace the store's)."""
    from gis.grid_files_set import read_grid_files
    from gis.grid_import import import_grid_set

    grids = read_grid_files(files, encoding=encoding)
    with _grid_engine().begin() as conn:
        result = import_grid_set(conn, grids, author=author, reason=reason)
    typer.echo(result.summary() if result.version else "no change: nothing imported")


@grids_app.command("export")
def grids_export(
    out: Annotated[Path, typer.Argument(help="Output .gpkg / .geojson / .shp")],
    level: Annotated[str | None, typer.Option(help="large, medium or small")] = None,
    at: Annotated[str | None, typer.Option(help="As of this date (YYYY-MM-DD)")] = None,
    encoding: Annotated[str, typer.Option(help="Shapefile attribute encoding")] = "UTF-8",
) -> None:
    """Export the current (or as-of) grids."""
    import datetime as dt

    from gis.grid_files_set import export_grids

    if level not in (None, "large", "medium", "small"):
        raise typer.BadParameter("level must be large, medium or small", param_hint="--level")
    when = None
    if at:
        try:
            when = dt.datetime.fromisoformat(at).replace(tzinfo=dt.timezone(dt.timedelta(hours=8)))
        except ValueError as exc:
            raise typer.BadParameter(f"not a date: {at!r}", param_hint="--at") from exc
    with _grid_engine().connect() as conn:
        written = export_grids(conn, out, level=level, at=when, encoding=encoding)
    _say(f"wrote {written} grids to {out}")


@app.command("route")
def route(
    source: Annotated[Path, typer.Argument(help="CSV with a longitude and a latitude column")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output CSV")],
    rejects: Annotated[Path | None, typer.Option(help="Rejected rows (default OUT.rejects.csv)")]
    = None,
    lon: Annotated[str, typer.Option(help="Longitude column")] = "lon",
    lat: Annotated[str, typer.Option(help="Latitude column")] = "lat",
    crs: Annotated[str, typer.Option(help="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
    crs_column: Annotated[str | None, typer.Option(help="Per-row CRS column")] = None,
    encoding: Annotated[str, typer.Option(help="Input encoding (utf-8, gbk...)")] = "utf-8",
) -> None:
    """Route every row of a CSV to its small grid (streams; any size)."""
    from gis.batch_route import route_csv
    from gis.grid_snapshot import load_snapshot

    if not source.exists():
        raise typer.BadParameter(f"no such file: {source}", param_hint="SOURCE")
    with _grid_engine().connect() as conn:
        snapshot = load_snapshot(conn)
    rejects = rejects or out.with_suffix(".rejects.csv")
    counts = route_csv(snapshot, source, out, rejects, lon_column=lon, lat_column=lat, crs=crs,
                       crs_column=crs_column, encoding=encoding)
    _say(f"{counts.summary()}; output {out}, rejects {rejects}")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Who the token is for")],
    role: Annotated[str, typer.Option(
        help="viewer, gridworker, planner, command, ingest or admin")],
    grid: Annotated[str | None, typer.Option(help="A gridworker's small grid code")] = None,
) -> None:
    """Issue a token (printed once; only its hash is stored)."""
    from gis.auth import issue_token

    with _grid_engine().begin() as conn:
        typer.echo(issue_token(conn, name, role, grid))


@users_app.command("revoke")
def users_revoke(name: Annotated[str, typer.Argument(help="Whose tokens")]) -> None:
    """Revoke every live token of a user."""
    from gis.auth import revoke_tokens

    with _grid_engine().begin() as conn:
        _say(f"revoked {revoke_tokens(conn, name)} token(s)")


# Command groups kept in their own modules register themselves on import.
from api import cli_events, cli_grid_changes, cli_layers, cli_map  # noqa: E402, F401


def main() -> None:
    """Entry point of the ``minqing`` command: domain errors become a message and exit code 2."""
    from gis.errors import MinqingError

    try:
        app()
    except MinqingError as exc:
        _say(f"error: {exc.message}")
        sys.exit(2)


if __name__ == "__main__":
    main()
