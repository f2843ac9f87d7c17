"""The app factory: ``create_app(settings)`` builds the FastAPI app; nothing connects at import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers
from api.middleware import RequestGuard
from api.ogc.mount import OgcMount, build_api
from api.routes import (
    events,
    grid_changes,
    grid_geometry,
    grids,
    health,
    layers,
    live,
    locate,
    metrics,
    pages,
    tiles,
)
from api.settings import STATIC_DIR, Settings
from gis.events.partitions import maintain_partitions
from gis.grid_listener import GridVersionListener
from gis.grid_snapshot import SnapshotHolder
from gis.store import create_engine, resolve_database
from layers.coalesce import GridRefresher
from layers.refresher import PeriodicRefresh

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; the lifespan opens the database pool and keeps it on app.state."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = resolve_database(settings.db)
        engine = create_engine(database, pool_size=settings.db.pool_size)
        app.state.database = database
        app.state.engine = engine
        # Refreshes after ingest, coalesced, on connections of their own: their transactions
        # always commit, so they keep their prepared statements (psycopg drops every one on a
        # rollback, which the main pool does to each read-only connection it takes back).
        layer_engine = create_engine(database, pool_size=1)
        app.state.grid_refresher = GridRefresher(layer_engine, settings.layers.rules)
        try:  # the coming months' partitions; a busy table leaves it to the refresher
            maintain_partitions(engine.begin)
        except sa.exc.SQLAlchemyError:
            log.exception("event partitions not maintained at start")
        app.state.snapshots = SnapshotHolder(engine)
        app.state.snapshots.refresh()
        if settings.ogc.enabled:
            ogc.api = build_api(settings, database, engine)
        listener = GridVersionListener(database.url, app.state.snapshots.refresh)
        app.state.listener = listener
        listener.start()
        listener.connected.wait(timeout=5)  # so the first answers are not flagged degraded
        layer_refresh = PeriodicRefresh(engine, settings.layers.rules,
                                        settings.layers.refresh_seconds)
        layer_refresh.start()
        try:
            yield
        finally:
            layer_refresh.stop()
            listener.stop()
            layer_engine.dispose()
            engine.dispose()

    app = FastAPI(title=settings.api.title, version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    app.state.settings = settings
    install_error_handlers(app)
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"])
    app.add_middleware(RequestGuard, max_body_bytes=settings.api.max_body_mb * 2**20)
    app.include_router(health.router)
    app.include_router(locate.router)
    app.include_router(grid_changes.router)
    app.include_router(events.router)
    app.include_router(layers.router)
    app.include_router(grids.router)
    app.include_router(metrics.router)
    app.include_router(pages.router)
    app.include_router(live.router)
    app.include_router(grid_geometry.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(tiles.router)
    ogc = OgcMount(app.state)
    app.mount("/ogc", ogc)
    return app
