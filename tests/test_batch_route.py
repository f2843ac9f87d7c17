"""`minqing route`: a CSV routed in chunks; unreadable rows rejected with reasons; exact counts."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from gis.batch_route import route_csv
from gis.coords import wgs84_to_gcj02
from gis.errors import InvalidInput
from gis.grid_snapshot import GridSnapshot, load_snapshot


@pytest.fixture(scope="module")
def snapshot(engine: sa.Engine) -> GridSnapshot:
    with engine.connect() as conn:
        return load_snapshot(conn)


def test_route_csv_in_chunks_with_rejects(tmp_path: Path, snapshot: GridSnapshot,
                                          fixture_dir: Path) -> None:
    with (fixture_dir / "probes.csv").open(encoding="utf-8", newline="") as handle:
        probes = list(csv.DictReader(handle))
    source = tmp_path / "in.csv"
    gx, gy = wgs84_to_gcj02(np.array([float(p["lon"]) for p in probes]),
                            np.array([float(p["lat"]) for p in probes]))
    with source.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "x", "y", "coord_sys"])
        for i, probe in enumerate(probes):
            if probe["kind"] == "interior" and i % 2:
                x, y = repr(float(gx[i])), repr(float(gy[i]))
                writer.writerow([probe["probe_id"], x, y, "gcj02"])
            else:
                writer.writerow([probe["probe_id"], probe["lon"], probe["lat"], ""])
        writer.writerow(["bad-1", "abc", "36.1", ""])
        writer.writerow(["bad-2", "36.06", "103.8", ""])
        writer.writerow(["bad-3", "103.8", "36.06", "mercator"])
    out, rejects = tmp_path / "out.csv", tmp_path / "rejects.csv"
    counts = route_csv(snapshot, source, out, rejects, lon_column="x", lat_column="y",
                       crs_column="coord_sys", chunk_rows=997, progress=False)
    outside = sum(1 for p in probes if not p["expected_code"])
    assert (counts.read, counts.located, counts.outside, counts.rejected) == (
        len(probes) + 3, len(probes) - outside, outside, 3)
    with out.open(encoding="utf-8", newline="") as handle:
        routed = {row["id"]: row for row in csv.DictReader(handle)}
    for probe in probes:
        row = routed[probe["probe_id"]]
        assert row["small_code"] == probe["expected_code"], probe
        if not probe["expected_code"]:
            assert row["route_status"] == "outside"
            assert row["nearest_code"] == probe["nearest_code"]
    with rejects.open(encoding="utf-8", newline="") as handle:
        reasons = {row["id"]: row["reason"] for row in csv.DictReader(handle)}
    assert "not a number" in reasons["bad-1"]
    assert "looks swapped" in reasons["bad-2"]
    assert "mercator" in reasons["bad-3"]


def test_route_csv_names_a_missing_column(tmp_path: Path, snapshot: GridSnapshot) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,lng,lat\n1,103.8,36.06\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="no column 'lon'"):
        route_csv(snapshot, source, tmp_path / "o.csv", tmp_path / "r.csv", progress=False)
