"""A grid's card, its colour history, and pins set by command staff."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator

from api.auth import CallerDep, require_roles
from api.routes.layers import RulesDep
from gis.auth import Caller, Role
from layers.card import colour_history, grid_card
from layers.pins import pin_colour, release_pin

router = APIRouter(prefix="/api/v1", tags=["grids"])
CommandDep = Annotated[Caller, require_roles(Role.COMMAND)]


class PinRequest(BaseModel):
    """Pin a grid's colour: give expires_at (with a time zone) or hours."""

    colour: Literal["red", "yellow", "blue"]
    reason: str = Field(min_length=1, max_length=500)
    expires_at: dt.datetime | None = None
    hours: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_expiry(self) -> PinRequest:
        if (self.expires_at is None) == (self.hours is None):
            raise ValueError("give exactly one of expires_at or hours")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone, e.g. 2026-12-31T18:00:00+08:00")
        return self


@router.get("/grids/{code}", summary="The grid card")
def card(request: Request, code: str, caller: CallerDep) -> dict[str, Any]:
    """Names, gridworkers (phones shown to staff, masked otherwise), colour, pin, events, trend."""
    with request.app.state.engine.connect() as conn:
        return grid_card(conn, code, caller)


@router.get("/grids/{code}/colour-history", summary="A grid's colour changes and why")
def history(request: Request, code: str,
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
    """Every recorded colour change of the grid, newest first."""
    with request.app.state.engine.connect() as conn:
        return {"code": code, "changes": colour_history(conn, code, limit)}


@router.post("/grids/{code}/pin", status_code=201, summary="Pin a grid's colour (command staff)")
def pin(request: Request, code: str, body: PinRequest, caller: CommandDep,
        rules: RulesDep) -> dict[str, Any]:
    """The pin wins over the computed colour until it expires or is released."""
    now = dt.datetime.now(dt.UTC)
    expires = body.expires_at or now + dt.timedelta(hours=body.hours or 0)
    with request.app.state.engine.begin() as conn:
        return {"code": code, "pin": pin_colour(conn, code, body.colour, body.reason, expires,
                                                caller.name, now, rules)}


@router.delete("/grids/{code}/pin", summary="Release a grid's pin (command staff)")
def unpin(request: Request, code: str, caller: CommandDep, rules: RulesDep) -> dict[str, Any]:
    """The computed colour shows again."""
    with request.app.state.engine.begin() as conn:
        return {"code": code, "released": release_pin(conn, code, caller.name, rules=rules)}
