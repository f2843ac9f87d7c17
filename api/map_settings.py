"""Settings of the web map pages (prefix ``MINQING_MAP_``): the optional basemap and the view."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BasemapCrs = Literal["wgs84", "cgcs2000", "gcj02"]


class MapSettings(BaseSettings):
    """What the map pages show under the grids; no basemap by default (intranets are offline)."""

    model_config = SettingsConfigDict(env_prefix="MINQING_MAP_", extra="ignore")

    # A tile URL template served inside the intranet, e.g. a Tianditu mirror
    # "http://tiles.intranet/vec_w/{z}/{x}/{y}.png" (cgcs2000) or an Amap mirror (gcj02).
    basemap_url: str | None = None
    # The datum the basemap is drawn in; gcj02 shifts every overlay to match it.
    basemap_crs: BasemapCrs = "wgs84"
    basemap_attribution: str = ""
    basemap_max_zoom: int = Field(default=18, ge=1, le=22)
    basemap_subdomains: str = ""
    # The first view: the Lanzhou valley.
    centre_lon: float = Field(default=103.83, ge=-180, le=180)
    centre_lat: float = Field(default=36.06, ge=-90, le=90)
    zoom: int = Field(default=11, ge=1, le=20)

    @field_validator("basemap_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if not value:
            return None
        missing = [part for part in ("{z}", "{x}", "{y}") if part not in value]
        if missing:
            raise ValueError(f"MINQING_MAP_BASEMAP_URL needs {', '.join(missing)} "
                             f"(a tile URL template such as http://host/{{z}}/{{x}}/{{y}}.png)")
        return value

    @model_validator(mode="after")
    def _subdomains_need_placeholder(self) -> MapSettings:
        if self.basemap_subdomains and self.basemap_url and "{s}" not in self.basemap_url:
            raise ValueError("MINQING_MAP_BASEMAP_SUBDOMAINS is set but the URL has no {s}")
        return self

    @property
    def shift_overlays(self) -> bool:
        """Whether overlays (WGS84 data) must be drawn shifted into GCJ-02 to fit the basemap."""
        return self.basemap_url is not None and self.basemap_crs == "gcj02"
