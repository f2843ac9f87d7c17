"""Prometheus metrics of this worker: requests, latency, router rebuilds, grid version, unrouted,
layer refreshes after ingest."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from api.database_state import database_down

router = APIRouter(tags=["operations"])

ROUTER_REBUILDS = Gauge("minqing_router_rebuilds", "Router index builds in this worker")
GRID_VERSION = Gauge("minqing_router_grid_version", "Grid version the router index holds")
UNROUTED = Gauge("minqing_events_unrouted", "Events waiting to be placed by hand (-1: unknown)")
LAYER_REQUESTS = Gauge("minqing_layer_refresh_requests",
                       "Ingest requests whose grids this worker refreshed")
LAYER_ROUNDS = Gauge("minqing_layer_refresh_rounds",
                     "Refreshes run for them (fewer than requests: concurrent ones were pooled)")
DATABASE_UP = Gauge("minqing_database_up", "1 while this worker's grid listener reaches PostGIS")


def _unrouted(request: Request) -> int:
    # Hook point for the events part: one indexed count (partial index event_unrouted) per
    # scrape. Ingest may instead call UNROUTED.set(n) after each batch; the scrape then
    # refreshes it from the table, so the two never disagree for long.
    try:
        with request.app.state.engine.connect() as conn:
            return int(conn.execute(sa.text(
                "SELECT count(*) FROM event WHERE route = 'unrouted'")).scalar_one())
    except SQLAlchemyError:  # metrics must answer while the database is down
        return -1


@router.get("/metrics", summary="Prometheus metrics (per worker process)",
            response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Counters and gauges in the Prometheus text format."""
    holder = request.app.state.snapshots
    ROUTER_REBUILDS.set(holder.rebuilds)
    if holder.current is not None:
        GRID_VERSION.set(holder.current.version)
    UNROUTED.set(_unrouted(request))
    stats = request.app.state.grid_refresher.stats
    LAYER_REQUESTS.set(stats.requests)
    LAYER_ROUNDS.set(stats.rounds)
    DATABASE_UP.set(0 if database_down(request) else 1)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
