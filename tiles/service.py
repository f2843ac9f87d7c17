"""Tiles for the API: versions to key on, the cache, rendering, and TileJSON facts."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from gis.errors import TooLarge
from gis.grid_snapshot import SnapshotHolder
from tiles.address import TileAddress
from tiles.cache import TileCache, TileKey
from tiles.layer_version import LayerVersionFollower
from tiles.queries import render_tile
from tiles.settings import TileSettings
from tiles.tilejson import city_bounds, tilejson

log = logging.getLogger(__name__)


class TileService:
    """One per API process: renders tiles from PostGIS and keeps them until a version moves."""

    def __init__(self, engine: sa.Engine, snapshots: SnapshotHolder,
                 layer_versions: LayerVersionFollower, settings: TileSettings) -> None:
        self.engine = engine
        self.settings = settings
        self._snapshots = snapshots
        self._layers = layer_versions
        self.cache = TileCache(settings.cache_mb * 2**20, settings.cache_max_tile_kb * 1024)
        self._bounds: tuple[int, list[float]] | None = None
        self._seen: tuple[int, int] | None = None

    def key(self, address: TileAddress) -> TileKey:
        """The cache key of a tile under the versions in force now (no database round trip)."""
        versions = (self._snapshots.get().version, self._layers.version)
        if versions != self._seen:
            if self._seen is not None:  # what the old versions drew will never be asked again
                self.cache.clear()
            self._seen = versions
        return TileKey(address, *versions)

    def districts(self) -> dict[str, str]:
        """District code → name of the grid version in force."""
        return self._snapshots.get().districts

    def cached(self, key: TileKey) -> bytes | None:
        """The tile of ``key`` if the cache holds it."""
        return self.cache.get(key)

    def render(self, key: TileKey) -> bytes:
        """Draw the tile from PostGIS, refuse it past the size bound, and cache it."""
        with self.engine.connect() as conn:
            tile = render_tile(conn, key.address)
        if len(tile) > self.settings.max_tile_kb * 1024:
            a = key.address
            raise TooLarge(f"tile {a.layer}/{a.z}/{a.x}/{a.y} would be {len(tile) // 1024} KiB, "
                           f"beyond {self.settings.max_tile_kb} KiB: zoom in or filter by "
                           f"district")
        self.cache.put(key, tile)
        return tile

    def tilejson(self, layer: str, tiles_url: str) -> dict[str, Any]:
        """The TileJSON of ``layer`` (the city's bounds are read once per grid version)."""
        version = self._snapshots.get().version
        if self._bounds is None or self._bounds[0] != version:
            with self.engine.connect() as conn:
                self._bounds = (version, city_bounds(conn))
        return tilejson(layer, tiles_url, self._bounds[1])
