"""The map pages as served: every asset from the app, basemap settings, GCJ-02 labels."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.app import create_app
from api.map_settings import MapSettings
from api.settings import Settings
from gis.coords import wgs84_to_gcj02

ASSET = re.compile(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"')


def _config(page: str, starter: str) -> dict:
    start = page.index(starter + "(")
    payload = page[page.index(", ", start) + 2:page.index("); });", start)]
    return json.loads(payload)


@pytest.mark.parametrize("path", ["/", "/m/locate", "/docs"])
def test_every_script_and_style_comes_from_the_app(client: TestClient, path: str) -> None:
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = ASSET.findall(page.text)
    assert assets and all(a.startswith("/static/") for a in assets), assets
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    # No absolute URL at all in the document (folium's defaults name five CDNs).
    assert re.findall(r"https?://", page.text) == []


def test_the_command_page_names_the_districts_and_the_layer_version(client: TestClient,
                                                                    engine: sa.Engine) -> None:
    page = client.get("/").text
    config = _config(page, "MinqingCommandMap.start")
    with engine.connect() as conn:
        districts = conn.execute(sa.text("SELECT code, name FROM district ORDER BY code")).all()
        version = conn.execute(sa.text("SELECT layer_version FROM layer_state")).scalar_one()
    assert [(d["code"], d["name"]) for d in config["districts"]] == [tuple(d) for d in districts]
    assert len(config["districts"]) == 9
    assert config["layerVersion"] == version
    assert page.count("mq-district-label") == 9  # one DivIcon per district
    assert config["shift"] is None and config["basemap"] is False
    assert config["tiles"] == "/tiles/{layer}/{z}/{x}/{y}.pbf"
    for colour in ("红", "黄", "蓝"):
        assert f"{colour}：" in page


def test_a_gcj02_basemap_shifts_the_overlays(app_settings: Settings, engine: sa.Engine) -> None:
    url = "http://tiles.intranet.example/amap/{z}/{x}/{y}.png"
    settings = Settings(db=app_settings.db,
                        map=MapSettings(basemap_url=url, basemap_crs="gcj02",
                                        basemap_attribution="高德（内网镜像）"))
    with TestClient(create_app(settings)) as client:
        page = client.get("/").text
    assert url in page and json.dumps("高德（内网镜像）") in page
    config = _config(page, "MinqingCommandMap.start")
    assert config["shift"] == "gcj02" and config["basemap"] is True
    with engine.connect() as conn:
        lon, lat = conn.execute(sa.text(
            "SELECT ST_X(centre), ST_Y(centre) FROM district ORDER BY code LIMIT 1")).one()
    gx, gy = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    # folium writes the first district label at its GCJ-02 position, not its WGS84 one.
    marker = re.search(r"L\.marker\(\s*\[([\d.]+), ([\d.]+)\]", page)
    assert marker is not None
    assert (float(marker.group(1)), float(marker.group(2))) == pytest.approx(
        (float(gy[0]), float(gx[0])), abs=1e-9)


def test_a_cgcs2000_basemap_needs_no_shift() -> None:
    settings = MapSettings(basemap_url="http://t{s}.intranet/vec_w/{z}/{x}/{y}.png",
                           basemap_crs="cgcs2000", basemap_subdomains="01234567")
    assert settings.shift_overlays is False


@pytest.mark.parametrize(("changes", "problem"), [
    ({"basemap_url": "http://tiles.intranet/{z}/{x}.png"}, "needs {y}"),
    ({"basemap_url": "http://tiles.intranet/{z}/{x}/{y}.png", "basemap_crs": "bd09"},
     "basemap_crs"),
    ({"basemap_url": "http://tiles.intranet/{z}/{x}/{y}.png", "basemap_subdomains": "abc"},
     "has no {s}"),
])
def test_bad_basemap_settings_say_what_is_wrong(changes: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(problem)):
        MapSettings(**changes)


def test_basemap_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINQING_MAP_BASEMAP_URL", "http://tiles.intranet/{z}/{x}/{y}.png")
    monkeypatch.setenv("MINQING_MAP_BASEMAP_CRS", "gcj02")
    assert MapSettings().shift_overlays is True
    monkeypatch.delenv("MINQING_MAP_BASEMAP_URL")
    assert MapSettings().basemap_url is None and MapSettings().shift_overlays is False
