"""Settings of the spatial core, read from the environment (prefix ``MINQING_DB_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DatabaseSettings(BaseSettings):
    """Where the PostGIS database is.

    With no ``url`` the project runs its own embedded PostGIS cluster under ``data_dir``.
    """

    model_config = SettingsConfigDict(env_prefix="MINQING_DB_", extra="ignore")

    url: str | None = None
    data_dir: Path = PROJECT_ROOT / ".data"
    name: str = "minqing"
    pool_size: int = 5

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("MINQING_DB_URL must be a postgresql:// URL")
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        return value

    @property
    def embedded(self) -> bool:
        """True when the project provisions its own local cluster."""
        return self.url is None


class FixtureSettings(BaseSettings):
    """Where the synthetic Lanzhou is generated (prefix ``MINQING_FIXTURES_``)."""

    model_config = SettingsConfigDict(env_prefix="MINQING_FIXTURES_", extra="ignore")

    dir: Path = PROJECT_ROOT / "fixtures" / "out"
    seed: int = 20261125
    events: int = 30000
