"""``minqing map -o snapshot.html``: a static, offline folium map of the current colours."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli import _grid_engine, _say, app


@app.command("map")
def map_snapshot(
    out: Annotated[Path, typer.Option("-o", "--out", help="The HTML file to write")],
    level: Annotated[str, typer.Option(help="small, medium or large")] = "small",
    tolerance: Annotated[float, typer.Option(help="Simplification, degrees (1e-4 ≈ 10 m)")]
    = 0.0001,
    district: Annotated[str, typer.Option(help="Only this district (6-digit code)")] = "",
) -> None:
    """Write one self-contained HTML map of the grids' red/yellow/blue colours (no network)."""
    from api.map_snapshot import write_snapshot

    if level not in ("small", "medium", "large"):
        raise typer.BadParameter("level must be small, medium or large", param_hint="--level")
    if not 0 <= tolerance <= 0.01:
        raise typer.BadParameter("tolerance must be between 0 and 0.01 degrees",
                                 param_hint="--tolerance")
    if district and not (district.isdigit() and len(district) == 6):
        raise typer.BadParameter("a district code has 6 digits", param_hint="--district")
    with _grid_engine().connect() as conn:
        snapshot = write_snapshot(conn, out, level=level, tolerance=tolerance, district=district)
    if not snapshot.features:
        _say("warning: no grid matched; the map is empty")
    counts = snapshot.counts
    _say(f"wrote {out} ({snapshot.bytes_written / 2**20:.1f} MiB): {snapshot.features} grids, "
         f"red {counts['red']}, yellow {counts['yellow']}, blue {counts['blue']}"
         + (f", no colour yet {counts['none']}" if counts["none"] else ""))
