"""OGC API Tiles at ``/ogc``: pygeoapi describes the tilesets, the project's tile service draws.

Each collection has a ``WebMercatorQuad`` tileset whose tiles are those of ``/tiles/{layer}``
(the same MVT, cache, ETag and invalidation; no second tile engine). pygeoapi's ``MVT-proxy``
provider is configured only so that pygeoapi writes the tileset lists and metadata; the
tiles themselves are answered here from the app's ``TileService`` in-process (the proxy would
fetch them over HTTP from the app itself and answers 400 to a request without ``f=mvt``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.routes.tiles import tile_response
from gis.errors import BadRequest, NotFound
from tiles.address import MAX_ZOOM, parse_address
from tiles.service import TileService

MVT = "application/vnd.mapbox-vector-tile"
TILE_MATRIX_SET = "WebMercatorQuad"
# Collection → the /tiles layer drawn for it (heat: a point per small grid with events).
TILE_LAYERS = {"grids-large": "large", "grids-medium": "medium", "grids-small": "small",
               "heat": "heat"}
# Asked with these, or with no f at all, a tile is a tile.
TILE_FORMATS = {"mvt", "pbf"}


def tile_provider(app_url: str, layer: str) -> dict[str, Any]:
    """pygeoapi's provider entry of one collection's tileset (for its documents only)."""
    return {
        "type": "tile",
        "name": "MVT-proxy",
        "data": f"{app_url}/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf",
        "options": {"zoom": {"min": 0, "max": MAX_ZOOM}, "schemes": [TILE_MATRIX_SET]},
        "format": {"name": "mvt", "mimetype": MVT},
    }


def tileset_layer(collection_id: str, tile_matrix_set: str) -> str:
    """The /tiles layer of a collection's tileset, or NotFound naming what there is."""
    layer = TILE_LAYERS.get(collection_id)
    if layer is None:
        raise NotFound(f"no collection {collection_id!r} with tiles; those with tiles are "
                       f"{', '.join(TILE_LAYERS)}")
    if tile_matrix_set != TILE_MATRIX_SET:
        raise NotFound(f"no tileset {tile_matrix_set!r}: the tiles are {TILE_MATRIX_SET} "
                       f"(Web Mercator, zoom 0–{MAX_ZOOM})")
    return layer


async def ogc_tile(request: Request, service: TileService) -> Response:
    """One tile, ``{tileMatrix}/{tileRow}/{tileCol}`` = z/y/x, as /tiles serves it."""
    params = request.path_params
    layer = tileset_layer(params["collection_id"], params["tile_matrix_set"])
    answer_format = request.query_params.get("f")
    if answer_format is not None and answer_format not in TILE_FORMATS:
        raise BadRequest(f"f={answer_format[:20]!r}: tiles are Mapbox Vector Tiles; ask with "
                         "f=mvt or with no f")
    query = request.query_params
    address = parse_address(layer, params["z"], params["col"], params["row"],
                            query.get("district"), query.get("at"), service.districts(),
                            query.get("category"))
    return await tile_response(service, address, request.headers.get("if-none-match"))


def ogc_tilejson(service: TileService, collections_url: str, collection_id: str,
                 layer: str) -> dict[str, Any]:
    """TileJSON of a collection's tileset, its tile URL template under /ogc."""
    url = f"{collections_url}/{collection_id}/tiles/{TILE_MATRIX_SET}/{{z}}/{{y}}/{{x}}"
    return service.tilejson(layer, url)
