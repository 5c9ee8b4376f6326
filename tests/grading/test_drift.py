"""Scenario hashes in the run's plan: a scenario changed since the run is flagged, not silently regraded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agentbench.cli.app import main
from agentbench.grading.drift import scenario_drift, scenario_hash
from agentbench.grading.fc_metrics import fc_summary
from agentbench.scenario.loader import load_library
from agentbench.store import ResultStore

TIP = """\
id: tip_drift
title: Calculate a tip
category: function_calling
description: d
tools: [calculator]
turns:
  - user: Calculate 15% tip on $67.50
    expect:
      tool_calls:
        calls:
          - name: calculator
            args: {{expression: {{regex: '{pattern}'}}}}
solution:
  - tool_calls:
      - name: calculator
        args: {{expression: "{gold}"}}
    answer: The tip is $10.13.
"""
ORIGINAL = {"pattern": r"67\.50?\s*\*\s*0?\.15", "gold": "67.50 * 0.15"}
CHANGED = {"pattern": r"0?\.15\s*\*\s*67\.50?", "gold": "0.15 * 67.50"}  # the run's calls fail this one


def test_the_hash_follows_content_not_formatting(write_scenario: Callable[[str, str], Path]) -> None:
    path = write_scenario(TIP.format(**ORIGINAL), "tip.yaml")
    before = scenario_hash(load_library([path.parent]).get("tip_drift"))
    path.write_text("# a comment, and the same content\n" + TIP.format(**ORIGINAL), encoding="utf-8")
    assert scenario_hash(load_library([path.parent]).get("tip_drift")) == before
    path.write_text(TIP.format(**CHANGED), encoding="utf-8")
    assert scenario_hash(load_library([path.parent]).get("tip_drift")) != before


def _run(folder: Path, results: Path, capsys: pytest.CaptureFixture[str]) -> str:
    args = ["run", "--scenarios", "tip_drift,tip_calculation", "--models", "reference", "--scenarios-dir",
            str(folder), "--results-dir", str(results), "--json", "--no-report"]
    assert main(args) == 0
    return str(json.loads(capsys.readouterr().out)["run_id"])


def test_a_changed_scenario_is_flagged_in_the_tables_and_json(
        write_scenario: Callable[[str, str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(TIP.format(**ORIGINAL), "tip.yaml")
    results = tmp_path / "results"
    run_id = _run(path.parent, results, capsys)
    store = ResultStore(results)
    plan = store.plan(run_id)
    library = load_library([path.parent])
    assert plan.scenario_hashes == {s: scenario_hash(library.get(s)) for s in ("tip_drift", "tip_calculation")}
    stored = list(store.results(run_id))
    assert scenario_drift(stored, library.scenarios, plan.scenario_hashes).clean

    path.write_text(TIP.format(**CHANGED), encoding="utf-8")
    changed = load_library([path.parent]).scenarios
    drift = scenario_drift(stored, changed, plan.scenario_hashes)
    assert (dict(drift.changed), dict(drift.unknown), dict(drift.missing)) == ({"tip_drift": 1}, {}, {})
    regraded = fc_summary(stored, changed, scenario_hashes=plan.scenario_hashes)
    assert regraded.as_json("reference")["scenario_drift"]["changed"] == {"tip_drift": 1}
    assert regraded.by_category[("reference", "function_calling")].correct == 1  # tip_drift's call fails now

    out = tmp_path / "report"
    assert main(["report", run_id, "--out", str(out), "--results-dir", str(results)]) == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    flag = "1 scenario(s) changed since the run (1 runs: tip_drift): recomputed against the current library"
    function_calling = report.split("## Function calling")[1].split("##")[0]
    criteria = report.split("## Success criteria")[1].split("##")[0]
    assert flag in function_calling and flag in criteria
    assert "unknown whether" not in report


def test_an_older_run_without_hashes_says_unknown(write_scenario: Callable[[str, str], Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write_scenario(TIP.format(**ORIGINAL), "tip.yaml")
    results = tmp_path / "results"
    run_id = _run(path.parent, results, capsys)
    plan_file = results / "runs" / run_id / "plan.json"
    data = json.loads(plan_file.read_text(encoding="utf-8"))
    del data["scenario_hashes"]  # a plan written before hashes were stored
    plan_file.write_text(json.dumps(data), encoding="utf-8")
    assert main(["runs", "show", run_id, "--results-dir", str(results)]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # rich wraps notes: compare the words
    assert "unknown whether 2 scenario(s) changed since the run (2 runs; the run stored no scenario hashes)" in shown
