"""The built-in library's shape: size, categories, difficulties, suites, and the `scenarios list` counts."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from agentbench.cli.app import main
from agentbench.cli.scenarios_cmd import DIFFICULTIES, difficulty_counts
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.scenario.schema import CATEGORIES
from agentbench.tools import all_tool_specs, tool_spec

MIN_SCENARIOS = 60
MIN_PER_CATEGORY = 5


def test_library_has_at_least_60_scenarios_and_5_per_category(library: ScenarioLibrary) -> None:
    counts = Counter(str(s.category) for s in library.scenarios.values())
    assert len(library.scenarios) >= MIN_SCENARIOS, len(library.scenarios)
    short = {c: counts[c] for c in CATEGORIES if counts[c] < MIN_PER_CATEGORY}
    assert short == {}, f"categories below {MIN_PER_CATEGORY} scenarios: {short}"


def test_every_category_spans_easy_medium_and_hard(library: ScenarioLibrary) -> None:
    spread = {c: {s.difficulty for s in library.scenarios.values() if s.category == c} for c in CATEGORIES}
    missing = {c: sorted(set(DIFFICULTIES) - found) for c, found in spread.items() if found != set(DIFFICULTIES)}
    assert missing == {}, f"difficulties missing per category: {missing}"


def test_named_suites_exist_and_smoke_covers_every_tool_family(library: ScenarioLibrary) -> None:
    for name in ("smoke", "agentic", "full"):
        assert library.suite(name), f"suite {name!r} is empty"
    smoke = library.suite("smoke")
    assert len(smoke) <= 10, "smoke should stay small and fast"
    covered = {tool_spec(t).group for s in smoke for t in s.tools}
    assert covered >= {spec.group for spec in all_tool_specs()}


def test_agentic_scenarios_make_several_tool_calls(library: ScenarioLibrary) -> None:
    shallow = [s.id for s in library.suite("agentic")
               if max(len(turn.tool_calls) for turn in s.solution) < 2 and len(s.turns) < 2]
    assert shallow == []


def test_every_suite_selects_something(library: ScenarioLibrary) -> None:
    assert [name for name in library.suites if not library.suite(name)] == []


def test_difficulty_counts_group_by_category() -> None:
    from types import SimpleNamespace

    scenarios = [SimpleNamespace(category="irrelevance", difficulty="easy"),
                 SimpleNamespace(category="conversation", difficulty="hard"),
                 SimpleNamespace(category="irrelevance", difficulty="easy")]
    counts = difficulty_counts(scenarios)  # type: ignore[arg-type]
    assert list(counts) == ["conversation", "irrelevance"]
    assert counts["irrelevance"] == {"easy": 2, "medium": 0, "hard": 0, "total": 2}


def test_scenarios_list_prints_the_counts(capsys: pytest.CaptureFixture[str], library: ScenarioLibrary) -> None:
    assert main(["scenarios", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_category = Counter(s.category for s in library.scenarios.values())
    assert {c: row["total"] for c, row in data["counts"].items()} == dict(by_category)
    assert sum(row["hard"] for row in data["counts"].values()) == sum(
        s.difficulty == "hard" for s in library.scenarios.values())
    assert main(["scenarios", "list"]) == 0
    out = capsys.readouterr().out
    assert "By category and difficulty" in out and f"{len(library.scenarios)} scenarios" in out
