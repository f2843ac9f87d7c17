"""A grid's current boundary as GeoJSON, for the map pages' highlight of one grid."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from gis.grid_geometry import current_grid_feature

router = APIRouter(prefix="/api/v1", tags=["grids"])


def _feature(request: Request, code: str, tolerance: float) -> dict[str, Any]:
    with request.app.state.engine.connect() as conn:
        return current_grid_feature(conn, code, tolerance=tolerance)


@router.get("/grids/{code}/geometry", summary="A grid's current boundary (GeoJSON Feature)")
async def grid_geometry(
    request: Request,
    code: str,
    simplify: Annotated[float, Query(ge=0, le=0.01,
                                     description="Simplification tolerance, degrees")] = 0.0,
) -> dict[str, Any]:
    """The grid in force with this code: WGS84 boundary, name, level, kind, parent, district."""
    return await run_in_threadpool(_feature, request, code, simplify)
