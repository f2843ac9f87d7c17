"""The benchmarks' own database: the synthetic Lanzhou on the embedded cluster or MINQING_DB_URL."""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.settings import Settings
from gis.fixture_load import ensure_fixture_files, load_fixtures
from gis.store import create_engine, migrate, resolve_database, start_database


def bench_city(name: str, *, fresh: bool = False, events: bool = True
               ) -> tuple[sa.Engine, Path]:
    """Database ``name`` migrated and loaded with the city (and its sample events), and the
    fixture folder; ``fresh`` drops it first."""
    settings = Settings()
    database = resolve_database(settings.db)
    start_database(database, settings.db.name)
    if database.cluster is not None:
        if fresh:
            database.cluster.drop_database(name)
        database.cluster.ensure_database(name)
        database = type(database)(url=database.cluster.url(name), cluster=database.cluster)
    engine = create_engine(database)
    migrate(engine)
    fx = settings.fixtures
    ensure_fixture_files(fx.dir, fx.seed, fx.events)
    with engine.begin() as conn:
        load_fixtures(conn, fx.dir, events=events)
    return engine, fx.dir
