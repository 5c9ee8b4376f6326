"""Scenario files: every problem reported as file:line:column: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sample_scenarios import VALID_SCENARIO as VALID

from agentbench.errors import ScenarioError
from agentbench.scenario.loader import load_library, load_scenario_file, parse_scenario, validate_paths


def problems_of(text: str) -> list[str]:
    scenario, problems = parse_scenario(text, "s.yaml")
    assert scenario is None, "expected the scenario to be rejected"
    return [str(p) for p in problems]


def test_valid_scenario_loads(write_scenario) -> None:
    scenario = load_scenario_file(write_scenario(VALID))
    assert scenario.id == "demo_tip"
    assert scenario.turns[0].expect.tool_calls.calls[0].args["expression"].kind == "regex"
    assert scenario.solution[0].model_steps == 2
    assert scenario.source.endswith("scenario.yaml")


def test_yaml_syntax_error_has_line_and_column() -> None:
    problems = problems_of("id: x\ntitle: [unclosed\ncategory: irrelevance\n")
    assert len(problems) == 1
    assert problems[0].startswith("s.yaml:3:")
    assert "YAML syntax error" in problems[0]


def test_duplicate_key_names_both_lines() -> None:
    text = VALID.replace("max_steps: 4\n", "max_steps: 4\nmax_steps: 5\n")
    problems = problems_of(text)
    assert problems == ["s.yaml:7:1: max_steps: duplicate key 'max_steps' (first on line 6)"]


def test_unknown_key_suggests_the_right_one() -> None:
    text = VALID.replace("title: Demo tip", "tittle: Demo tip")
    problems = problems_of(text)
    assert any(p.startswith("s.yaml:2:1: tittle: unknown key 'tittle'; did you mean 'title'?") for p in problems)
    assert "s.yaml:1:1: title: missing required field 'title'" in problems


def test_nested_unknown_key_points_at_its_line() -> None:
    text = VALID.replace("        mode: strict\n", "        mode: strict\n        order: any\n")
    problems = problems_of(text)
    assert problems[0].startswith("s.yaml:12:9: turns[0].expect.tool_calls.order: unknown key 'order'")
    assert "allowed: calls, mode" in problems[0]


def test_wrong_type_is_located() -> None:
    problems = problems_of(VALID.replace("max_steps: 4", "max_steps: four"))
    assert len(problems) == 1
    assert problems[0].startswith("s.yaml:6:1: max_steps:")
    assert "integer" in problems[0]


def test_wrong_literal_is_located() -> None:
    problems = problems_of(VALID.replace("mode: strict", "mode: sorted"))
    assert problems[0].startswith("s.yaml:11:9: turns[0].expect.tool_calls.mode:")
    assert "'strict'" in problems[0] and "'superset'" in problems[0]


def test_unknown_matcher_is_named() -> None:
    problems = problems_of(VALID.replace("{regex: '80'}", "{glob: '80*'}"))
    assert len(problems) == 1
    assert problems[0].startswith("s.yaml:15:15: turns[0].expect.tool_calls.calls[0].args.expression:")
    assert "unknown argument matcher 'glob'" in problems[0]


def test_invalid_regex_is_reported() -> None:
    problems = problems_of(VALID.replace("{regex: '80'}", "{regex: '(80'}"))
    assert "invalid regular expression '(80'" in problems[0]


def test_unknown_tool_is_reported_with_known_tools() -> None:
    problems = problems_of(VALID.replace("tools: [calculator]", "tools: [calculator, teleport]"))
    assert any(p.startswith("s.yaml:5:21: tools[1]: unknown tool 'teleport'") for p in problems)
    assert any("known tools:" in p and "calculator" in p for p in problems)


def test_solution_calling_undeclared_tool() -> None:
    text = VALID.replace('      - name: calculator\n        args: {expression: "80 * 0.15"}',
                         '      - name: read_file\n        args: {path: "x"}')
    problems = problems_of(text)
    assert any("solution[0].tool_calls[0].name: calls 'read_file', which the scenario does not declare"
               in p for p in problems)


def test_solution_failing_its_own_expectations() -> None:
    text = VALID.replace('"80 * 0.15"', '"90 * 0.15"').replace("answer: It is 12.", "answer: It is 13.")
    problems = problems_of(text)
    assert any("solution[0].tool_calls: the solution fails the turn's own tool_calls expectation" in p
               and "expected regex '80'" in p for p in problems)
    assert any("solution[0].answer: the solution's answer fails turns[0].expect.answer[0]" in p
               for p in problems)


def test_solution_arguments_checked_against_tool_schema() -> None:
    text = VALID.replace('args: {expression: "80 * 0.15"}', 'args: {expr: "80 * 0.15"}')
    problems = problems_of(text)
    assert any("solution[0].tool_calls[0].args" in p and "invalid argument for calculator" in p
               for p in problems)


def test_solution_must_cover_every_turn() -> None:
    text = VALID + "  - answer: extra\n"
    problems = problems_of(text)
    assert any("solution: has 2 turns but the scenario has 1" in p for p in problems)


def test_step_limit_too_small_for_solution() -> None:
    problems = problems_of(VALID.replace("max_steps: 4", "max_steps: 1"))
    assert any("needs 2 model steps but max_steps is 1" in p for p in problems)


def test_no_tool_calls_conflict() -> None:
    text = VALID.replace("      tool_calls:\n        mode: strict",
                         "      no_tool_calls: true\n      tool_calls:\n        mode: strict")
    problems = problems_of(text)
    assert any("exclude each other" in p for p in problems)


def test_workspace_path_must_stay_inside() -> None:
    problems = problems_of(VALID + "workspace:\n  ../escape.txt: hi\n")
    assert any("must be relative and stay inside the workspace" in p for p in problems)


def test_not_a_mapping() -> None:
    assert problems_of("- a\n- b\n") == ["s.yaml:1:1: a scenario file holds one mapping (id: ..., title: ...)"]


def test_validate_paths_reports_every_file(write_scenario) -> None:
    good = write_scenario(VALID, "good.yaml")
    bad = write_scenario(VALID.replace("id: demo_tip", "id: Bad Id"), "bad.yaml")
    checked, problems = validate_paths([good.parent])
    assert checked == 2
    assert [p.file for p in problems] == [str(bad)]
    assert problems[0].field == "id"


def test_user_scenario_cannot_override_builtin(write_scenario, library) -> None:
    text = VALID.replace("id: demo_tip", f"id: {next(iter(library.scenarios))}")
    path = write_scenario(text)
    with pytest.raises(ScenarioError) as info:
        load_library([path.parent])
    assert "is already defined in" in str(info.value)


def test_user_dirs_from_environment(write_scenario, monkeypatch) -> None:
    path = write_scenario(VALID)
    monkeypatch.setenv("AGENTBENCH_SCENARIOS_DIR", str(path.parent))
    assert "demo_tip" in load_library().scenarios


def test_missing_user_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="does not exist"):
        load_library([tmp_path / "nope"])


def test_suites_select_by_tag_and_pattern(library) -> None:
    smoke = library.suite("smoke")
    assert smoke and all("smoke" in s.tags for s in smoke)
    assert {s.id for s in library.suite("full")} == set(library.scenarios)
    assert [s.id for s in library.matching("tip_*")] == ["tip_calculation"]
    with pytest.raises(ScenarioError, match="unknown suite"):
        library.suite("nope")
    with pytest.raises(ScenarioError, match="did you mean tip_calculation"):
        library.get("tip_calculaton")
