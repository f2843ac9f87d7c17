"""The tile cache: bounded by bytes, keyed by versions, big tiles not kept; the tile settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tiles.address import TileAddress
from tiles.cache import TileCache, TileKey
from tiles.settings import TileSettings


def key(x: int, grid_version: int = 1, layer_version: int = 1, **filters: str) -> TileKey:
    return TileKey(TileAddress("small", 14, x, 0, **filters), grid_version, layer_version)


def test_least_recently_used_tiles_leave_first_within_the_byte_bound() -> None:
    cache = TileCache(max_bytes=3000, max_tile_bytes=1000)
    for x in range(3):
        cache.put(key(x), bytes(1000))
    assert cache.get(key(0)) is not None  # 0 is now the most recently used
    cache.put(key(3), bytes(1000))
    assert cache.get(key(1)) is None
    assert [cache.get(key(x)) is not None for x in (0, 2, 3)] == [True, True, True]
    assert cache.bytes_held == 3000 and len(cache) == 3


def test_big_tiles_are_not_kept_and_empty_ones_are() -> None:
    cache = TileCache(max_bytes=10_000, max_tile_bytes=1000)
    cache.put(key(0), bytes(1001))
    cache.put(key(1), b"")
    assert cache.get(key(0)) is None
    assert cache.get(key(1)) == b""


def test_zero_megabytes_turns_the_cache_off() -> None:
    cache = TileCache(max_bytes=0, max_tile_bytes=1000)
    cache.put(key(0), b"x")
    assert cache.get(key(0)) is None and not cache.enabled


def test_every_part_of_the_key_moves_the_etag() -> None:
    base = key(0)
    others = [key(1), key(0, grid_version=2), key(0, layer_version=2),
              key(0, district="620102"), key(0, category="环境卫生"),
              TileKey(TileAddress("medium", 14, 0, 0), 1, 1)]
    tags = {k.etag for k in others}
    assert base.etag not in tags and len(tags) == len(others)
    assert key(0).etag == base.etag
    assert base.etag.startswith('"') and base.etag.endswith('"')


def test_settings_refuse_a_cached_tile_bound_above_the_tile_bound() -> None:
    with pytest.raises(ValidationError, match="CACHE_MAX_TILE_KB"):
        TileSettings(cache_max_tile_kb=4096, max_tile_kb=1024)


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINQING_TILES_CACHE_MB", "8")
    monkeypatch.setenv("MINQING_TILES_MAX_AGE_S", "30")
    settings = TileSettings()
    assert (settings.cache_mb, settings.max_age_s) == (8, 30)
