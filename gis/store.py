"""The PostGIS store: which database, engines, migrations, and a few whole-store facts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine, make_url

from gis.localdb import LocalCluster
from gis.settings import DatabaseSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class Database:
    """A resolved database: its URL and, on the embedded default, the cluster that serves it."""

    url: str
    cluster: LocalCluster | None

    @property
    def embedded(self) -> bool:
        """True when the project runs this database itself."""
        return self.cluster is not None

    def display_url(self) -> str:
        """The URL with any password hidden, for health pages and logs."""
        return make_url(self.url).render_as_string(hide_password=True)


def resolve_database(settings: DatabaseSettings) -> Database:
    """Pick the configured URL, or the embedded cluster's URL when none is set."""
    if settings.url is not None:
        url = settings.url
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return Database(url=url, cluster=None)
    cluster = LocalCluster.for_data_dir(settings.data_dir)
    return Database(url=cluster.url(settings.name), cluster=cluster)


def start_database(database: Database, name: str) -> bool:
    """Start the embedded cluster and create the database; True when this call started it."""
    if database.cluster is None:
        return False
    started = database.cluster.start()
    database.cluster.ensure_database(name)
    return started


def create_engine(database: Database, pool_size: int = 5) -> Engine:
    """An engine with a small pool, pre-ping on, times in Asia/Shanghai."""
    return sa.create_engine(
        database.url,
        pool_size=pool_size,
        pool_pre_ping=True,
        # A database that stopped answering should cost a request seconds, not minutes.
        connect_args={"options": "-c timezone=Asia/Shanghai", "connect_timeout": 5},
    )


def migrate(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def grid_counts(conn: Connection) -> dict[str, int]:
    """Number of current grids per level (missing levels count 0)."""
    rows = conn.execute(
        sa.text("SELECT level, count(*) FROM grid WHERE version_high IS NULL GROUP BY level")
    )
    counts = {"large": 0, "medium": 0, "small": 0}
    counts.update({str(row[0]): int(row[1]) for row in rows})
    return counts


def postgis_version(conn: Connection) -> str:
    """The PostGIS library version the database runs."""
    return str(conn.execute(sa.text("SELECT postgis_lib_version()")).scalar_one())


def current_version(conn: Connection) -> int | None:
    """Id of the newest grid version, or None before the first import."""
    value: int | None = conn.execute(sa.text("SELECT max(id) FROM grid_version")).scalar_one()
    return None if value is None else int(value)
