"""End to end on a scratch copy of the city: a gridworker reports an incident from the phone
page, and the command-centre page already open on that grid shows one more open event, with no
reload.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_pages import Probe, deep_interior_probes, open_page
from live_server import LiveServer, serve_app
from playwright.sync_api import Browser

from api.app import create_app
from api.settings import Settings
from gis.auth import issue_token
from gis.settings import DatabaseSettings
from gis.store import Database, create_engine
from layers.refresh import refresh_all

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def city_server(city_module_database: Database) -> Iterator[LiveServer]:
    """The app on a scratch city (this module writes events)."""
    engine = create_engine(city_module_database)
    settings = Settings(db=DatabaseSettings(url=city_module_database.url))
    app = create_app(settings)
    with engine.begin() as conn:
        refresh_all(conn)
    with serve_app(app) as server:
        server.engine = engine
        yield server
    engine.dispose()


def test_a_report_from_the_phone_shows_up_on_the_open_command_map(
        chromium: Browser, city_server: LiveServer, probes: list[Probe], artifacts: Path) -> None:
    engine: sa.Engine = city_server.engine
    probe = deep_interior_probes(engine, probes, min_edge_m=40, count=1)[0]
    with engine.begin() as conn:
        viewer = issue_token(conn, "live viewer", "viewer")
        worker = issue_token(conn, "live gridworker", "gridworker", probe.expected_code)
    _context, command, recorded = open_page(chromium, viewport={"width": 1400, "height": 900})
    command.add_init_script(f"localStorage.setItem('minqing.token', {json.dumps(viewer)})")
    command.goto(city_server.url + "/")
    command.wait_for_function("window.minqing && minqing.ready && minqing.live.connected",
                              timeout=20000)
    command.evaluate(f"minqing.openGrid('{probe.expected_code}', null)")
    command.wait_for_function("minqing.lastCard && minqing.lastCard.code === "
                              f"'{probe.expected_code}'", timeout=10000)
    before = int(command.inner_text("#mq-grid [data-field=open_events]"))

    _phone_context, phone, phone_recorded = open_page(
        chromium, viewport={"width": 390, "height": 844}, is_mobile=True,
        geolocation={"longitude": probe.lon, "latitude": probe.lat, "accuracy": 10},
        permissions=["geolocation"])
    phone.add_init_script(f"localStorage.setItem('minqing.token', {json.dumps(worker)})")
    phone.goto(city_server.url + "/m/locate")
    phone.wait_for_function("window.minqing && minqing.gridDrawn", timeout=15000)
    phone.select_option("#mq-report-category", "安全隐患")
    phone.fill("#mq-report-text", "楼道堆放杂物，堵塞消防通道")
    phone.click("#mq-report-send")
    phone.wait_for_function("document.querySelector('#mq-report-result').textContent !== ''",
                            timeout=10000)
    assert phone.get_attribute("#mq-report-result", "class") == "mq-ok", \
        phone.inner_text("#mq-report-result")

    command.wait_for_function(
        f"document.querySelector('#mq-grid [data-field=open_events]').textContent === "
        f"'{before + 1}'", timeout=15000)
    command.screenshot(path=artifacts / "command-centre-live.png")
    assert recorded.errors == [] and phone_recorded.errors == []
    with engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT grid_code, category FROM event WHERE source = '网格员上报' "
            "AND source_id LIKE 'm-%' AND text = '楼道堆放杂物，堵塞消防通道'")).all()
    assert [tuple(row) for row in stored] == [(probe.expected_code, "安全隐患")]
