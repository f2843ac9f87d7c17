"""Settings of the OGC API mount (prefix ``MINQING_OGC_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OgcSettings(BaseSettings):
    """How pygeoapi is configured at start-up; the config is generated, never hand-written."""

    model_config = SettingsConfigDict(env_prefix="MINQING_OGC_", extra="ignore")

    enabled: bool = True
    # Public base of the mount as clients reach it (links in every answer are built on it);
    # unset: http://{MINQING_API_HOST}:{MINQING_API_PORT}/ogc.
    url: str | None = None
    # Where the generated pygeoapi config and OpenAPI document are written; unset: the
    # database data folder's ``ogc`` sub-folder.
    config_dir: Path | None = None
    default_items: int = Field(default=10, ge=1, le=10_000)
    max_items: int = Field(default=10_000, ge=1, le=100_000)
    # pygeoapi's own SQLAlchemy pool for its PostgreSQL provider (shared by all collections).
    pool_size: int = Field(default=4, ge=1, le=64)
    max_overflow: int = Field(default=4, ge=0, le=64)
    pool_recycle_s: int = Field(default=1800, ge=-1)
    # Basemap of pygeoapi's HTML pages; empty by default (intranets have no internet).
    basemap_url: str = ""
    basemap_attribution: str = ""

    @model_validator(mode="after")
    def _limits_ordered(self) -> OgcSettings:
        if self.default_items > self.max_items:
            raise ValueError("MINQING_OGC_DEFAULT_ITEMS must not exceed MINQING_OGC_MAX_ITEMS")
        if self.url is not None:
            self.url = self.url.rstrip("/")
            if not self.url.startswith(("http://", "https://")):
                raise ValueError("MINQING_OGC_URL must be an http(s):// URL")
        return self
