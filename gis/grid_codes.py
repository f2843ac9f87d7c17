"""Rules of the three-level grid codes (CJ/T 349-2010 style), shared by file import and topology.

large = 6-digit GB/T 2260 county code + 3-digit town/street (9 digits); medium = large + 3 digits
(12); small = medium + 3 digits (15). A child's code starts with its parent's code.
"""

from __future__ import annotations

import re

LEVELS: tuple[str, ...] = ("large", "medium", "small")
CODE_LENGTH: dict[str, int] = {"large": 9, "medium": 12, "small": 15}
PARENT_LEVEL: dict[str, str | None] = {"large": None, "medium": "large", "small": "medium"}
KINDS: dict[str, frozenset[str]] = {
    "large": frozenset({"urban", "rural"}),
    "medium": frozenset({"urban", "rural"}),
    "small": frozenset({"urban", "rural", "dedicated"}),
}
DISTRICT_CODE_LENGTH = 6

_DIGITS = re.compile(r"[0-9]+")


def is_digits(text: object, length: int) -> bool:
    """Whether `text` is a string of exactly `length` ASCII digits."""
    return isinstance(text, str) and len(text) == length and _DIGITS.fullmatch(text) is not None


def code_problems(code: object, level: object, parent_code: object) -> list[str]:
    """What is wrong with one grid's code, level and parent code (empty list when all is well)."""
    if level not in CODE_LENGTH:
        return [f"level {level!r} is not one of {', '.join(LEVELS)}"]
    assert isinstance(level, str)
    length = CODE_LENGTH[level]
    problems: list[str] = []
    if not is_digits(code, length):
        problems.append(f"code {code!r} is not {length} digits, as a {level} grid's code must be")
    parent_level = PARENT_LEVEL[level]
    if parent_level is None:
        if parent_code is not None:
            problems.append(f"a large grid has no parent, but parent_code is {parent_code!r}")
        return problems
    parent_length = CODE_LENGTH[parent_level]
    if not is_digits(parent_code, parent_length):
        problems.append(
            f"parent_code {parent_code!r} is not {parent_length} digits, "
            f"as a {parent_level} grid's code must be"
        )
    elif isinstance(code, str) and not code.startswith(str(parent_code)):
        problems.append(f"code {code} does not start with its parent's code {parent_code}")
    return problems
