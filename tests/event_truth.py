"""What the fixture's sample events should become, computed without the project's router.

Inside events: their expected_code (the generator's truth, checked against shapely in
test_synth). Outside ones: the nearest small grid and its distance, measured with shapely in UTM
zone 48N (EPSG:32648); within 200 m they are snapped to it, beyond they stay unrouted.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

TOLERANCE_M = 200.0


@cache
def fixture_events(fixture_dir: Path) -> pd.DataFrame:
    """events.csv with ``owner`` (the grid it must land on, "" for none) and ``route``."""
    events = pd.read_csv(fixture_dir / "events.csv", dtype=str, keep_default_na=False)
    small = gpd.read_file(fixture_dir / "grids_small.geojson", engine="pyogrio").to_crs(32648)
    outside = events["expected_code"] == ""
    points = gpd.GeoSeries(gpd.points_from_xy(events.loc[outside, "true_lon"].astype(float),
                                              events.loc[outside, "true_lat"].astype(float)),
                           crs=4326).to_crs(32648)
    tree = shapely.STRtree(small.geometry.to_numpy())
    pairs, metres = tree.query_nearest(points.to_numpy(), return_distance=True,
                                       all_matches=False)
    nearest = small["code"].to_numpy()[pairs[1]]
    events["nearest_m"] = float("nan")
    events.loc[outside, "nearest_m"] = metres
    events["owner"] = events["expected_code"]
    snapped = outside.copy()
    snapped.loc[outside] = metres <= TOLERANCE_M
    events.loc[snapped, "owner"] = nearest[(metres <= TOLERANCE_M)]
    events["route"] = "exact"
    events.loc[outside, "route"] = "unrouted"
    events.loc[snapped, "route"] = "snapped"
    for column in ("reported_at", "due_at"):
        events[column] = pd.to_datetime(events[column], utc=True)
    return events
