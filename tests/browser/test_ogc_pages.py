"""pygeoapi's HTML pages at /ogc in headless Chromium: nothing asked of any other host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_pages import Recorded, open_page
from live_server import LiveServer, free_port, serve_app
from playwright.sync_api import Browser, Page

from api.app import create_app
from api.ogc.settings import OgcSettings
from api.settings import Settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def ogc_server(app_settings: Settings, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[LiveServer]:
    """The app on a loopback port that its OGC links (and asset URLs) name."""
    port = free_port()
    settings = Settings(api=app_settings.api, db=app_settings.db, ogc=OgcSettings(
        url=f"http://127.0.0.1:{port}/ogc", config_dir=tmp_path_factory.mktemp("ogc")))
    with serve_app(create_app(settings), port=port) as server:
        yield server


def _visit(chromium: Browser, server: LiveServer, path: str) -> tuple[Page, Recorded]:
    _context, page, recorded = open_page(chromium, viewport={"width": 1200, "height": 900})
    page.goto(server.url + path, wait_until="networkidle")
    return page, recorded


def _only_the_app(recorded: Recorded, server: LiveServer) -> None:
    strangers = [url for url in recorded.requests
                 if not url.startswith(server.url + "/") and not url.startswith("data:")]
    assert strangers == []
    assert recorded.failed == [] and recorded.errors == []


@pytest.mark.parametrize("path", [
    "/ogc/?f=html", "/ogc/collections?f=html", "/ogc/collections/grids-small?f=html",
    "/ogc/collections/grids-small/items/620102001001001?f=html", "/ogc/openapi?f=html",
    "/ogc/TileMatrixSets?f=html",
])
def test_ogc_pages_ask_nothing_of_other_hosts(chromium: Browser, ogc_server: LiveServer,
                                              path: str) -> None:
    page, recorded = _visit(chromium, ogc_server, path)
    _only_the_app(recorded, ogc_server)
    styles = page.evaluate("getComputedStyle(document.querySelector('nav, header, body'))"
                           ".fontFamily")
    assert styles  # Bootstrap's stylesheet applied (its system font stack)
    assert any("/ogc/vendor/bootstrap-5.1.3/" in url for url in recorded.requests)


def test_the_items_page_draws_every_grid_of_the_page(chromium: Browser, ogc_server: LiveServer,
                                                     artifacts: Path) -> None:
    page, recorded = _visit(chromium, ogc_server,
                            "/ogc/collections/grids-small/items?f=html&limit=40&offset=100")
    _only_the_app(recorded, ogc_server)
    page.wait_for_selector("path.leaflet-interactive", timeout=15000)
    page.screenshot(path=str(artifacts / "ogc-items.png"))
    assert page.locator("path.leaflet-interactive").count() == 40
    assert page.locator("table tbody tr").count() == 40


def test_the_tiles_page_draws_tiles_fetched_through_ogc(chromium: Browser,
                                                       ogc_server: LiveServer) -> None:
    _page, recorded = _visit(chromium, ogc_server, "/ogc/collections/grids-small/tiles?f=html")
    _only_the_app(recorded, ogc_server)
    tiles = [(url, status) for url, status in recorded.answers
             if "/ogc/collections/grids-small/tiles/WebMercatorQuad/" in url]
    assert tiles and all(status in (200, 204) for _, status in tiles), tiles
    assert any(status == 200 for _, status in tiles)
