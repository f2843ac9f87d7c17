"""The rules file: the default one loads; a bad one is refused naming the line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers.rules import DEFAULT_RULES, RulesError, load_rules, parse_rules
from layers.settings import LayerSettings

TEXT = DEFAULT_RULES.read_text(encoding="utf-8")


def _line(needle: str) -> int:
    """1-based line of the first line of the default file holding ``needle``."""
    return next(i for i, line in enumerate(TEXT.splitlines(), 1) if needle in line)


def test_the_default_rules_load_with_their_numbers() -> None:
    rules = load_rules(DEFAULT_RULES)
    assert rules.version == "2026.12-1"
    assert rules.windows.days() == (7, 30)
    assert rules.score.category_weights["矛盾纠纷"] == 3.0
    assert rules.rollup.rule == "share_of_children"
    assert rules.warnings.rule == "poisson"


@pytest.mark.parametrize(("old", "new", "at", "field", "problem"), [
    ("  unresolved_factor: 2.0", "  unresolved_factor: 0.5", "unresolved_factor",
     "score.unresolved_factor", "greater than or equal to 1"),
    ("  severity_multipliers: [1.0, 1.5, 2.5, 4.0]", "  severity_multipliers: [1.0, 1.5]",
     "severity_multipliers", "score.severity_multipliers", "at least 4 items"),
    ("  red: 36.0", "  red: 10.0", "colours:", "colours", "red (10.0) must be above yellow"),
    ("  short_days: 7", "  short_days: 30", "windows:", "windows",
     "short_days (30) must be less than long_days"),
    ("  rule: share_of_children", "  rule: majority", "rule: share_of_children",
     "rollup.rule", "does not match any of the expected tags"),
    ("  max_days: 90", "  max_days: 90\n  colour: red", "max_days", "pins.colour",
     "Extra inputs are not permitted"),
    ("  p_value: 0.001", "  p_value: often", "  p_value:", "warnings.p_value", "valid number"),
])
def test_a_bad_rule_is_refused_with_its_line_and_field(old: str, new: str, at: str, field: str,
                                                       problem: str) -> None:
    assert old in TEXT
    with pytest.raises(RulesError) as caught:
        parse_rules(TEXT.replace(old, new), "bad.yaml")
    line = _line(at) + (1 if field == "pins.colour" else 0)
    assert caught.value.message.startswith(f"bad.yaml: line {line}: {field}: "), \
        caught.value.message
    assert problem in caught.value.message
    assert caught.value.details[0]["line"] == line


def test_broken_yaml_and_duplicate_keys_name_their_line() -> None:
    with pytest.raises(RulesError, match=rf"^x\.yaml: line {_line('unresolved_factor: 2')}: "
                                         "not valid YAML: mapping values are not allowed"):
        parse_rules(TEXT.replace("  unresolved_factor: 2.0", "  unresolved_factor: 2.0: 3"),
                    "x.yaml")
    with pytest.raises(RulesError, match=rf"^x\.yaml: line {_line('  yellow: 15.0') + 1}: "
                                         r"colours\.red is given twice"):
        parse_rules(TEXT.replace("  yellow: 15.0", "  yellow: 15.0\n  red: 40"), "x.yaml")
    with pytest.raises(RulesError, match="line 1: a rules file is a mapping"):
        parse_rules("- just a list\n", "x.yaml")


def test_the_environment_points_at_another_rules_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "strict.yaml"
    other.write_text(TEXT.replace('version: "2026.12-1"', 'version: "strict-1"')
                     .replace("  red: 36.0", "  red: 20.0"), encoding="utf-8")
    monkeypatch.setenv("MINQING_LAYERS_RULES", str(other))
    assert LayerSettings().rules == other
    rules = load_rules()
    assert (rules.version, rules.colours.red) == ("strict-1", 20.0)
    other.write_text(TEXT.replace("  yellow: 15.0", "  yellow: -1"), encoding="utf-8")
    with pytest.raises(RulesError, match=rf"{other}: line {_line('  yellow: 15.0')}: "
                                         r"colours\.yellow"):
        load_rules()
    missing = tmp_path / "none.yaml"
    with pytest.raises(RulesError, match="cannot read the rules file"):
        load_rules(missing)
