"""Headless Debian Chromium driven by Playwright against the app served on loopback.

The browser is the distribution's (/usr/bin/chromium, from scripts/debian-packages.txt);
Playwright never downloads one. Every test records every request the page makes.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_pages import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Probe, read_probes
from live_server import LiveServer, serve_app
from playwright.sync_api import Browser, Playwright, sync_playwright

from api.app import create_app
from api.settings import Settings


@pytest.fixture(scope="session")
def live_server(app_settings: Settings) -> Iterator[LiveServer]:
    """The whole app on the shared test database, on a loopback port."""
    with serve_app(create_app(app_settings)) as server:
        yield server


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver (no browser download: Debian's Chromium is launched below)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    assert Path(CHROMIUM).exists(), "install Debian's chromium (scripts/setup does)"
    browser = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def _close_pages(request: pytest.FixtureRequest) -> Iterator[None]:
    """Close the test's browser contexts, so no stream stays open past its test."""
    yield
    if "chromium" in request.fixturenames:
        for context in request.getfixturevalue("chromium").contexts:
            context.close()


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def probes(fixture_dir: Path) -> list[Probe]:
    """Every probe point of the fixtures."""
    return read_probes(fixture_dir)


@pytest.fixture(scope="session")
def gridworkers(fixture_dir: Path) -> dict[str, dict[str, str]]:
    """The fixtures' gridworker roster by grid code."""
    with (fixture_dir / "gridworkers.csv").open(encoding="utf-8") as handle:
        return {row["grid_code"]: row for row in csv.DictReader(handle)}
