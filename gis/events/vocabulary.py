"""The documented lists of event sources, categories and statuses, and the routing tolerance."""

from __future__ import annotations

from typing import Final, Literal

from gis.errors import InvalidInput

# Channels events reach the city from (source varchar(16)).
SOURCES: Final = ("12345", "110", "信访", "网络留言", "网格员上报", "法院案件")
Source = Literal["12345", "110", "信访", "网络留言", "网格员上报", "法院案件"]
GRIDWORKER_SOURCE: Final = "网格员上报"

# Categories (category varchar(16)); the first six are the issue's, the rest the city's usual.
CATEGORIES: Final = ("矛盾纠纷", "安全隐患", "逾期交房", "拆迁安置", "劳资欠薪", "环境卫生",
                     "物业管理", "噪音扰民", "道路交通", "其他")
Category = Literal["矛盾纠纷", "安全隐患", "逾期交房", "拆迁安置", "劳资欠薪", "环境卫生",
                   "物业管理", "噪音扰民", "道路交通", "其他"]

STATUSES: Final = ("open", "in_progress", "resolved", "closed")
Status = Literal["open", "in_progress", "resolved", "closed"]
UNRESOLVED: Final = ("open", "in_progress")

# Allowed status changes. Closed is final; a resolved event can be reopened (the resident is not
# satisfied) back to in_progress, and work in progress can be handed back as open.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "open": frozenset({"in_progress", "resolved", "closed"}),
    "in_progress": frozenset({"open", "resolved", "closed"}),
    "resolved": frozenset({"in_progress", "closed"}),
    "closed": frozenset(),
}

# Hours to answer an event of each severity when the source gives no due time (1 lowest).
RESPONSE_HOURS: Final[dict[int, int]] = {1: 360, 2: 168, 3: 72, 4: 24}

# A position outside every grid but at most this far from the nearest one is snapped to it:
# GPS error in street canyons and the city's outer boundary drawn a little inside the real one.
SNAP_TOLERANCE_M: Final = 200.0

# A report time this far in the future is refused (clock skew of phones and source systems).
FUTURE_SKEW_S: Final = 600.0

ROUTES: Final = ("exact", "snapped", "given", "manual", "unrouted")


def known_category(value: str | None) -> str | None:
    """The category itself, None for none, or InvalidInput naming the categories there are."""
    if value is None or value in CATEGORIES:
        return value
    raise InvalidInput(f"unknown category {value[:40]!r}: use {', '.join(CATEGORIES)}")
