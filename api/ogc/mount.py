"""A thin Starlette app at ``/ogc`` that calls pygeoapi's API object built at start-up.

pygeoapi's own ``starlette_app`` reads its config from the environment when imported and keeps
one global API; here the API object is built from the app's settings in the lifespan and held
by this mount, so two apps in one process (tests) never share configuration. Only the
Features endpoints are routed: no transactions (no POST/PUT/DELETE), no processes, no admin.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pygeoapi
import pygeoapi.api as core_api
import pygeoapi.api.itemtypes as itemtypes_api
import pygeoapi.api.processes as processes_api
import pygeoapi.api.tiles as tiles_api
from pygeoapi.api import API, APIRequest
from pygeoapi.formats import F_JSON
from pygeoapi.openapi import get_oas
from pygeoapi.util import get_dataset_formatters
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api.ogc.config import build_config, city_extent, config_dir, write_documents
from api.ogc.geojson import geometry_text_passed_on, install_fast_json
from api.ogc.guard import check_items_request
from api.ogc.templates import write_offline_templates
from api.ogc.tiles import ogc_tile, ogc_tilejson, tileset_layer
from api.settings import STATIC_DIR, Settings
from gis.errors import MinqingError
from gis.store import Database

log = logging.getLogger(__name__)

PYGEOAPI_STATIC = Path(pygeoapi.__file__).parent / "static"

ApiCall = Callable[..., tuple[dict[str, str], int, Any]]


def build_api(settings: Settings, database: Database, engine: Engine) -> API:
    """Generate the config and OpenAPI document into the data folder and build the API."""
    with engine.connect() as conn:
        extent = city_extent(conn)
    config = build_config(settings, database, extent)
    # pygeoapi's pages with their CDN assets pointed at the app's own copies (offline).
    config["server"]["templates"] = {
        "path": str(write_offline_templates(config_dir(settings))),
        "static": str(PYGEOAPI_STATIC)}
    openapi = get_oas(copy.deepcopy(config))
    shown = copy.deepcopy(config)
    for resource in shown["resources"].values():  # the written copy hides any password
        for provider in resource["providers"]:
            if provider["type"] == "feature":
                provider["data"] = database.display_url()
    write_documents(config_dir(settings), shown, openapi)
    api = API(config, openapi)
    # pygeoapi's TileMatrixSets page passes its whole config where the template settings go
    # (``render_j2_template(api.tpl_config, api.tpl_config, …)``): give it the folder there too.
    api.tpl_config["path"] = config["server"]["templates"]["path"]
    install_fast_json()
    # pygeoapi logs every refused request as an error with a traceback; this mount and the
    # request log report what matters (5xx with the request id).
    logging.getLogger("pygeoapi").setLevel(logging.CRITICAL)
    return api


# Read-only collections (pygeoapi claims Part 4 for any feature provider); filters as served.
NOT_SERVED = {"http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete"}
ALSO_SERVED = {
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
}


def conformance(api: API, request: APIRequest) -> tuple[dict[str, str], int, Any]:
    """pygeoapi's conformance answer with the classes this mount really serves."""
    headers, status, content = core_api.conformance(api, request)
    if request.format == "html" or status != HTTPStatus.OK:
        return headers, status, content
    classes = (set(json.loads(content)["conformsTo"]) - NOT_SERVED) | ALSO_SERVED
    return headers, status, json.dumps({"conformsTo": sorted(classes)})


def collection_items(api: API, request: APIRequest,
                     dataset: str) -> tuple[dict[str, str], int, Any]:
    """pygeoapi's items answer; a GeoJSON one carries PostGIS's geometry text unparsed."""
    resource = api.config["resources"].get(dataset)
    answer_format = None
    if resource is not None:
        # As pygeoapi decides it: f=, else Accept among its formats and the dataset's own.
        extra = {v.f: v.mimetype for v in get_dataset_formatters(resource).values()}
        answer_format = request._get_format(request.get_request_headers(request.headers),
                                            extra)
    with geometry_text_passed_on(answer_format in (None, F_JSON)):
        return itemtypes_api.get_collection_items(api, request, dataset)


def _refusal(request: Request, exc: MinqingError) -> JSONResponse:
    """An OGC exception body (code, description) that also reads like the rest of the API."""
    code = "NotFound" if exc.http_status == HTTPStatus.NOT_FOUND else "InvalidParameterValue"
    return JSONResponse({"code": code, "type": code,
                         "description": exc.message, **exc.to_dict(),
                         "request_id": getattr(request.state, "request_id", "")},
                        status_code=exc.http_status)


def _with_request_id(body: bytes | str, request_id: str) -> bytes | str:
    """pygeoapi's JSON exception (code, description) with the request id and message every
    error answer of the service carries; an HTML error page is left as it is."""
    try:
        exception = json.loads(body)
    except ValueError:
        return body
    if not isinstance(exception, dict) or "description" not in exception:
        return body
    exception.setdefault("message", exception["description"])
    exception["request_id"] = request_id
    return json.dumps(exception, ensure_ascii=False)


async def _route_error(request: Request, exc: Exception) -> JSONResponse:
    """No such OGC path, or a method the read-only API does not take, as an OGC exception."""
    status = int(getattr(exc, "status_code", 404))
    what = (f"{request.method} is not allowed here: the OGC API is read-only"
            if status == HTTPStatus.METHOD_NOT_ALLOWED else f"no OGC resource {request.url.path}")
    code = "OperationNotSupported" if status == HTTPStatus.METHOD_NOT_ALLOWED else "NotFound"
    return JSONResponse({"code": code, "description": what, "message": what,
                         "request_id": getattr(request.state, "request_id", "")},
                        status_code=status)


class OgcMount:
    """The ``/ogc`` ASGI app; answers 503 until the lifespan has built the API object."""

    def __init__(self, app_state: Any = None) -> None:
        self.api: API | None = None
        self._app_state = app_state  # the service's app.state: its tile service
        self.app = Starlette(routes=[
            Route("/", self._landing),
            Route("/openapi", self._openapi),
            Route("/conformance", self._conformance),
            # Linked from pygeoapi's landing page: no processes here, the standard tile grids.
            Route("/processes", self._processes),
            Route("/TileMatrixSets", self._tile_matrix_sets),
            Route("/collections", self._collections),
            Route("/collections/{collection_id}", self._collections),
            Route("/collections/{collection_id}/queryables", self._queryables),
            Route("/collections/{collection_id}/schema", self._schema),
            Route("/collections/{collection_id}/items", self._items),
            Route("/collections/{collection_id}/items/{item_id}", self._item),
            Route("/collections/{collection_id}/tiles", self._tilesets),
            Route("/collections/{collection_id}/tiles/{tile_matrix_set}", self._tileset),
            Route("/collections/{collection_id}/tiles/{tile_matrix_set}/metadata",
                  self._tileset),
            Route("/collections/{collection_id}/tiles/{tile_matrix_set}/{z}/{row}/{col}",
                  self._tile),
            Mount("/static", StaticFiles(directory=PYGEOAPI_STATIC)),
            # The vendored scripts and styles the rewritten templates load (api/static/vendor).
            Mount("/vendor", StaticFiles(directory=STATIC_DIR / "vendor")),
        ], exception_handlers={404: _route_error, 405: _route_error})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Hand the call to the routes (the root without its slash is the landing page)."""
        if scope["type"] == "http" and scope.get("path", "").rstrip("/") == scope.get(
                "root_path", "").rstrip("/"):
            scope = {**scope, "path": scope.get("root_path", "") + "/"}
        await self.app(scope, receive, send)

    async def _run(self, request: Request, call: ApiCall, *args: Any,
                   check_format: bool = True) -> Response:
        api = self.api
        if api is None:
            return JSONResponse({"error": "unavailable", "message": "OGC API is starting"},
                                status_code=503, headers={"Retry-After": "1"})
        try:
            api_request = await APIRequest.from_starlette(request, api.locales)
            if check_format and not api_request.is_valid():
                headers, status, content = api.get_format_exception(api_request)
            else:
                headers, status, content = await run_in_threadpool(call, api, api_request,
                                                                   *args)
        except Exception:
            request_id = getattr(request.state, "request_id", "")
            log.exception("pygeoapi failed (request %s)", request_id)
            return JSONResponse({"code": "NoApplicableCode", "error": "internal_error",
                                 "description": "internal error",
                                 "request_id": request_id}, status_code=500)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            log.error("pygeoapi answered %s for %s", status, request.url.path)
        body = content if isinstance(content, bytes | str) else str(content)
        if status >= HTTPStatus.BAD_REQUEST:
            body = _with_request_id(body, getattr(request.state, "request_id", ""))
        response = Response(body, status_code=status)
        response.headers.update(headers)
        return response

    async def _landing(self, request: Request) -> Response:
        return await self._run(request, core_api.landing_page)

    async def _openapi(self, request: Request) -> Response:
        return await self._run(request, core_api.openapi_)

    async def _conformance(self, request: Request) -> Response:
        return await self._run(request, conformance)

    async def _processes(self, request: Request) -> Response:
        return await self._run(request, processes_api.describe_processes, None)

    async def _tile_matrix_sets(self, request: Request) -> Response:
        return await self._run(request, tiles_api.tilematrixsets)

    async def _collections(self, request: Request) -> Response:
        return await self._run(request, core_api.describe_collections,
                               request.path_params.get("collection_id"))

    async def _queryables(self, request: Request) -> Response:
        return await self._run(request, itemtypes_api.get_collection_queryables,
                               request.path_params["collection_id"])

    async def _schema(self, request: Request) -> Response:
        return await self._run(request, core_api.get_collection_schema,
                               request.path_params["collection_id"])

    async def _items(self, request: Request) -> Response:
        try:
            check_items_request(request.query_params)
        except MinqingError as exc:
            return _refusal(request, exc)
        return await self._run(request, collection_items,
                               request.path_params["collection_id"], check_format=False)

    async def _item(self, request: Request) -> Response:
        return await self._run(request, itemtypes_api.get_collection_item,
                               request.path_params["collection_id"],
                               request.path_params["item_id"])

    async def _tilesets(self, request: Request) -> Response:
        return await self._run(request, tiles_api.get_collection_tiles,
                               request.path_params["collection_id"])

    async def _tileset(self, request: Request) -> Response:
        collection_id = request.path_params["collection_id"]
        tile_matrix_set = request.path_params["tile_matrix_set"]
        try:
            layer = tileset_layer(collection_id, tile_matrix_set)
        except MinqingError as exc:
            return _refusal(request, exc)
        service = getattr(self._app_state, "tiles", None)
        if request.query_params.get("f") == "tilejson" and self.api and service:
            # pygeoapi's MVT-proxy has no TileJSON of its own: the one /tiles gives.
            return JSONResponse(ogc_tilejson(service,
                                             self.api.get_collections_url(), collection_id,
                                             layer))
        return await self._run(request, tiles_api.get_collection_tiles_metadata,
                               collection_id, tile_matrix_set)

    async def _tile(self, request: Request) -> Response:
        service = getattr(self._app_state, "tiles", None)
        if service is None:
            return JSONResponse({"error": "unavailable", "message": "tiles are starting"},
                                status_code=503, headers={"Retry-After": "1"})
        try:
            return await ogc_tile(request, service)
        except MinqingError as exc:
            return _refusal(request, exc)
