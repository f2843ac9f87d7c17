"""Settings of the web service (prefix ``MINQING_API_``) and the bundle the app factory takes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.map_settings import MapSettings
from api.ogc.settings import OgcSettings
from gis.settings import DatabaseSettings, FixtureSettings
from layers.settings import LayerSettings
from tiles.settings import TileSettings

# Vendored Leaflet and plugins, and the pages' own scripts: served by the app, no CDN.
STATIC_DIR = Path(__file__).resolve().parent / "static"


class ApiSettings(BaseSettings):
    """Where and how the HTTP service listens."""

    model_config = SettingsConfigDict(env_prefix="MINQING_API_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Each worker process holds its own router index (~50 MiB) and follows NOTIFY grid_version.
    workers: int = Field(default=1, ge=1, le=64)
    # One log line per request costs about a tenth of a locate; errors are logged regardless.
    access_log: bool = False
    # json: one JSON object a line (request id, status, path as fields); text for a terminal.
    log_format: Literal["json", "text"] = "json"
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
    layers: LayerSettings = field(default_factory=LayerSettings)
    map: MapSettings = field(default_factory=MapSettings)
    tiles: TileSettings = field(default_factory=TileSettings)
    ogc: OgcSettings = field(default_factory=OgcSettings)
