"""What the browser tests share: Debian's Chromium, recorded pages, fixture probe points."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from playwright.sync_api import Browser, BrowserContext, Page

from gis.settings import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@dataclass(frozen=True)
class Probe:
    """A probe point of the fixtures with its expected owner."""

    probe_id: str
    kind: str
    lon: float
    lat: float
    expected_code: str
    covering_codes: tuple[str, ...]


@dataclass
class Recorded:
    """What a page asked for and what went wrong in it."""

    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: list[tuple[str, int]] = field(default_factory=list)  # (url, status)


def read_probes(fixture_dir: Path) -> list[Probe]:
    """Every probe point of the fixtures."""
    with (fixture_dir / "probes.csv").open(encoding="utf-8") as handle:
        return [Probe(row["probe_id"], row["kind"], float(row["lon"]), float(row["lat"]),
                      row["expected_code"], tuple(filter(None, row["covering_codes"].split(";"))))
                for row in csv.DictReader(handle)]


def open_page(browser: Browser, **context_options: Any) -> tuple[BrowserContext, Page, Recorded]:
    """A new context and page whose requests, failures and script errors are recorded."""
    context = browser.new_context(**context_options)
    page = context.new_page()
    recorded = Recorded()
    page.on("request", lambda request: recorded.requests.append(request.url))
    page.on("requestfailed", lambda request: recorded.failed.append(request.url))
    page.on("pageerror", lambda error: recorded.errors.append(str(error)))
    page.on("response", lambda response: recorded.answers.append((response.url,
                                                                  response.status)))
    return context, page, recorded


def deep_interior_probes(engine: sa.Engine, probes: list[Probe], *, min_edge_m: float,
                         count: int) -> list[Probe]:
    """Interior probes at least ``min_edge_m`` from their grid's edge (PostGIS measures)."""
    chosen = []
    with engine.connect() as conn:
        for probe in (p for p in probes if p.kind == "interior"):
            metres = conn.execute(sa.text(
                """SELECT ST_Distance(ST_Boundary(geom)::geography,
                                      ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography)
                   FROM grid_current WHERE code = :code"""),
                {"lon": probe.lon, "lat": probe.lat, "code": probe.expected_code}).scalar_one()
            if metres >= min_edge_m:
                chosen.append(probe)
            if len(chosen) == count:
                break
    return chosen
