"""The map pages: the command-centre map at ``/`` and the gridworker's phone page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.map_page import (
    command_centre_html,
    current_layer_version,
    load_districts,
    locate_page_html,
)
from api.settings import Settings

router = APIRouter(tags=["pages"])
SWAGGER = "/static/vendor/swagger-ui-5.35.0"

# The pages hold no data of their own (everything comes through the API), but they name the
# district list and the script versions: revalidate rather than keep a stale copy.
_NO_STALE = {"Cache-Control": "no-cache"}


def _command_page(request: Request) -> str:
    settings: Settings = request.app.state.settings
    with request.app.state.engine.connect() as conn:
        districts = load_districts(conn)
        version = current_layer_version(conn)
    return command_centre_html(settings.map, districts, version)


@router.get("/", response_class=HTMLResponse, summary="Command-centre map")
async def command_centre(request: Request) -> HTMLResponse:
    """Grids coloured red/yellow/blue, heat, events, filters, counts and live updates."""
    return HTMLResponse(await run_in_threadpool(_command_page, request), headers=_NO_STALE)


@router.get("/m/locate", response_class=HTMLResponse, summary="Gridworker's phone page")
async def locate_page(request: Request) -> HTMLResponse:
    """Which grid am I in (GPS or a typed point; ``?crs=gcj02`` inside WeChat), and report."""
    settings: Settings = request.app.state.settings
    return HTMLResponse(await run_in_threadpool(locate_page_html, settings.map),
                        headers=_NO_STALE)


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
async def api_docs() -> HTMLResponse:
    """The interactive API documentation, with Swagger UI served from here (no CDN)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="民情地图 API",
                               swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                               swagger_css_url=f"{SWAGGER}/swagger-ui.css",
                               swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png")
