"""The map pages as folium documents whose every script and style is served by the app itself.

folium writes the page skeleton, the Leaflet map, the optional basemap and the district labels;
the live behaviour (vector tiles, filters, panels, server-sent events) is in the app's own
scripts under ``/static/map/``. folium's default CDN links are replaced by vendored copies.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, cast

import folium
import numpy as np
import sqlalchemy as sa
from branca.element import Figure
from sqlalchemy.engine import Connection

from api.map_settings import MapSettings
from gis.coords import wgs84_to_gcj02
from gis.synth.events import CATEGORIES, SOURCES

VENDOR = "/static/vendor"
LEAFLET_JS = ("leaflet", f"{VENDOR}/leaflet-1.9.4/leaflet.js")
LEAFLET_CSS = ("leaflet_css", f"{VENDOR}/leaflet-1.9.4/leaflet.css")
VECTORGRID_JS = ("vectorgrid",
                 f"{VENDOR}/leaflet.vectorgrid-1.3.0/Leaflet.VectorGrid.bundled.min.js")
HEAT_JS = ("leaflet_heat", f"{VENDOR}/leaflet.heat-0.2.0/leaflet-heat.min.js")
# The pages' own code, versioned in the URL so a deployment does not serve a stale copy.
ASSET_VERSION = "1"
SHARED_JS = ("minqing_shared", f"/static/map/shared.js?v={ASSET_VERSION}")
COMMAND_JS = ("minqing_command", f"/static/map/command.js?v={ASSET_VERSION}")
LOCATE_JS = ("minqing_locate", f"/static/map/locate.js?v={ASSET_VERSION}")
MAP_CSS = ("minqing_css", f"/static/map/map.css?v={ASSET_VERSION}")


@dataclass(frozen=True)
class District:
    """A district sub-centre and where its label goes (WGS84)."""

    code: str
    name: str
    lon: float
    lat: float


def current_layer_version(conn: Connection) -> int | None:
    """The colour layers' version now (tile URLs carry it, so caches never serve stale tiles)."""
    value = conn.execute(sa.text("SELECT layer_version FROM layer_state WHERE id = 1")).scalar()
    return None if value is None else int(value)


def load_districts(conn: Connection) -> list[District]:
    """Every district with a label position (its stored centre, else a point on its grids)."""
    rows = conn.execute(sa.text(
        """SELECT d.code, d.name,
                  ST_X(coalesce(d.centre, p.pt)) AS lon, ST_Y(coalesce(d.centre, p.pt)) AS lat
           FROM district d
           LEFT JOIN LATERAL (
               SELECT ST_PointOnSurface(g.geom) AS pt FROM grid_current g
               WHERE g.district_code = d.code AND g.level = 'large'
               ORDER BY ST_Area(g.geom) DESC LIMIT 1) p ON true
           ORDER BY d.code""")).all()
    return [District(r.code, r.name, float(r.lon), float(r.lat))
            for r in rows if r.lon is not None]


def _display_position(settings: MapSettings, lon: float, lat: float) -> tuple[float, float]:
    """Where a WGS84 point is drawn: shifted into GCJ-02 under a GCJ-02 basemap."""
    if not settings.shift_overlays:
        return lon, lat
    x, y = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
    return float(x[0]), float(y[0])


def _base_map(settings: MapSettings, *, scripts: list[tuple[str, str]],
              styles: list[tuple[str, str]], zoom: int) -> folium.Map:
    lon, lat = _display_position(settings, settings.centre_lon, settings.centre_lat)
    fmap = folium.Map(location=[lat, lon], zoom_start=zoom, tiles=None, control_scale=True,
                      prefer_canvas=True, max_zoom=19)
    # folium's defaults point at CDNs (Leaflet, jQuery, Bootstrap, Font Awesome): replace them
    # all by vendored files; the pages need nothing but Leaflet and its two plugins.
    fmap.default_js = [LEAFLET_JS, *scripts]
    fmap.default_css = [LEAFLET_CSS, *styles]
    if settings.basemap_url:
        folium.TileLayer(tiles=settings.basemap_url, attr=settings.basemap_attribution or " ",
                         name="底图", max_zoom=settings.basemap_max_zoom,
                         subdomains=settings.basemap_subdomains or "abc",
                         overlay=False, control=False).add_to(fmap)
    return fmap


def _start_script(fmap: folium.Map, starter: str, config: dict[str, Any]) -> None:
    payload = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    cast(Figure, fmap.get_root()).script.add_child(folium.Element(
        f"document.addEventListener('DOMContentLoaded', function () {{"
        f" {starter}({fmap.get_name()}, {payload}); }});"))


def _common_config(settings: MapSettings) -> dict[str, Any]:
    return {
        "api": "/api/v1",
        "shift": "gcj02" if settings.shift_overlays else None,
        "basemap": bool(settings.basemap_url),
    }


def command_centre_html(settings: MapSettings, districts: list[District],
                        layer_version: int | None) -> str:
    """The command-centre map: coloured grids, heat, events, filters, panels, live updates."""
    fmap = _base_map(settings, zoom=settings.zoom,
                     scripts=[VECTORGRID_JS, HEAT_JS, SHARED_JS, COMMAND_JS], styles=[MAP_CSS])
    labels = folium.FeatureGroup(name="区县名称", show=True)
    for district in districts:
        lon, lat = _display_position(settings, district.lon, district.lat)
        folium.Marker([lat, lon], icon=folium.DivIcon(
            html=f'<div class="mq-district-label">{html.escape(district.name)}</div>',
            icon_size=(96, 20), icon_anchor=(48, 10), class_name="mq-district-icon"),
        ).add_to(labels)
    labels.add_to(fmap)
    root = cast(Figure, fmap.get_root())
    root.header.add_child(folium.Element("<title>民情地图 · 指挥中心</title>"))
    root.html.add_child(folium.Element(_COMMAND_PANELS))
    config = {
        **_common_config(settings),
        "tiles": "/tiles/{layer}/{z}/{x}/{y}.pbf",
        "tilejson": "/tiles/{layer}.json",
        "live": "/api/v1/live",
        "labels": labels.get_name(),
        "layerVersion": layer_version,
        "districts": [{"code": d.code, "name": d.name, "lon": d.lon, "lat": d.lat}
                      for d in districts],
        "categories": list(CATEGORIES),
        "sources": [name for name, _prefix, _share in SOURCES],
    }
    _start_script(fmap, "MinqingCommandMap.start", config)
    return str(root.render())


def locate_page_html(settings: MapSettings) -> str:
    """The gridworker's phone page: which grid am I in, whose, how far to its edge; report."""
    fmap = _base_map(settings, zoom=13,
                     scripts=[SHARED_JS, LOCATE_JS], styles=[MAP_CSS])
    root = cast(Figure, fmap.get_root())
    root.header.add_child(folium.Element("<title>民情地图 · 我在哪个网格</title>"))
    root.html.add_child(folium.Element(_LOCATE_PANELS))
    config = {**_common_config(settings),
              "categories": list(CATEGORIES),
              "report_source": "网格员上报"}
    _start_script(fmap, "MinqingLocatePage.start", config)
    return str(root.render())


_COMMAND_PANELS = """
<div id="mq-toolbar" class="mq-panel">
  <strong class="mq-title">民情地图</strong>
  <label>区县 <select id="mq-district"><option value="">全市</option></select></label>
  <label>时间 <select id="mq-window"><option value="7">近7天</option>
    <option value="30">近30天</option></select></label>
  <label>类别 <select id="mq-category"><option value="">全部</option></select></label>
  <label>来源 <select id="mq-source"><option value="">全部</option></select></label>
  <button id="mq-token" type="button">登录令牌</button>
  <span id="mq-live" class="mq-live" title="实时更新">●</span>
</div>
<div id="mq-counts" class="mq-panel">
  <div id="mq-counts-scope">全市 · 小网格</div>
  <div class="mq-count-row">
    <span class="mq-chip mq-red">红 <b id="mq-count-red">–</b></span>
    <span class="mq-chip mq-yellow">黄 <b id="mq-count-yellow">–</b></span>
    <span class="mq-chip mq-blue">蓝 <b id="mq-count-blue">–</b></span>
  </div>
</div>
<div id="mq-legend" class="mq-panel">
  <div class="mq-legend-title">图例</div>
  <div><i class="mq-swatch mq-red"></i>红：重点关注</div>
  <div><i class="mq-swatch mq-yellow"></i>黄：需要关注</div>
  <div><i class="mq-swatch mq-blue"></i>蓝：平稳</div>
  <div><i class="mq-line mq-line-large"></i>大网格（镇街）</div>
  <div><i class="mq-line mq-line-medium"></i>中网格（村社区）</div>
</div>
<div id="mq-grid" class="mq-panel mq-hidden" aria-live="polite"></div>
<div id="mq-warnings" class="mq-panel">
  <div class="mq-legend-title">预警 <span id="mq-warning-count"></span></div>
  <ol id="mq-warning-list"></ol>
</div>
<div id="mq-note" class="mq-note mq-hidden"></div>
"""

_LOCATE_PANELS = """
<div id="mq-locate" class="mq-sheet">
  <div id="mq-where" class="mq-where">正在定位…</div>
  <div id="mq-ambiguous" class="mq-warn mq-hidden"></div>
  <details id="mq-manual">
    <summary>手动输入坐标</summary>
    <form id="mq-manual-form">
      <input id="mq-lon" name="lon" inputmode="decimal" placeholder="经度 103.83" required>
      <input id="mq-lat" name="lat" inputmode="decimal" placeholder="纬度 36.06" required>
      <select id="mq-crs" name="crs"><option value="wgs84">WGS84 (GPS)</option>
        <option value="gcj02">GCJ-02 (高德/腾讯)</option><option value="bd09">BD-09 (百度)</option>
        <option value="cgcs2000">CGCS2000</option></select>
      <button type="submit">定位</button>
    </form>
  </details>
  <form id="mq-report" class="mq-report">
    <div class="mq-legend-title">上报事件（当前位置）</div>
    <select id="mq-report-category" name="category" required></select>
    <select id="mq-report-severity" name="severity">
      <option value="1">一般</option><option value="2">较重</option>
      <option value="3">严重</option><option value="4">紧急</option></select>
    <textarea id="mq-report-text" name="text" rows="3" placeholder="事件描述" required></textarea>
    <button type="submit" id="mq-report-send" disabled>上报</button>
    <button type="button" id="mq-token">登录令牌</button>
    <div id="mq-report-result"></div>
  </form>
</div>
"""
