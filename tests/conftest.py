"""Test set-up: a real PostGIS (the project's embedded cluster, or MINQING_TEST_DB_URL)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from gis.fixture_load import ensure_fixture_files, load_fixtures
from gis.settings import PROJECT_ROOT, DatabaseSettings, FixtureSettings
from gis.store import Database, create_engine, migrate, resolve_database, start_database

TEST_DB = "minqing_test"
_scratch_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def fixture_settings() -> FixtureSettings:
    """Where the synthetic Lanzhou lives for the tests (generated once, then reused)."""
    return FixtureSettings()


@pytest.fixture(scope="session")
def fixture_dir(fixture_settings: FixtureSettings) -> Path:
    """The generated fixture folder."""
    fx = fixture_settings
    ensure_fixture_files(fx.dir, fx.seed, fx.events)
    return fx.dir


@pytest.fixture(scope="session")
def database() -> Iterator[Database]:
    """The test cluster (its own data folder, never the service's), running for the session."""
    url = os.environ.get("MINQING_TEST_DB_URL")
    settings = DatabaseSettings(url=url, data_dir=PROJECT_ROOT / ".data" / "test", name=TEST_DB)
    database = resolve_database(settings)
    started = False
    if database.cluster is not None:
        started = database.cluster.start()
        database.cluster.drop_database(TEST_DB)
        database.cluster.ensure_database(TEST_DB)
    yield database
    if started and database.cluster is not None:
        database.cluster.stop()


@pytest.fixture(scope="session")
def engine(database: Database, fixture_dir: Path) -> Iterator[Engine]:
    """An engine on the test database, migrated and loaded with the synthetic Lanzhou."""
    engine = create_engine(database)
    migrate(engine)
    with engine.begin() as conn:
        load_fixtures(conn, fixture_dir)
    yield engine
    engine.dispose()


@contextmanager
def _scratch(database: Database) -> Iterator[Database]:
    """A fresh, empty, migrated database on the embedded cluster, dropped afterwards."""
    if database.cluster is None:
        pytest.skip("scratch databases need the embedded cluster")
    name = f"minqing_scratch_{os.getpid()}_{next(_scratch_numbers)}"
    database.cluster.ensure_database(name)
    scratch = Database(url=database.cluster.url(name), cluster=database.cluster)
    engine = create_engine(scratch)
    migrate(engine)
    engine.dispose()
    try:
        yield scratch
    finally:
        database.cluster.drop_database(name)


@pytest.fixture
def scratch_database(database: Database) -> Iterator[Database]:
    """A fresh, empty, migrated database for tests that write (dropped afterwards)."""
    with _scratch(database) as scratch:
        yield scratch


@pytest.fixture(scope="module")
def scratch_module_database(database: Database) -> Iterator[Database]:
    """A fresh, empty, migrated database shared by one test module (dropped afterwards)."""
    with _scratch(database) as scratch:
        yield scratch


@pytest.fixture(scope="session")
def app_settings(database: Database, engine: Engine) -> Settings:
    """App settings pointing at the loaded test database."""
    return Settings(db=DatabaseSettings(url=database.url, name=TEST_DB))


@pytest.fixture(scope="session")
def client(app_settings: Settings) -> Iterator[TestClient]:
    """A TestClient on the full app, lifespan run."""
    with TestClient(create_app(app_settings)) as test_client:
        yield test_client


def count(engine: Engine, sql: str, **params: object) -> int:
    """Scalar count helper for assertions."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


__all__ = ["count", "start_database"]
