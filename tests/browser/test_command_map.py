"""The command-centre map in headless Chromium: offline, drawn, clickable, live."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import sqlalchemy as sa
from browser_pages import Probe, Recorded, deep_interior_probes, open_page
from live_server import LiveServer, serve_app
from playwright.sync_api import Browser, Page

from api.app import create_app
from api.map_settings import MapSettings
from api.settings import Settings
from gis.auth import issue_token

pytestmark = pytest.mark.browser

COLOURS = {"red": (0xd7, 0x30, 0x1f), "yellow": (0xf5, 0xb7, 0x00), "blue": (0x2c, 0x7f, 0xb8),
           None: (0x99, 0x99, 0x99)}


def _open_map(browser: Browser, server: LiveServer, token: str | None = None,
              ) -> tuple[Page, Recorded]:
    _context, page, recorded = open_page(browser, viewport={"width": 1400, "height": 900})
    if token:  # what the 登录令牌 button stores after the prompt
        page.add_init_script(f"localStorage.setItem('minqing.token', {json.dumps(token)})")
    page.goto(server.url + "/")
    page.wait_for_function("window.minqing && window.minqing.ready === true", timeout=20000)
    return page, recorded


def _centre_on(page: Page, probe: Probe, zoom: int = 16) -> tuple[float, float]:
    """Centre the map on a probe; its position on the screen, in page pixels."""
    page.evaluate(f"minqing.map.setView(minqing.frame.latLng({probe.lon}, {probe.lat}), {zoom},"
                  " {animate: false})")
    point = page.evaluate(f"""(() => {{
        const p = minqing.map.latLngToContainerPoint(minqing.frame.latLng({probe.lon},
                                                                          {probe.lat}));
        const box = minqing.map.getContainer().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y]; }})()""")
    return float(point[0]), float(point[1])


def _click_probe(page: Page, probe: Probe) -> None:
    x, y = _centre_on(page, probe)
    page.mouse.click(x, y)
    page.wait_for_function(
        "document.querySelector('#mq-grid [data-field=code]') && "
        f"document.querySelector('#mq-grid [data-field=code]').textContent === "
        f"'{probe.expected_code}'", timeout=10000)


def _field(page: Page, name: str) -> str:
    return page.inner_text(f"#mq-grid [data-field={name}]")


@pytest.fixture(scope="module")
def viewer_token(engine: sa.Engine) -> str:
    """A command-centre staff token (removed afterwards)."""
    with engine.begin() as conn:
        token = issue_token(conn, "browser-test-viewer", "viewer")
    yield token
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_token WHERE name = 'browser-test-viewer'"))


def test_the_map_asks_nothing_of_any_host_but_the_app(chromium: Browser, live_server: LiveServer,
                                                     engine: sa.Engine, probes: list[Probe],
                                                     artifacts: Path) -> None:
    page, recorded = _open_map(chromium, live_server)
    probe = deep_interior_probes(engine, probes, min_edge_m=40, count=1)[0]
    _click_probe(page, probe)
    page.evaluate("minqing.map.setZoom(13, {animate: false})")
    page.wait_for_timeout(1500)
    page.screenshot(path=artifacts / "command-centre.png")
    hosts = {urlsplit(url).netloc for url in recorded.requests if not url.startswith("data:")}
    assert hosts == {f"127.0.0.1:{live_server.port}"}, recorded.requests
    paths = {urlsplit(url).path for url in recorded.requests}
    # Leaflet, VectorGrid, Leaflet.heat and the page's own code all came from the app.
    assert {"/static/vendor/leaflet-1.9.4/leaflet.js", "/static/vendor/leaflet-1.9.4/leaflet.css",
            "/static/vendor/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js",
            "/static/vendor/leaflet.heat-0.2.0/leaflet-heat.min.js", "/static/map/shared.js",
            "/static/map/command.js", "/static/map/map.css", "/api/v1/live"} <= paths
    assert {p.split("/")[2] for p in paths if p.startswith("/tiles/")} >= {"small", "large"}
    assert recorded.errors == []


def test_a_click_on_a_grid_shows_its_code_and_gridworker(chromium: Browser,
                                                         live_server: LiveServer,
                                                         engine: sa.Engine, probes: list[Probe],
                                                         gridworkers: dict[str, dict[str, str]],
                                                         viewer_token: str) -> None:
    chosen = deep_interior_probes(engine, probes, min_edge_m=40, count=2)
    anonymous, _ = _open_map(chromium, live_server)
    _click_probe(anonymous, chosen[0])
    worker = gridworkers[chosen[0].expected_code]
    phone = worker["phone"]
    assert _field(anonymous, "gridworker") == f"{worker['name']} {phone[:3]}****{phone[-4:]}"
    staff, recorded = _open_map(chromium, live_server, token=viewer_token)
    _click_probe(staff, chosen[1])
    worker = gridworkers[chosen[1].expected_code]
    assert _field(staff, "gridworker") == f"{worker['name']} {worker['phone']}"
    # The grid's outline is drawn from its geometry.
    staff.wait_for_function("minqing.layers.highlight.getLayers().length === 1", timeout=10000)
    assert recorded.errors == []


def test_a_layer_version_notify_reaches_the_open_page(chromium: Browser, live_server: LiveServer,
                                                     engine: sa.Engine, artifacts: Path) -> None:
    page, _ = _open_map(chromium, live_server)
    page.wait_for_function("minqing.live.connected === true", timeout=10000)
    latencies = []
    for version in (910001, 910002, 910003, 910004, 910005):
        sent = time.time()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_notify('layer_version', :v)"), {"v": str(version)})
            conn.commit()
        page.wait_for_function(
            f"minqing.live.messages.some(m => m.data.layer_version === {version})",
            timeout=10000)
        received = page.evaluate(
            f"minqing.live.messages.find(m => m.data.layer_version === {version}).received")
        latencies.append((received - sent) * 1000)
    # The tile layers now ask for the new version (cache busting), the page was not reloaded.
    page.wait_for_function("minqing.layers.small._url.includes('v=910005')", timeout=5000)
    (artifacts / "live-latency.txt").write_text(
        "NOTIFY -> browser EventSource, ms: " + ", ".join(f"{ms:.1f}" for ms in latencies) + "\n")
    # Personal data never travels on the open stream.
    payload = json.dumps({"id": 77, "grid_code": "620102001001008", "category": "矛盾纠纷",
                          "reporter_phone": "13912345678", "text": "住户投诉"})
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_notify('events', :p)"), {"p": payload})
        conn.commit()
    page.wait_for_function("minqing.live.messages.some(m => m.kind === 'event')", timeout=10000)
    event = page.evaluate("minqing.live.messages.find(m => m.kind === 'event').data")
    assert {k: event[k] for k in ("id", "grid_code", "category")} == {
        "id": 77, "grid_code": "620102001001008", "category": "矛盾纠纷"}
    assert "reporter_phone" not in event and "text" not in event


def _canvas_colour_at(page: Page, x: float, y: float) -> tuple[int, int, int, int]:
    """The small-grid layer's own pixel at a page position (read from its tile canvas)."""
    rgba = page.evaluate(f"""(() => {{
        const pane = minqing.map.getPane('mq-grids');
        for (const canvas of pane.querySelectorAll('canvas')) {{
            const r = canvas.getBoundingClientRect();
            if ({x} >= r.left && {x} < r.right && {y} >= r.top && {y} < r.bottom) {{
                const px = Math.floor(({x} - r.left) * canvas.width / r.width);
                const py = Math.floor(({y} - r.top) * canvas.height / r.height);
                return Array.from(canvas.getContext('2d').getImageData(px, py, 1, 1).data);
            }}
        }}
        return null; }})()""")
    assert rgba is not None, "no small-grid tile canvas under the probe"
    return tuple(rgba)  # type: ignore[return-value]


def test_the_small_grid_layer_draws_each_grid_in_its_colour(chromium: Browser,
                                                            live_server: LiveServer,
                                                            engine: sa.Engine,
                                                            probes: list[Probe],
                                                            artifacts: Path) -> None:
    chosen = deep_interior_probes(engine, probes, min_edge_m=60, count=4)
    colours = dict(zip([p.expected_code for p in chosen], ("red", "yellow", "blue", "red"),
                       strict=True))
    _set_colours(engine, colours)
    try:
        page, recorded = _open_map(chromium, live_server)
        for probe in chosen:
            x, y = _centre_on(page, probe)
            page.wait_for_function(
                "Object.keys(minqing.layers.small._tiles).length > 0 && "
                "Object.values(minqing.layers.small._tiles).every(t => t.loaded)", timeout=15000)
            page.wait_for_timeout(300)
            r, g, b, alpha = _canvas_colour_at(page, x, y)
            assert alpha > 100, f"nothing drawn under {probe.probe_id}"
            assert (r, g, b) == pytest.approx(COLOURS[colours[probe.expected_code]], abs=3), probe
        page.screenshot(path=artifacts / "command-centre-tiles.png")
        assert recorded.errors == []
    finally:
        _set_colours(engine, {})


def _set_colours(engine: sa.Engine, colours: dict[str, str]) -> None:
    """Give grids these colours in the shared city (none: remove the test's rows) and tell the
    tile caches, as a layer refresh does."""
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM grid_colour WHERE reason = 'browser test'"))
        for code, colour in colours.items():
            conn.execute(sa.text(
                """INSERT INTO grid_colour (code, level, colour, computed_colour, reason)
                   VALUES (:code, 'small', :colour, :colour, 'browser test')
                   ON CONFLICT (code) DO UPDATE SET colour = :colour, reason = 'browser test'"""),
                {"code": code, "colour": colour})
        version = conn.execute(sa.text(
            "UPDATE layer_state SET layer_version = layer_version + 1 RETURNING layer_version"
        )).scalar_one()
        conn.execute(sa.text("SELECT pg_notify('layer_version', CAST(:v AS text))"),
                     {"v": version})
    time.sleep(1.0)  # the tile service follows NOTIFY within a moment


def test_the_pages_gcj02_shift_matches_the_servers(chromium: Browser, live_server: LiveServer,
                                                  probes: list[Probe]) -> None:
    from gis.coords import gcj02_to_wgs84, wgs84_to_gcj02

    sample = [p for p in probes if p.kind in ("interior", "outside")][::50]
    lons, lats = [p.lon for p in sample], [p.lat for p in sample]
    page, _ = _open_map(chromium, live_server)
    shifted = page.evaluate(f"{json.dumps(list(zip(lons, lats, strict=True)))}"
                            ".map(p => Minqing.toGcj(p[0], p[1]))")
    gx, gy = wgs84_to_gcj02(lons, lats)
    assert np.abs(np.array(shifted) - np.column_stack([gx, gy])).max() < 1e-12
    back = page.evaluate(f"{[[float(x), float(y)] for x, y in zip(gx, gy, strict=True)]}"
                         ".map(p => Minqing.fromGcj(p[0], p[1]))")
    wx, wy = gcj02_to_wgs84(gx, gy)
    # Both invert by iteration; they agree far below a centimetre (1e-7 degree).
    assert np.abs(np.array(back) - np.column_stack([wx, wy])).max() < 1e-9


def test_under_a_gcj02_basemap_tiles_and_clicks_are_shifted(chromium: Browser,
                                                             app_settings: Settings,
                                                             engine: sa.Engine,
                                                             probes: list[Probe]) -> None:
    from gis.coords import wgs84_to_gcj02

    # A basemap template on the app itself (nothing there): the page must not leave the app.
    settings = Settings(db=app_settings.db, map=MapSettings(
        basemap_url="/static/basemap-absent/{z}/{x}/{y}.png", basemap_crs="gcj02"))
    probe = deep_interior_probes(engine, probes, min_edge_m=40, count=1)[0]
    with serve_app(create_app(settings)) as server:
        page, recorded = _open_map(chromium, server)
        assert page.evaluate("minqing.frame.shift") == "gcj02"
        _click_probe(page, probe)  # clicks where the GCJ-02 basemap shows the probe
        # A z16 tile's shift is the GCJ-02 offset at its centre, in whole pixels.
        x, y, z = 52000, 25500, 16
        margins = page.evaluate(f"""(() => {{ const t = document.createElement('canvas');
            minqing.shiftTile(t, {{x: {x}, y: {y}, z: {z}}});
            return [parseFloat(t.style.marginLeft), parseFloat(t.style.marginTop)]; }})()""")
        n = 2 ** z
        lon = (x + 0.5) / n * 360 - 180
        lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * (y + 0.5) / n))))
        gx, gy = (float(v[0]) for v in wgs84_to_gcj02([lon], [lat]))
        def pixels(lo: float, la: float) -> tuple[float, float]:
            return ((lo + 180) / 360 * n * 256,
                    (1 - math.asinh(math.tan(math.radians(la))) / math.pi) / 2 * n * 256)
        (ax, ay), (bx, by) = pixels(lon, lat), pixels(gx, gy)
        assert margins == [round(bx - ax), round(by - ay)]
        assert margins[0] > 50  # ~220 m east at z16
        hosts = {urlsplit(url).netloc for url in recorded.requests}
        assert hosts == {f"127.0.0.1:{server.port}"}
