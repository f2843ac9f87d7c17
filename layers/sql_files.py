"""The layers' SQL in ``layers/sql/*.sql``; grid filters are chosen by code, never by users."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def sql_file(name: str) -> str:
    """The text of one SQL file."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def grid_filter(codes: list[str] | None, column: str = "code") -> str:
    """Every grid (None), the one bound as :code, or those whose ``column`` is in :codes."""
    if codes is None:
        return "true"
    if len(codes) == 1:
        return f"{column} = CAST(:code AS text)"
    return f"{column} = ANY(CAST(:codes AS text[]))"


def event_filter(codes: list[str] | None) -> str:
    """Every routed event (None), the events of the grid :code, or of the :codes array."""
    if codes is not None and len(codes) == 1:
        return "e.grid_code = CAST(:code AS text)"
    # The codes go through an InitPlan, so the planner does not estimate each code against each
    # monthly partition of event: for 1000 codes over 13 partitions that took 70 ms of planning
    # for the unresolved-events branch alone, 0.8 ms this way (docs/SCALING.md).
    return ("e.grid_code IS NOT NULL" if codes is None
            else "e.grid_code = ANY(ARRAY(SELECT unnest(CAST(:codes AS text[]))))")


def code_params(codes: list[str] | None) -> dict[str, Any]:
    """The bound values the filters above read."""
    return {"codes": codes or [], "code": codes[0] if codes and len(codes) == 1 else None}


def is_scalar(sql: str) -> bool:
    """Whether a statement filters on no array of codes: one plan serves every call.

    Such a statement can be prepared; one with the :codes array cannot sensibly be (a generic plan
    does not see how few codes the array holds and reads far more than a custom one).
    """
    return ":codes" not in sql
