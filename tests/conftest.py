"""Test set-up: a real PostGIS (the project's embedded cluster, or MINQING_TEST_DB_URL)."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
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
        _drop_left_behind(database)
    yield database
    if started and database.cluster is not None:
        database.cluster.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def _drop_left_behind(database: Database) -> None:
    """Drop the scratch and template databases of test runs that were killed (a city: 113 MB)."""
    assert database.cluster is not None
    admin = sa.create_engine(database.cluster.url("postgres"), poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        names = conn.execute(sa.text(
            r"SELECT datname FROM pg_database WHERE datname ~ '^minqing_(scratch|template)_'"
        )).scalars().all()
    admin.dispose()
    for name in names:
        pid = re.match(r"minqing_(?:scratch|template)_(\d+)_", name)  # _scratch, city_template
        if pid is not None and not _alive(int(pid.group(1))):
            database.cluster.drop_database(name)


@pytest.fixture(scope="session")
def engine(database: Database, fixture_dir: Path) -> Iterator[Engine]:
    """An engine on the test database, migrated and loaded with the synthetic Lanzhou."""
    engine = create_engine(database)
    migrate(engine)
    with engine.begin() as conn:
        load_fixtures(conn, fixture_dir)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def city_template(database: Database, fixture_dir: Path) -> Iterator[Callable[[bool], str]]:
    """Names of template databases of the synthetic Lanzhou (with its sample events, or grids
    only), migrated and loaded once a session, so a module's own city is a copy (0.5 s) rather
    than a load of its own (11 s)."""
    cluster = database.cluster
    if cluster is None:
        pytest.skip("scratch databases need the embedded cluster")
    made: dict[bool, str] = {}

    def template(events: bool) -> str:
        if events not in made:
            name = f"minqing_template_{os.getpid()}_{'city' if events else 'grids'}"
            cluster.drop_database(name)
            cluster.ensure_database(name)
            engine = create_engine(Database(url=cluster.url(name), cluster=cluster))
            migrate(engine)
            with engine.begin() as conn:
                load_fixtures(conn, fixture_dir, events=events)
            engine.dispose()  # a template is copied only with no session open on it
            made[events] = name
        return made[events]

    yield template
    for name in made.values():
        cluster.drop_database(name)


@contextmanager
def _scratch(database: Database, template: str | None = None) -> Iterator[Database]:
    """A fresh database on the embedded cluster, dropped afterwards: empty and migrated, or a
    copy of a template."""
    if database.cluster is None:
        pytest.skip("scratch databases need the embedded cluster")
    name = f"minqing_scratch_{os.getpid()}_{next(_scratch_numbers)}"
    if template is not None:
        database.cluster.copy_database(template, name)
    else:
        database.cluster.ensure_database(name)
    scratch = Database(url=database.cluster.url(name), cluster=database.cluster)
    if template is None:
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


@pytest.fixture
def city_database(database: Database, city_template: Callable[[bool], str]
                  ) -> Iterator[Database]:
    """A scratch copy of the loaded city with its sample events, for one test."""
    with _scratch(database, city_template(True)) as scratch:
        yield scratch


@pytest.fixture
def grids_database(database: Database, city_template: Callable[[bool], str]
                   ) -> Iterator[Database]:
    """A scratch copy of the loaded city without events, for one test."""
    with _scratch(database, city_template(False)) as scratch:
        yield scratch


@pytest.fixture(scope="module")
def city_module_database(database: Database, city_template: Callable[[bool], str]
                         ) -> Iterator[Database]:
    """A scratch copy of the loaded city with its sample events, shared by one module."""
    with _scratch(database, city_template(True)) as scratch:
        yield scratch


@pytest.fixture(scope="module")
def grids_module_database(database: Database, city_template: Callable[[bool], str]
                          ) -> Iterator[Database]:
    """A scratch copy of the loaded city without events, shared by one module."""
    with _scratch(database, city_template(False)) as scratch:
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
