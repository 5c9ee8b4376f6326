"""Function-calling metrics from stored records: matching, each count, the aggregate and its interval."""

from __future__ import annotations

from typing import Any

import pytest

from agentbench.grading.fc_metrics import FCCounts, fc_counts, fc_summary, schema_errors
from agentbench.report.stats import wilson_interval
from agentbench.report.tables import function_calling_table
from agentbench.runner.records import ScenarioResult, ToolCallRecord
from agentbench.scenario.loader import parse_scenario
from agentbench.scenario.schema import Scenario

YAML = """\
id: fc_toy
title: Toy
category: function_calling
description: d
tools: [calculator, read_file]
turns:
  - user: Compute 2+2 and read a.txt.
    expect:
      tool_calls:
        mode: {mode}
        calls:
          - name: calculator
            args: {{expression: {{regex: '2 ?\\+ ?2'}}}}
          - name: read_file
            args: {{path: a.txt}}
  - user: What is the capital of France?
    expect:
      no_tool_calls: true
solution:
  - tool_calls:
      - {{name: calculator, args: {{expression: 2+2}}}}
      - {{name: read_file, args: {{path: a.txt}}}}
    answer: 4, and a.txt says hi.
  - answer: Paris.
workspace:
  a.txt: hi
"""


def scenario(mode: str = "unordered") -> Scenario:
    parsed, problems = parse_scenario(YAML.format(mode=mode), "fc.yaml")
    assert parsed is not None, problems
    return parsed


def call(name: str, turn: int = 0, status: str = "ok", raw: str | None = None, **args: Any) -> ToolCallRecord:
    return ToolCallRecord(turn=turn, step=0, id="c", name=name, args=args, raw_args=raw, status=status)  # type: ignore[arg-type]


def result(calls: list[ToolCallRecord], model: str = "m", scenario_id: str = "fc_toy") -> ScenarioResult:
    return ScenarioResult(run_id="r", model=model, scenario_id=scenario_id, category="function_calling",
                          outcome="completed", started_at="now", wall_s=0.0, tool_calls=calls, passed=False, score=0.0)


GOLD = [call("calculator", expression="2+2"), call("read_file", path="a.txt")]


def test_gold_calls_are_fully_correct() -> None:
    c = fc_counts(result(GOLD), scenario())
    assert (c.units, c.correct, c.expected_calls, c.name_matched, c.args_matched, c.missing) == (3, 3, 2, 2, 2, 0)
    assert (c.abstentions, c.abstained, c.calls, c.schema_checked, c.schema_valid, c.redundant) == (1, 1, 2, 2, 2, 0)
    assert c.accuracy == 1.0 and c.accuracy_ci == wilson_interval(3, 3)


def test_wrong_argument_counts_for_the_name_not_the_arguments() -> None:
    c = fc_counts(result([call("calculator", expression="3*3"), GOLD[1]]), scenario())
    assert (c.name_matched, c.args_matched, c.correct, c.missing) == (2, 1, 2, 0)
    assert c.name_accuracy == 1.0 and c.argument_accuracy == 0.5


def test_missing_call_and_call_in_an_abstention_turn() -> None:
    c = fc_counts(result([GOLD[0], call("calculator", turn=1, expression="1+1")]), scenario())
    assert (c.missing, c.name_matched, c.abstained, c.correct, c.units) == (1, 1, 0, 1, 3)
    assert c.redundant == 1  # the gold answers turn 2 without a call


def test_a_hallucinated_or_malformed_call_spoils_the_turn() -> None:
    hallucinated = fc_counts(result([*GOLD, call("calculator_v2", status="unknown_tool", expression="2+2")]),
                             scenario())
    assert (hallucinated.hallucinated, hallucinated.args_matched, hallucinated.correct) == (1, 2, 1)
    malformed = fc_counts(result([GOLD[0], call("read_file", status="malformed", raw='{"path": "a.t')]), scenario())
    assert (malformed.malformed, malformed.correct, malformed.schema_checked) == (1, 1, 1)


def test_schema_validity_and_duplicates() -> None:
    calls = [*GOLD, call("read_file", path="a.txt"), call("read_file", path="a.txt", start_line=0, bogus=1)]
    c = fc_counts(result(calls), scenario())
    assert (c.schema_checked, c.schema_valid) == (4, 3)
    assert c.duplicates == 1 and c.redundant == 2  # the repeat, and one more call than the gold's two
    assert schema_errors("read_file", {"path": "a", "bogus": 1}) == [
        "arguments: Additional properties are not allowed ('bogus' was unexpected)"]
    assert schema_errors("calculator", {"expression": 3}) == ["expression: 3 is not of type 'string'"]
    assert schema_errors("no_such_tool", {}) is None


def test_strict_mode_pairs_by_position() -> None:
    swapped = [GOLD[1], GOLD[0]]
    assert fc_counts(result(swapped), scenario("strict")).args_matched == 0
    assert fc_counts(result(swapped), scenario("unordered")).args_matched == 2


def test_subset_expectations_are_not_required_calls() -> None:
    c = fc_counts(result([]), scenario("subset"))
    assert (c.expected_calls, c.units, c.correct) == (0, 1, 1)


def test_without_its_scenario_only_the_records_count() -> None:
    c = fc_counts(result([*GOLD, call("nope", status="unknown_tool")]), None)
    assert (c.units, c.calls, c.hallucinated, c.schema_checked) == (0, 3, 1, 2)
    with pytest.raises(ValueError, match="not the one of this result"):
        fc_counts(result(GOLD, scenario_id="other"), scenario())


def test_summary_per_model_and_category_and_table() -> None:
    s = scenario()
    fc = fc_summary([result(GOLD, "a"), result([], "b"), result(GOLD, "b")], {s.id: s}, ["b", "a"])
    assert fc.models == ["b", "a"] and fc.categories == ["function_calling"]
    assert (fc.overall["b"].correct, fc.overall["b"].units) == (4, 6)  # b missed both calls once
    data = fc.as_json("b")
    assert data["accuracy"] == pytest.approx(4 / 6) and data["by_category"]["function_calling"]["missing"] == 2
    rows = function_calling_table(fc).rows
    low, high = wilson_interval(4, 6)
    assert rows[0][:3] == ["b", "all", f"66.7% [{100 * low:.1f}-{100 * high:.1f}] (4/6)"]


def test_counts_add_up() -> None:
    a, b = FCCounts(units=2, correct=1, calls=3), FCCounts(units=1, correct=1, hallucinated=1)
    a.add(b)
    assert (a.units, a.correct, a.calls, a.hallucinated) == (3, 2, 3, 1)
    assert FCCounts().accuracy is None and FCCounts().as_json()["accuracy_ci95"] is None


def test_run_json_and_report_carry_function_calling_and_coherence(tmp_path, capsys) -> None:
    import json

    from agentbench.cli.app import main

    code = main(["run", "--scenarios", "multi_turn_budget,tip_calculation", "--models", "reference,reference-noisy",
                 "--results-dir", str(tmp_path), "--report-dir", str(tmp_path / "report"), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    fc = data["summary"]["reference"]["function_calling"]
    assert fc["accuracy"] == 1.0 and fc["units"] == 4 and set(fc["by_category"]) == {"conversation", "function_calling"}
    assert data["summary"]["reference"]["coherence"]["conversation"] == 1.0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Function calling" in report and "## Multi-turn coherence" in report
