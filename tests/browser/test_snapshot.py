"""``minqing map -o``: a static snapshot that opens from a file with no network at all."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from browser_pages import open_page
from playwright.sync_api import Browser
from typer.testing import CliRunner

from api.cli import app as cli
from api.map_snapshot import COLOURS, write_snapshot

pytestmark = pytest.mark.browser


def test_the_snapshot_draws_every_small_grid_in_its_colour_offline(
        chromium: Browser, engine: sa.Engine, tmp_path: Path, artifacts: Path) -> None:
    out = tmp_path / "snapshot.html"
    with engine.connect() as conn:
        snapshot = write_snapshot(conn, out)
        stored = Counter(dict(conn.execute(sa.text(
            """SELECT coalesce(c.colour, 'none'), count(*) FROM grid_current g
               LEFT JOIN grid_colour c ON c.code = g.code WHERE g.level = 'small'
               GROUP BY 1""")).all()))
    assert snapshot.features == 7507
    assert Counter({k: v for k, v in snapshot.counts.items() if v}) == stored
    _context, page, recorded = open_page(chromium, viewport={"width": 1200, "height": 800})
    page.goto(out.as_uri())
    find = "Object.keys(window).find(k => window[k] instanceof L.GeoJSON)"
    page.wait_for_function(f"!!({find})")
    drawn = page.evaluate(f"""(() => {{
        const layer = window[{find}];
        const fills = {{}};
        layer.eachLayer(l => {{ const c = l.options.fillColor; fills[c] = (fills[c] || 0) + 1; }});
        return fills; }})()""")
    assert drawn == {COLOURS[colour]: n for colour, n in stored.items()}
    assert {url.split(":")[0] for url in recorded.requests} <= {"file", "data"}
    assert recorded.requests[0] == out.as_uri() and recorded.errors == []
    page.screenshot(path=artifacts / "snapshot.png")


@pytest.mark.parametrize(("args", "words"), [
    (["--level", "tiny"], "level must be small, medium or large"),
    (["--tolerance", "0.5"], "tolerance must be between 0 and 0.01"),
    (["--district", "62"], "a district code has 6 digits"),
])
def test_bad_snapshot_options_say_what_is_wrong(tmp_path: Path, args: list[str],
                                                words: str) -> None:
    result = CliRunner().invoke(cli, ["map", "-o", str(tmp_path / "x.html"), *args])
    assert result.exit_code == 2
    assert words in result.output
    assert not (tmp_path / "x.html").exists()
