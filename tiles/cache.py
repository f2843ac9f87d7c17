"""The in-process tile cache: an LRU bounded by bytes, keyed by everything a tile depends on."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from cachetools import LRUCache

from tiles.address import TileAddress


@dataclass(frozen=True)
class TileKey:
    """A tile and the versions of what it was drawn from: grid boundaries and layer colours."""

    address: TileAddress
    grid_version: int
    layer_version: int

    @property
    def etag(self) -> str:
        """A strong ETag: the hash of the key (same key, same tile)."""
        a = self.address
        text = (f"{a.layer}/{a.z}/{a.x}/{a.y}|d={a.district or ''}|at={a.at or ''}"
                f"|c={a.category or ''}"
                f"|g={self.grid_version}|l={self.layer_version}")
        return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


class TileCache:
    """Thread-safe LRU of tile bytes, bounded by total bytes; big tiles are not kept."""

    def __init__(self, max_bytes: int, max_tile_bytes: int) -> None:
        self._max_tile = max_tile_bytes
        # Empty tiles (204) still cost a slot: count them as one byte.
        self._lru: LRUCache[TileKey, bytes] = LRUCache(maxsize=max(max_bytes, 1),
                                                       getsizeof=lambda v: max(len(v), 1))
        self._lock = threading.Lock()
        self.enabled = max_bytes > 0
        self.hits = 0
        self.misses = 0

    def get(self, key: TileKey) -> bytes | None:
        """The cached tile, or None."""
        with self._lock:
            found = self._lru.get(key)
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def put(self, key: TileKey, tile: bytes) -> None:
        """Keep a tile unless caching is off or the tile is bigger than the per-tile bound."""
        if not self.enabled or len(tile) > self._max_tile:
            return
        with self._lock:
            self._lru[key] = tile

    def clear(self) -> None:
        """Forget every tile."""
        with self._lock:
            self._lru.clear()

    @property
    def bytes_held(self) -> int:
        """Bytes currently held."""
        return int(self._lru.currsize)

    def __len__(self) -> int:
        return len(self._lru)
