"""pygeoapi's HTML pages at /ogc load every script, style and image from the app itself."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from api.ogc.config import base_url
from api.settings import Settings

# Every HTML page the mount serves (tile pages are in tests/api/test_ogc_tiles.py's list too).
PAGES = [
    "/", "/conformance", "/collections", "/collections/grids-small",
    "/collections/grids-small/items", "/collections/grids-small/items/620102001001001",
    "/collections/grids-small/queryables", "/collections/heat/items", "/openapi",
    "/TileMatrixSets", "/collections/grids-small/tiles",
    "/collections/grids-small/tiles/WebMercatorQuad",
]


class _Assets(HTMLParser):
    """The URLs a browser fetches to show a page: scripts, styles, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("script", "img", "iframe") and values.get("src"):
            self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href") and values.get("rel") in (
                "stylesheet", "icon", "shortcut icon", "preload", "modulepreload"):
            self.urls.append(str(values["href"]))


@pytest.mark.parametrize("path", PAGES)
def test_every_asset_of_a_page_is_served_by_the_app(
        client: Any, app_settings: Settings, path: str) -> None:
    page = client.get("/ogc" + path, params={"f": "html"})
    assert page.status_code == 200, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")
    parser = _Assets()
    parser.feed(page.text)
    base = base_url(app_settings)
    own = urlsplit(base).netloc
    assert parser.urls, "a page with no script or style at all was not rendered by pygeoapi"
    for url in parser.urls:
        absolute = urlsplit(urljoin(base + path, url))
        assert absolute.netloc == own, f"{path} loads {url} from another host"
        asset = client.get(absolute.path)
        assert asset.status_code == 200, f"{path}: {url} answers {asset.status_code}"
    for cdn in ("unpkg.com", "cdnjs.", "jsdelivr", "googleapis"):
        assert cdn not in page.text, f"{path} names {cdn}"


def test_the_items_map_reads_leaflet_and_its_plugins_from_the_app(client: Any) -> None:
    page = client.get("/ogc/collections/grids-small/items", params={"f": "html"}).text
    for asset in ("/ogc/vendor/leaflet-1.9.4/leaflet.js",
                  "/ogc/vendor/leaflet.markercluster-1.5.3/leaflet.markercluster.js",
                  "/ogc/vendor/bootstrap-5.1.3/bootstrap.min.css"):
        assert asset in page
    assert "leaflet.draw" not in page and "html5shiv" not in page
