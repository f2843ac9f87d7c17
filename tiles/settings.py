"""Settings of the vector tiles (prefix ``MINQING_TILES_``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TileSettings(BaseSettings):
    """How tiles are cached, bounded and followed."""

    model_config = SettingsConfigDict(env_prefix="MINQING_TILES_", extra="ignore")

    # Memory held by the in-process tile cache (LRU by bytes), per API process.
    cache_mb: int = Field(default=64, ge=0, le=4096)
    # Tiles bigger than this are not cached (they would evict hundreds of ordinary ones).
    cache_max_tile_kb: int = Field(default=1024, ge=1)
    # A tile larger than this is refused with a 413 asking to zoom in or filter.
    max_tile_kb: int = Field(default=8192, ge=1)
    # Browsers and proxies may reuse a tile this long, then must revalidate (ETag: 304).
    max_age_s: int = Field(default=10, ge=0, le=86400)
    # The layer version is followed by LISTEN layer_version, and re-read this often regardless.
    layer_recheck_s: float = Field(default=15.0, gt=0)

    @model_validator(mode="after")
    def _cached_fits(self) -> TileSettings:
        if self.cache_max_tile_kb > self.max_tile_kb:
            raise ValueError("MINQING_TILES_CACHE_MAX_TILE_KB cannot exceed "
                             "MINQING_TILES_MAX_TILE_KB")
        return self
