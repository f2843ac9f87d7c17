"""Settings of the web service (prefix ``MINQING_API_``) and the bundle the app factory takes."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.ogc.settings import OgcSettings
from gis.settings import DatabaseSettings, FixtureSettings


class ApiSettings(BaseSettings):
    """Where and how the HTTP service listens."""

    model_config = SettingsConfigDict(env_prefix="MINQING_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Each worker process holds its own router index (~50 MiB) and follows NOTIFY grid_version.
    workers: int = Field(default=1, ge=1, le=64)
    # One log line per request costs about a tenth of a locate; errors are logged regardless.
    access_log: bool = False
    # Largest request body accepted (413 beyond); grid files from QGIS are the big ones.
    max_body_mb: int = Field(default=64, ge=1, le=1024)
    # Browser origins allowed by CORS (none by default: the map is served by the app itself).
    cors_origins: list[str] = Field(default_factory=list)
    title: str = "民情地图 Minqing Map"


@dataclass
class Settings:
    """Everything ``create_app`` needs, one settings class per concern."""

    api: ApiSettings = field(default_factory=ApiSettings)
    db: DatabaseSettings = field(default_factory=DatabaseSettings)
    fixtures: FixtureSettings = field(default_factory=FixtureSettings)
    ogc: OgcSettings = field(default_factory=OgcSettings)
