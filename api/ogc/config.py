"""The pygeoapi configuration and OpenAPI document, generated from the app's settings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection

from api.ogc.settings import OgcSettings
from api.ogc.tiles import TILE_LAYERS, tile_provider
from api.settings import Settings
from gis.store import Database

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
# CRS84 first: the default output (lon/lat) that every client expects without asking.
OUTPUT_CRS = [CRS84, EPSG_4326, EPSG_4490]
PROVIDER_CLASS = "api.ogc.provider.GridProvider"
CONFIG_FILE = "pygeoapi-config.yml"
OPENAPI_FILE = "pygeoapi-openapi.json"


@dataclass(frozen=True)
class Collection:
    """One OGC collection and the database view behind it."""

    id: str
    view: str
    title: str
    description: str
    keywords: tuple[str, ...]


COLLECTIONS = (
    Collection("grids-large", "ogc_grid_large", "大网格 Large grids (towns / streets)",
               "110 large grids (镇街) in force, with their red/yellow/blue colour.",
               ("网格", "镇街", "grid")),
    Collection("grids-medium", "ogc_grid_medium", "中网格 Medium grids (villages / communities)",
               "Medium grids (村社区) in force, each inside one large grid, with colours.",
               ("网格", "村社区", "grid")),
    Collection("grids-small", "ogc_grid_small", "小网格 Small grids (blocks / groups)",
               "Small grids (组小区) in force with their gridworker (name only) and colour.",
               ("网格", "网格员", "grid")),
    Collection("heat", "ogc_heat", "事件热度 Event heat per small grid",
               "Events in the last 7 and 30 days per small grid, and per category over 30 days;"
               " counts only, no event rows.", ("民情", "热度", "heat")),
)


def base_url(settings: Settings) -> str:
    """The public URL of the mount: the configured one, else the service's own address."""
    if settings.ogc.url:
        return settings.ogc.url
    return f"http://{settings.api.host}:{settings.api.port}/ogc"


def config_dir(settings: Settings) -> Path:
    """Where the generated documents go (inside the data folder unless configured)."""
    return settings.ogc.config_dir or settings.db.data_dir / "ogc"


def city_extent(conn: Connection) -> list[float]:
    """Bounding box of the grids in force (lon/lat), or Lanzhou's when none is loaded."""
    row = conn.execute(sa.text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom) AS e FROM grid WHERE version_high IS NULL) s")).one()
    if row[0] is None:
        return [102.6, 35.6, 104.6, 37.1]
    return [round(float(v), 6) for v in row]


def _provider(view: str, database: Database, ogc: OgcSettings) -> dict[str, Any]:
    grid = view.startswith("ogc_grid_")
    return {
        "type": "feature",
        "name": PROVIDER_CLASS,
        # A URL string keeps the project's psycopg 3 driver and its Unix-socket host.
        "data": database.url,
        "options": {"pool_size": ogc.pool_size, "max_overflow": ogc.max_overflow,
                    "pool_recycle": ogc.pool_recycle_s, "pool_pre_ping": True},
        "id_field": "code",
        "table": view,
        "geom_field": "geom",
        # The column is SRID 4326 with lon/lat order, which is what CRS84 names; declaring
        # EPSG:4326 here would make pygeoapi read the stored numbers as lat/lon.
        "storage_crs": CRS84,
        "crs": list(OUTPUT_CRS),
        # numberMatched costs a second scan of the view on every page; clients page on links.
        "count": False,
        # Hands ``?at=`` to the provider (grid collections have history views).
        "include_extra_query_parameters": grid,
    }


def build_config(settings: Settings, database: Database, extent: list[float]) -> dict[str, Any]:
    """The whole pygeoapi configuration for this service."""
    ogc = settings.ogc
    app_url = base_url(settings).removesuffix("/ogc")  # where /tiles is, beside /ogc
    resources = {
        c.id: {
            "type": "collection",
            "title": c.title,
            "description": c.description,
            "keywords": list(c.keywords),
            "extents": {"spatial": {"bbox": extent, "crs": CRS84}},
            # Features first (pygeoapi's default provider), then the tileset.
            "providers": [_provider(c.view, database, ogc),
                          tile_provider(app_url, TILE_LAYERS[c.id])],
        }
        for c in COLLECTIONS
    }
    return {
        "server": {
            "bind": {"host": settings.api.host, "port": settings.api.port},
            "url": base_url(settings),
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "gzip": False,
            "languages": ["zh", "en-US"],  # babel knows no bare zh_CN
            "cors": False,  # the app's own CORS middleware applies to /ogc too
            "pretty_print": False,
            "admin": False,
            "limits": {"default_items": ogc.default_items, "max_items": ogc.max_items,
                       "on_exceed": "throttle"},
            "map": {"url": ogc.basemap_url, "attribution": ogc.basemap_attribution},
        },
        "logging": {"level": "WARNING"},
        "metadata": {
            "identification": {
                "title": "民情地图 Minqing Map · OGC API",
                "description": "Lanzhou's grid-governance grids and event heat as OGC API "
                               "Features (CRS84, EPSG:4326, EPSG:4490; CQL2 filters).",
                "keywords": ["网格化管理", "兰州", "grids", "OGC API"],
                "keywords_type": "theme",
                "terms_of_service": "",
                "url": base_url(settings),
            },
            "license": {"name": "internal use", "url": base_url(settings)},
            "provider": {"name": "民情地图 Minqing Map", "url": base_url(settings)},
            "contact": {"name": "民情地图", "position": "", "address": "", "city": "兰州",
                        "stateorprovince": "甘肃", "postalcode": "", "country": "China",
                        "phone": "", "fax": "", "email": "", "url": base_url(settings),
                        "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": resources,
    }


def write_documents(folder: Path, config: dict[str, Any], openapi: dict[str, Any]) -> None:
    """Write the generated config and OpenAPI document (for inspection and pygeoapi's CLI)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(
        "# Generated at start-up from the service's settings; edits are overwritten.\n"
        + yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (folder / OPENAPI_FILE).write_text(
        json.dumps(openapi, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
