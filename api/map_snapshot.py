"""A static, offline folium map of the current colours: one HTML file for reports.

Leaflet's script and styles (with their images as data URIs) are inlined, so the file opens
anywhere, with no server and no network: a report can be mailed or put on a USB stick.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import folium
import sqlalchemy as sa
from branca.element import Figure
from sqlalchemy.engine import Connection

from api.settings import STATIC_DIR

LEAFLET_DIR = STATIC_DIR / "vendor" / "leaflet-1.9.4"
COLOURS = {"red": "#d7301f", "yellow": "#f5b700", "blue": "#2c7fb8", "none": "#9e9e9e"}
COLOUR_NAMES = {"red": "红", "yellow": "黄", "blue": "蓝", "none": "无数据"}

_FEATURES = sa.text(
    """
    SELECT g.code, g.name, g.kind, d.name AS district, coalesce(c.colour, 'none') AS colour,
           c.score, c.open_events, c.pinned, c.reason,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(g.geom, :tolerance), 5) AS geometry
    FROM grid_current g
    JOIN district d ON d.code = g.district_code
    LEFT JOIN grid_colour c ON c.code = g.code
    WHERE g.level = :level AND (:district = '' OR g.district_code = :district)
    ORDER BY g.code
    """
)


@dataclass(frozen=True)
class Snapshot:
    """What was written: how many grids of each colour, and the layer version."""

    features: int
    counts: dict[str, int]
    layer_version: int | None
    bytes_written: int


def snapshot_features(conn: Connection, level: str, tolerance: float,
                      district: str = "") -> dict[str, Any]:
    """The grids of a level with their colour, simplified, as a GeoJSON FeatureCollection."""
    rows = conn.execute(_FEATURES, {"level": level, "tolerance": tolerance,
                                    "district": district}).mappings().all()
    features = []
    for row in rows:
        properties = {"code": row["code"], "name": row["name"], "district": row["district"],
                      "colour": row["colour"], "颜色": COLOUR_NAMES[row["colour"]],
                      "score": None if row["score"] is None else round(float(row["score"]), 1),
                      "open_events": row["open_events"],
                      "reason": row["reason"] if row["pinned"] else None}
        features.append({"type": "Feature", "geometry": json.loads(row["geometry"]),
                         "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def _inline_leaflet_css() -> str:
    css = (LEAFLET_DIR / "leaflet.css").read_text(encoding="utf-8")

    def data_uri(match: re.Match[str]) -> str:
        image = (LEAFLET_DIR / "images" / match.group(1)).read_bytes()
        return "url(data:image/png;base64," + base64.b64encode(image).decode("ascii") + ")"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", data_uri, css)


def _legend(counts: dict[str, int], title: str, stamp: str) -> str:
    rows = "".join(
        f'<div><i style="display:inline-block;width:14px;height:14px;margin-right:6px;'
        f'background:{COLOURS[c]}"></i>{COLOUR_NAMES[c]} {counts[c]}</div>'
        for c in ("red", "yellow", "blue", "none") if counts[c] or c != "none")
    return (f'<div style="position:fixed;bottom:56px;left:10px;z-index:1000;background:#fff;'
            f'padding:8px 10px;border-radius:6px;box-shadow:0 1px 6px rgba(0,0,0,.3);'
            f'font:13px sans-serif"><b>{html.escape(title)}</b>{rows}'
            f'<div style="color:#666;font-size:11px">{html.escape(stamp)}</div></div>')


def write_snapshot(conn: Connection, out: Path, *, level: str = "small",
                   tolerance: float = 0.0001, district: str = "") -> Snapshot:
    """Write the offline HTML snapshot of a level's colours to ``out``."""
    collection = snapshot_features(conn, level, tolerance, district)
    version = conn.execute(sa.text("SELECT layer_version FROM layer_state WHERE id = 1")).scalar()
    counts = {c: 0 for c in COLOURS}
    for feature in collection["features"]:
        counts[feature["properties"]["colour"]] += 1
    fmap = folium.Map(location=[36.06, 103.83], zoom_start=10, tiles=None, prefer_canvas=True,
                      control_scale=True)
    fmap.default_js = []  # no CDN: Leaflet goes inline below
    fmap.default_css = []
    root = cast(Figure, fmap.get_root())
    root.header.add_child(folium.Element(
        "<title>民情地图 · 红黄蓝快照</title>"
        f"<style>{_inline_leaflet_css()}</style>"
        f"<script>{(LEAFLET_DIR / 'leaflet.js').read_text(encoding='utf-8')}</script>"),
        name="leaflet_inline", index=0)
    layer = folium.GeoJson(
        collection, name="网格",
        style_function=lambda f: {"fillColor": COLOURS[f["properties"]["colour"]],
                                  "color": "#555555", "weight": 0.3, "opacity": 0.6,
                                  "fillOpacity": 0.75},
        tooltip=folium.GeoJsonTooltip(fields=["code", "name", "district", "颜色", "score"],
                                      aliases=["编码", "名称", "区县", "颜色", "得分"]),
        smooth_factor=0.5,
    ).add_to(fmap)
    if collection["features"]:
        fmap.fit_bounds(cast(Any, layer.get_bounds()))
    stamp = (f"生成于 {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
             f" · 图层版本 {version if version is not None else '–'}")
    level_name = {"small": "小网格", "medium": "中网格", "large": "大网格"}[level]
    root.html.add_child(folium.Element(_legend(counts, f"{level_name} 红黄蓝", stamp)))
    document = str(root.render())
    out.write_text(document, encoding="utf-8")
    return Snapshot(features=len(collection["features"]), counts=counts,
                    layer_version=None if version is None else int(version),
                    bytes_written=len(document.encode("utf-8")))
