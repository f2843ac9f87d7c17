"""The gridworker's phone page in headless Chromium with a mocked geolocation."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_pages import Probe, Recorded, deep_interior_probes, open_page
from live_server import LiveServer
from playwright.sync_api import Browser, Page

from gis.coords import wgs84_to_gcj02

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "permissions": ["geolocation"]}


def _phone_at(browser: Browser, server: LiveServer, lon: float, lat: float, accuracy: float,
              query: str = "") -> tuple[Page, Recorded]:
    _context, page, recorded = open_page(
        browser, geolocation={"longitude": lon, "latitude": lat, "accuracy": accuracy}, **PHONE)
    page.goto(server.url + "/m/locate" + query)
    page.wait_for_function("window.minqing && window.minqing.gridDrawn", timeout=15000)
    return page, recorded


def _where(page: Page, name: str) -> str:
    return page.inner_text(f"#mq-where [data-field={name}]")


def test_the_phone_page_at_a_probe_shows_its_grid(chromium: Browser, live_server: LiveServer,
                                                  engine: sa.Engine, probes: list[Probe],
                                                  gridworkers: dict[str, dict[str, str]],
                                                  artifacts: Path) -> None:
    probe = deep_interior_probes(engine, probes, min_edge_m=40, count=1)[0]
    page, recorded = _phone_at(chromium, live_server, probe.lon, probe.lat, accuracy=15)
    with engine.connect() as conn:
        small, medium, large = conn.execute(sa.text(
            """SELECT s.name, m.name, l.name FROM grid_current s
               JOIN grid_current m ON m.code = s.parent_code
               JOIN grid_current l ON l.code = m.parent_code WHERE s.code = :code"""),
            {"code": probe.expected_code}).one()
    assert _where(page, "code") == probe.expected_code
    assert (_where(page, "small"), _where(page, "medium"), _where(page, "large")) == (
        small, medium, large)
    worker = gridworkers[probe.expected_code]
    assert _where(page, "gridworker").startswith(worker["name"] + " ")
    assert int(_where(page, "distance")) >= 40
    assert page.is_hidden("#mq-ambiguous")
    assert page.evaluate("minqing.gridDrawn") == probe.expected_code
    assert page.is_enabled("#mq-report-send")
    # Leaflet marks the map with leaflet-zoom-anim while it flies to the grid.
    page.wait_for_function("!document.querySelector('.leaflet-zoom-anim')")
    page.screenshot(path=artifacts / "locate-phone.png", full_page=True)
    hosts = {r.split("/")[2] for r in recorded.requests if r.startswith("http")}
    assert hosts == {f"127.0.0.1:{live_server.port}"}
    assert recorded.errors == []


def test_gcj02_positions_from_a_wechat_like_container(chromium: Browser, live_server: LiveServer,
                                                       engine: sa.Engine,
                                                       probes: list[Probe]) -> None:
    # A probe whose GCJ-02 numbers, misread as WGS84 (~220 m off in Lanzhou), fall in another
    # grid, so that the test tells the two readings apart.
    for probe in deep_interior_probes(engine, probes, min_edge_m=40, count=10):
        gx, gy = (float(v[0]) for v in wgs84_to_gcj02([probe.lon], [probe.lat]))
        with engine.connect() as conn:
            misread = conn.execute(sa.text(
                """SELECT code FROM grid_current WHERE level = 'small'
                   AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326))"""),
                {"x": gx, "y": gy}).scalar()
        if misread is not None and misread != probe.expected_code:
            break
    else:
        raise AssertionError("no probe whose GCJ-02 misreading lands in another grid")
    page, _ = _phone_at(chromium, live_server, gx, gy, accuracy=10, query="?crs=gcj02")
    assert _where(page, "code") == probe.expected_code
    wrong, _ = _phone_at(chromium, live_server, gx, gy, accuracy=10)
    assert _where(wrong, "code") == misread


def test_an_accuracy_circle_across_an_edge_is_a_warning(chromium: Browser,
                                                        live_server: LiveServer,
                                                        probes: list[Probe]) -> None:
    probe = next(p for p in probes if p.kind == "edge" and len(p.covering_codes) == 2)
    page, _ = _phone_at(chromium, live_server, probe.lon, probe.lat, accuracy=30)
    assert _where(page, "code") == probe.expected_code
    assert page.is_visible("#mq-ambiguous")
    other = next(c for c in probe.covering_codes if c != probe.expected_code)
    assert other in page.inner_text("#mq-ambiguous")


def test_a_typed_position_is_located_too(chromium: Browser, live_server: LiveServer,
                                         engine: sa.Engine, probes: list[Probe]) -> None:
    first, second = deep_interior_probes(engine, probes, min_edge_m=40, count=2)
    page, _ = _phone_at(chromium, live_server, first.lon, first.lat, accuracy=10)
    page.click("#mq-manual summary")
    page.fill("#mq-lon", f"{second.lon}")
    page.fill("#mq-lat", f"{second.lat}")
    page.click("#mq-manual-form button[type=submit]")
    page.wait_for_function(f"minqing.gridDrawn === '{second.expected_code}'", timeout=10000)
    assert _where(page, "code") == second.expected_code
    page.fill("#mq-lat", "abc")
    page.click("#mq-manual-form button[type=submit]")
    page.wait_for_function("document.querySelector('#mq-where').textContent.includes('定位失败')",
                           timeout=10000)
