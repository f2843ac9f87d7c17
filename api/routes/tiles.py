"""Vector tiles: ``/tiles/{layer}/{z}/{x}/{y}.pbf`` (MVT) and ``/tiles/{layer}.json`` (TileJSON).

Plain GETs, as browsers and MapLibre send them: no Accept header or ``f=`` parameter needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from tiles.address import (
    LAYERS,
    TileAddress,
    check_layer,
    parse_address,
    parse_date,
    parse_district,
)
from tiles.layer_version import LayerVersionFollower
from tiles.service import TileService
from tiles.settings import TileSettings

MVT = "application/vnd.mapbox-vector-tile"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan, so the engine and the grid snapshot are there.
    settings: TileSettings = getattr(app.state.settings, "tiles", None) or TileSettings()
    follower = LayerVersionFollower(app.state.database.url,
                                    recheck_every_s=settings.layer_recheck_s)
    follower.start()
    app.state.tiles = TileService(app.state.engine, app.state.snapshots, follower, settings)
    try:
        yield
    finally:
        follower.stop()


router = APIRouter(prefix="/tiles", tags=["tiles"], lifespan=_lifespan)

DistrictQuery = Annotated[str | None, Query(
    description="Only grids of this district (6-digit county code, e.g. 620102)")]
CategoryQuery = Annotated[str | None, Query(
    description="Heat only: counts of this event category alone (e.g. 环境卫生)")]
AtQuery = Annotated[str | None, Query(
    description="Boundaries in force on this date (YYYY-MM-DD, Beijing time); colours are "
                "today's")]


def _service(request: Request) -> TileService:
    service: TileService = request.app.state.tiles
    return service


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    given = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in given or "*" in given


@router.get("/{layer}/{z}/{x}/{y}.pbf", name="tile", summary="A Mapbox Vector Tile",
            response_class=Response,
            responses={200: {"content": {MVT: {}}}, 204: {"description": "empty tile"},
                       304: {"description": "not modified (If-None-Match)"}})
async def tile(request: Request, layer: str, z: str, x: str, y: str,
               district: DistrictQuery = None, at: AtQuery = None,
               category: CategoryQuery = None) -> Response:
    """MVT of one tile; layer is large, medium, small or heat (MVT layer of the same name)."""
    service = _service(request)
    address = parse_address(layer, z, x, y, district, at, service.districts(), category)
    return await tile_response(service, address, request.headers.get("if-none-match"))


async def tile_response(service: TileService, address: TileAddress,
                        if_none_match: str | None) -> Response:
    """The tile at ``address`` (also served at /ogc): ETag, 304, 204 when empty, cached."""
    key = service.key(address)
    headers = {"ETag": key.etag,
               "Cache-Control": f"public, max-age={service.settings.max_age_s}, "
                                "must-revalidate"}
    if _matches(if_none_match, key.etag):
        return Response(status_code=304, headers=headers)
    data = service.cached(key)
    if data is None:
        data = await run_in_threadpool(service.render, key)
    if not data:
        return Response(status_code=204, headers=headers)
    return Response(content=data, media_type=MVT, headers=headers)


@router.get("/{layer}.json", name="tilejson", summary="TileJSON 3.0.0 of a tile layer")
def layer_tilejson(request: Request, layer: str, district: DistrictQuery = None,
                   at: AtQuery = None) -> dict[str, Any]:
    """Where the layer's tiles are (absolute URL template), its zooms, bounds and fields."""
    service = _service(request)
    check_layer(layer)
    query = {k: v for k, v in (("district", parse_district(district, service.districts())),
                               ("at", parse_date(at))) if v is not None}
    base = str(request.base_url).rstrip("/")
    url = f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf"
    if query:
        url += "?" + urlencode({k: str(v) for k, v in query.items()})
    return service.tilejson(layer, url)


@router.get("", summary="The tile layers")
def tile_layers(request: Request) -> dict[str, Any]:
    """Each layer with its TileJSON URL."""
    base = str(request.base_url).rstrip("/")
    return {"layers": [{"id": name, "tilejson": f"{base}/tiles/{name}.json"}
                       for name in LAYERS]}
