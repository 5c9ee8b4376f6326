"""Meta-evaluation: every injectable fault is caught by its grader, no gold solution fails (full library)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from agentbench.cli.app import main
from agentbench.models.faults import FAULT_KINDS, Fault, fault_candidates
from agentbench.report.metaeval import (
    COHERENCE_FAULT,
    MetaEval,
    Trial,
    coherence_faults,
    meta_evaluate,
    metaeval_tables,
)
from agentbench.scenario.loader import load_library

LIBRARY = load_library()


def test_the_graders_meet_their_targets_on_the_full_library() -> None:
    scenarios = LIBRARY.suite("full")
    meta = asyncio.run(meta_evaluate(scenarios, concurrency=8))
    problems = [(t.scenario_id, t.fault, t.reasons) for t in meta.trials if not t.ok]
    assert problems == []
    assert meta.passed and meta.false_failures() == {}
    assert meta.gold_runs() == len(scenarios)
    # Every candidate fault of every scenario ran once (tests/models/test_reference.py relies on this).
    injected = sum(len(fault_candidates(s)) + len(coherence_faults(s)) for s in scenarios)
    assert len(meta.trials) - meta.gold_runs() == injected
    rows = meta.recall()
    assert {r.kind for r in rows} == {*FAULT_KINDS, COHERENCE_FAULT}
    assert all(r.recall == 1.0 and r.injected > 0 for r in rows)


def test_coherence_faults_exist_where_turns_have_coherence_checks() -> None:
    budget = LIBRARY.get("multi_turn_budget")
    faults = coherence_faults(budget)
    assert [f.turn for f, _ in faults] == [1, 2]
    assert all(f.expected_grader == "coherence" for f, _ in faults)
    assert coherence_faults(LIBRARY.get("tip_calculation")) == []


def _trial(scenario: str, fault: str | None, failed: tuple[str, ...]) -> Trial:
    made = Fault(fault, 0, None, "d", "tool_calls") if fault else None
    return Trial(scenario, 0, made, failed, ("why",) if failed else ())


def test_recall_false_failures_and_tables_from_trials() -> None:
    meta = MetaEval([_trial("a", None, ()), _trial("b", None, ("files",)),
                     _trial("a", "wrong_argument", ("tool_calls",)), _trial("b", "wrong_argument", ("answer",))])
    assert not meta.passed
    [row] = meta.recall()
    assert (row.kind, row.grader, row.injected, row.caught, row.recall, row.missed_in) == (
        "wrong_argument", "tool_calls", 2, 1, 0.5, ("b",))
    assert meta.false_failures() == {"files": ["b"]}
    recall, false, problems = metaeval_tables(meta)
    assert recall.rows[0][4:7] == ["50.0%", "100% MISSED", "b"]
    assert false.rows == [["files", "2", "1", "0 MISSED", "b"]]
    assert [r[0] for r in problems.rows] == ["b", "b"]
    data = meta.as_json()
    assert data["passed"] is False and len(data["problems"]) == 2  # type: ignore[arg-type]


BROKEN = """\
id: broken_check
title: A hidden check the gold solution cannot pass
category: function_calling
description: d
tools: [calculator]
turns:
  - user: What is 2 + 2?
    expect:
      tool_calls:
        calls: [{name: calculator, args: {expression: {regex: '2 ?\\+ ?2'}}}]
      answer: [{number: 4}]
solution:
  - tool_calls: [{name: calculator, args: {expression: 2 + 2}}]
    answer: "4"
checks:
  files:
    - {path: never_written.txt}
"""


def test_cli_exits_4_on_a_false_failure_and_0_when_targets_are_met(tmp_path: Path, capsys) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    code = main(["meta-eval", "--scenarios", "broken_check", "--scenarios-dir", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 4 and data["passed"] is False
    assert data["false_failures"] == {"files": ["broken_check"]}
    assert main(["meta-eval", "--scenarios", "tip_calculation"]) == 0
    assert "all targets met" in capsys.readouterr().out
