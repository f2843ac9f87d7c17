"""The layers' SQL in ``layers/sql/*.sql``; grid filters are chosen by code, never by users."""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent / "sql"


@cache
def sql_file(name: str) -> str:
    """The text of one SQL file."""
    return (SQL_DIR / name).read_text(encoding="utf-8")


def grid_filter(codes: list[str] | None, column: str = "code") -> str:
    """Every grid (None) or those whose ``column`` is in the bound :codes array."""
    return "true" if codes is None else f"{column} = ANY(CAST(:codes AS text[]))"


def event_filter(codes: list[str] | None) -> str:
    """Every routed event (None) or the events of the bound :codes array."""
    # The codes go through an InitPlan, so the planner does not estimate each code against each
    # monthly partition of event: for 1000 codes over 13 partitions that took 70 ms of planning
    # for the unresolved-events branch alone, 0.8 ms this way (docs/SCALING.md).
    return ("e.grid_code IS NOT NULL" if codes is None
            else "e.grid_code = ANY(ARRAY(SELECT unnest(CAST(:codes AS text[]))))")
