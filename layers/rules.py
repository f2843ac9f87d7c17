"""The colour rules as data: a versioned YAML file validated into pydantic models.

Every rule is a small class; roll-up and warning rules are picked by name from a registry
(``rule: share_of_children``). A bad file is refused with the line and field at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gis.errors import InvalidInput

DEFAULT_RULES = Path(__file__).resolve().parent / "rules" / "default.yaml"
COLOURS = ("red", "yellow", "blue")


class RulesError(InvalidInput):
    """A rules file that cannot be used; the message names the file, line and field."""


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScoreRule(_Rule):
    """Weight of one event: category weight × severity multiplier × status factor."""

    category_weights: dict[str, Annotated[float, Field(ge=0)]]
    default_weight: float = Field(ge=0)
    severity_multipliers: list[Annotated[float, Field(gt=0)]] = Field(min_length=4, max_length=4)
    unresolved_factor: float = Field(ge=1)
    overdue_factor: float = Field(ge=1)

    def sql_params(self) -> dict[str, Any]:
        """Bound parameters of the score query."""
        return {"cats": list(self.category_weights), "cat_weights":
                list(self.category_weights.values()), "default_weight": self.default_weight,
                "sev": self.severity_multipliers, "unresolved": self.unresolved_factor,
                "overdue": self.overdue_factor}


class Windows(_Rule):
    """The short and long windows and the scales that make their sums comparable."""

    short_days: int = Field(ge=1, le=366)
    long_days: int = Field(ge=1, le=366)
    short_scale: float = Field(gt=0)
    long_scale: float = Field(gt=0)

    @model_validator(mode="after")
    def _short_before_long(self) -> Windows:
        if self.short_days >= self.long_days:
            raise ValueError(f"short_days ({self.short_days}) must be less than long_days "
                             f"({self.long_days})")
        return self

    def days(self) -> tuple[int, int]:
        """(short, long) window lengths in days."""
        return self.short_days, self.long_days


class ColourThresholds(_Rule):
    """score ≥ red → red; ≥ yellow → yellow; else blue."""

    red: float = Field(gt=0)
    yellow: float = Field(gt=0)

    @model_validator(mode="after")
    def _red_above_yellow(self) -> ColourThresholds:
        if self.red <= self.yellow:
            raise ValueError(f"red ({self.red}) must be above yellow ({self.yellow})")
        return self


class WorstChild(_Rule):
    """A parent takes its worst child's colour."""

    rule: Literal["worst_child"]
    label: ClassVar[str] = "worst child"

    def sql_colour(self) -> str:
        """SQL colour over the columns red, yellow, blue, n (children counts)."""
        return "CASE WHEN red > 0 THEN 'red' WHEN yellow > 0 THEN 'yellow' ELSE 'blue' END"

    def sql_params(self) -> dict[str, Any]:
        """Bound parameters of sql_colour."""
        return {}


class ShareOfChildren(_Rule):
    """Red when ≥ red_share of the children are red; yellow when ≥ yellow_share are not blue."""

    rule: Literal["share_of_children"]
    red_share: float = Field(gt=0, le=1)
    yellow_share: float = Field(gt=0, le=1)
    label: ClassVar[str] = "share of children"

    @model_validator(mode="after")
    def _yellow_wider(self) -> ShareOfChildren:
        if self.yellow_share < self.red_share:
            raise ValueError(f"yellow_share ({self.yellow_share}) counts red and yellow children "
                             f"and must be at least red_share ({self.red_share})")
        return self

    def sql_colour(self) -> str:
        """SQL colour over the columns red, yellow, blue, n (children counts)."""
        return ("CASE WHEN red >= CAST(:red_share AS float8) * n THEN 'red' "
                "WHEN red + yellow >= CAST(:yellow_share AS float8) * n THEN 'yellow' "
                "ELSE 'blue' END")

    def sql_params(self) -> dict[str, Any]:
        """Bound parameters of sql_colour."""
        return {"red_share": self.red_share, "yellow_share": self.yellow_share}


class PoissonWarning(_Rule):
    """Warn when the last day's count k is improbable under the grid's own baseline mean."""

    rule: Literal["poisson"]
    baseline_days: int = Field(ge=7, le=365)
    min_events: int = Field(ge=1)
    p_value: float = Field(gt=0, lt=1)
    floor_per_day: float = Field(gt=0)

    def describe(self) -> str:
        """The rule in words, stored with each warning."""
        return (f"poisson: P(X >= k | mean of the previous {self.baseline_days} days, at least "
                f"{self.floor_per_day}/day) < {self.p_value} and k >= {self.min_events}")


class PinRule(_Rule):
    """Limits on pins set by command staff."""

    max_days: int = Field(ge=1, le=366)


ROLLUP_RULES: dict[str, type[_Rule]] = {"worst_child": WorstChild,
                                        "share_of_children": ShareOfChildren}
WARNING_RULES: dict[str, type[_Rule]] = {"poisson": PoissonWarning}
RollupRule = Annotated[WorstChild | ShareOfChildren, Field(discriminator="rule")]


class LayerRules(_Rule):
    """A whole rules file."""

    version: str = Field(min_length=1, max_length=64)
    score: ScoreRule
    windows: Windows
    colours: ColourThresholds
    rollup: RollupRule
    warnings: PoissonWarning
    pins: PinRule


def _node_lines(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int],
                source: str) -> None:
    """Record the 1-based line of every key and value; refuse duplicate keys."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            name = key.value
            if name in seen:
                raise RulesError(f"{source}: line {key.start_mark.line + 1}: "
                                 f"{'.'.join(map(str, (*path, name)))} is given twice")
            seen.add(name)
            lines[(*path, name)] = key.start_mark.line + 1
            _node_lines(value, (*path, name), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*path, i), lines, source)


def _line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def parse_rules(text: str, source: str = "rules") -> LayerRules:
    """Validate rules text; RulesError names the line and field of every fault."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise RulesError(f"{source}: line {line}: not valid YAML: {exc.problem}") from None
    if node is None or not isinstance(data, dict):
        raise RulesError(f"{source}: line 1: a rules file is a mapping with version, score, "
                         "windows, colours, rollup, warnings and pins")
    lines: dict[tuple[Any, ...], int] = {}
    _node_lines(node, (), lines, source)
    try:
        return LayerRules.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            # A discriminated union puts the member's tag in the location; the file has none.
            loc = tuple(p for i, p in enumerate(error["loc"])
                        if not (i == 1 and error["loc"][0] == "rollup" and p in ROLLUP_RULES))
            if error["type"] == "union_tag_invalid":
                loc = (*loc, "rule")
            field = ".".join(str(p) for p in loc) or "(top)"
            problems.append((_line_of(loc, lines), field, error["msg"]))
        problems.sort()
        shown = "; ".join(f"line {line}: {field}: {msg}" for line, field, msg in problems)
        raise RulesError(f"{source}: {shown}", details=[
            {"line": line, "field": field, "problem": msg} for line, field, msg in problems
        ]) from None


_cache: dict[Path, tuple[float, LayerRules]] = {}


def load_rules(path: Path | None = None) -> LayerRules:
    """Load a rules file (default: MINQING_LAYERS_RULES, else layers/rules/default.yaml)."""
    if path is None:
        from layers.settings import LayerSettings

        path = LayerSettings().rules
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise RulesError(f"cannot read the rules file {path}: {exc.strerror}") from None
    cached = _cache.get(path)
    if cached and cached[0] == mtime:
        return cached[1]
    rules = parse_rules(path.read_text(encoding="utf-8"), str(path))
    _cache[path] = (mtime, rules)
    return rules
