"""Domain errors: each carries its HTTP status and a message that is safe to show a client.

`api/` maps them to responses in one place; `gis/` raises them without knowing about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


class MinqingError(Exception):
    """Base of every error the service reports to a client."""

    http_status: ClassVar[int] = 500
    kind: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """Client-safe body: kind, message and optional structured details."""
        body: dict[str, Any] = {"error": self.kind, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class InvalidInput(MinqingError):
    """The request is well-formed but its values are wrong (bad coordinate, unknown code...)."""

    http_status = 422
    kind = "invalid_input"


class BadRequest(MinqingError):
    """The request cannot be read at all (malformed body, wrong type)."""

    http_status = 400
    kind = "bad_request"


class TooLarge(MinqingError):
    """The request is bigger than the documented limit."""

    http_status = 413
    kind = "too_large"


class Forbidden(MinqingError):
    """The caller's role may not do this to this thing (a gridworker outside their grid...)."""

    http_status = 403
    kind = "forbidden"


class NotFound(MinqingError):
    """The thing asked for does not exist."""

    http_status = 404
    kind = "not_found"


class Conflict(MinqingError):
    """The request conflicts with the current state (stale version, duplicate)."""

    http_status = 409
    kind = "conflict"


class Unavailable(MinqingError):
    """A dependency (the database) is down; the client may retry."""

    http_status = 503
    kind = "unavailable"


@dataclass(frozen=True)
class FeatureProblem:
    """One thing wrong with one feature of an input file."""

    feature: str  # "feature 12 (code 620102001001001)" or similar: names the feature
    problem: str

    def __str__(self) -> str:
        return f"{self.feature}: {self.problem}"


@dataclass
class GridFileError(InvalidInput):
    """A grid file that cannot be imported; lists every problem with the feature it concerns."""

    problems: list[FeatureProblem] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        shown = "; ".join(str(p) for p in self.problems[:20])
        more = f" (and {len(self.problems) - 20} more)" if len(self.problems) > 20 else ""
        InvalidInput.__init__(
            self,
            f"{self.source or 'grid file'}: {len(self.problems)} problem(s): {shown}{more}",
            details=[{"feature": p.feature, "problem": p.problem} for p in self.problems],
        )
