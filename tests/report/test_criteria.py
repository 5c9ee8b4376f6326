"""The seed's success criteria: verdicts with intervals, coherence bootstrap, the performance source."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agentbench.bench.results import save_bench_result
from agentbench.cli.app import main
from agentbench.models.backends import make_backend
from agentbench.models.registry import load_registry
from agentbench.report.criteria import (
    COHERENCE_MIN,
    Criterion,
    bootstrap_mean_interval,
    criteria_json,
    criteria_table,
    perf_source,
    success_criteria,
)
from agentbench.report.stats import wilson_interval
from agentbench.report.summary import coherence_stats
from agentbench.runner.execute import failed_result, run_scenario
from agentbench.runner.records import GradeRecord, ScenarioResult
from agentbench.scenario.loader import load_library

LIBRARY = load_library()


@pytest.mark.parametrize(("direction", "measured", "interval", "verdict"), [
    ("above", 0.95, (0.9, 0.99), "pass"),
    ("above", 0.9, (0.8, 0.97), "inconclusive"),
    ("above", 0.7, (0.6, 0.85), "fail"),  # "> 85 %": an upper end of exactly 85 % cannot pass
    ("above", 0.9, None, "pass"),
    ("above", None, None, "not measured"),
    ("below", 60.0, None, "pass"),
    ("below", 70.0, None, "fail"),
    ("below", 69.0, (65.0, 72.0), "inconclusive"),
])
def test_verdicts(direction: str, measured: float | None, interval: tuple[float, float] | None, verdict: str) -> None:
    threshold = 0.85 if direction == "above" else 70.0
    criterion = Criterion("c", threshold, direction, "", measured, interval)  # type: ignore[arg-type]
    assert criterion.verdict == verdict


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0, 0.5, 1.0, 0.75, 0.0, 1.0, 0.5, 1.0]
    low, high = bootstrap_mean_interval(values)
    assert (low, high) == bootstrap_mean_interval(values)
    assert low < sum(values) / len(values) < high and low >= 0.0 and high <= 1.0
    # Identical scores collapse the bootstrap: the Wilson interval of mean x n of n stands in.
    low_1, high_1 = bootstrap_mean_interval([1.0])
    assert high_1 == 1.0 and low_1 < 0.25
    low_5, high_5 = bootstrap_mean_interval([1.0] * 5)
    assert high_5 == 1.0 and 0.5 < low_5 < 0.6
    low_40, _ = bootstrap_mean_interval([1.0] * 40)
    assert low_40 > 0.9
    assert bootstrap_mean_interval([]) == (0.0, 1.0)


def _run(scenario_id: str, model: str = "reference") -> ScenarioResult:
    backend = make_backend(load_registry()[model])
    return asyncio.run(run_scenario(LIBRARY.get(scenario_id), backend, run_id="t"))


def _with_coherence(model: str, scores: list[float]) -> list[ScenarioResult]:
    base = _run("tip_calculation")
    return [base.model_copy(update={"model": model, "scenario_id": f"s{i}", "grades": [
        GradeRecord(grader="coherence", turn=1, passed=s == 1.0, score=s, reason="r")]}) for i, s in enumerate(scores)]


def test_quality_criteria_from_results() -> None:
    fc_runs = [_run(s) for s in ("tip_calculation", "multi_turn_budget")]
    criteria = success_criteria(fc_runs, LIBRARY.scenarios, ["reference"])
    fc, coherence = criteria["reference"]
    assert fc.measured == 1.0 and fc.n is not None and fc.interval is not None
    assert fc.interval[0] < 0.85 and fc.verdict == "inconclusive"  # perfect, but on too few calls to tell
    assert coherence.measured == 1.0 and coherence.n == 1 and coherence.verdict == "inconclusive"
    good = _with_coherence("good", [1.0] * 12 + [0.8] * 4)
    poor = _with_coherence("poor", [0.5, 0.6, 0.4, 0.7, 0.5, 0.6, 0.5, 0.3])
    both = success_criteria(good + poor, LIBRARY.scenarios, ["good", "poor"])
    assert [c.verdict for c in both["good"]][1] == "pass" and [c.verdict for c in both["poor"]][1] == "fail"
    assert both["poor"][1].interval is not None and both["poor"][1].interval[1] < 0.8
    table = criteria_table(both)
    assert table.rows[1][:4] == ["good", "multi-turn coherence (mean conversation score)", "> 0.80", "0.95"]
    assert table.rows[1][-2:] == ["PASS", "-"] and table.rows[3][-2] == "FAIL"
    assert criteria_json(both)["poor"][1]["verdict"] == "fail"


def test_performance_criteria_are_not_measured_without_bench_results(tmp_path: Path) -> None:
    source = perf_source(tmp_path)
    assert [c.verdict for c in source("qwen3-8b")] == ["not measured", "not measured"]
    save_bench_result(tmp_path, {"model": "qwen3-8b", "kind": "agent", "agent": {"output_tokens_per_s": 41.5},
                                 "server": {"startup": {"weights_gib": 15.0, "available_kv_cache_gib": 100.0}},
                                 "telemetry": {"summary": {"peak_memory_gb": 137.1, "peak_kv_cache_usage": 0.2}}})
    memory, rate = source("qwen3-8b")
    # what the model needs (weights + the KV cache it used: 35 GiB), not the device-wide 137.1 GB
    assert (round(memory.measured or 0, 2), memory.direction, memory.verdict) == (37.58, "below", "pass")
    assert "weights 15.00 GiB" in memory.method
    assert (rate.measured, rate.direction, rate.verdict) == (41.5, "above", "fail")
    assert [c.verdict for c in source("other-model")] == ["not measured", "not measured"]


def test_run_json_and_report_show_the_criteria(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "results"
    code = main(["run", "--scenarios", "tip_calculation,multi_turn_budget", "--models", "reference",
                 "--results-dir", str(results), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    rows = {c["criterion"]: c for c in data["summary"]["reference"]["criteria"]}
    assert rows["function calling accuracy"]["measured"] == 1.0 and rows["function calling accuracy"]["ci95"]
    assert rows["model GPU memory under 70 GB"]["verdict"] == "not measured"
    assert rows["model GPU memory under 70 GB"]["measured"] is None
    report = Path(data["report"][0]).read_text(encoding="utf-8")
    assert "## Success criteria" in report and "| reference | function calling accuracy | > 85.0% | 100.0% |" in report
    assert "not measured" in report


def test_few_runs_cannot_pass_on_a_narrow_bootstrap() -> None:
    low, high = bootstrap_mean_interval([1.0, 0.9])
    assert low < COHERENCE_MIN < high  # the percentile bootstrap alone said [0.90, 1.00]
    two = success_criteria(_with_coherence("two", [1.0, 0.9]), LIBRARY.scenarios, ["two"])["two"][1]
    assert two.verdict == "inconclusive" and "widened to the Wilson interval" in two.method
    # From 10 runs on, the bootstrap stands alone: narrower than the Wilson interval of the mean.
    many = [1.0] * 8 + [0.9] * 4
    mean = sum(many) / len(many)
    assert bootstrap_mean_interval(many)[0] > wilson_interval(round(mean * len(many), 9), len(many))[0]  # type: ignore[arg-type]


def test_a_crashed_run_counts_in_both_quality_criteria() -> None:
    scenario = LIBRARY.get("multi_turn_budget")
    ran = _run("multi_turn_budget")
    crashed = failed_result(scenario, "reference", "t", 1, "worker process died")
    assert [g.grader for g in crashed.grades] == ["outcome"]  # nothing else was graded
    assert [c.runs for c in coherence_stats([ran, crashed])] == [1]  # left out without the scenarios
    stats = coherence_stats([ran, crashed], scenarios=LIBRARY.scenarios)[0]
    assert (stats.runs, stats.conversation, stats.infrastructure_errors) == (2, 0.5, 1)
    fc, coherence = success_criteria([ran, crashed], LIBRARY.scenarios, ["reference"])["reference"]
    single = success_criteria([ran], LIBRARY.scenarios, ["reference"])["reference"][0]
    assert fc.n == 2 * (single.n or 0) and fc.measured == 0.5 and coherence.n == 2 and coherence.measured == 0.5
    for criterion in (fc, coherence):
        assert criterion.notes and "1 run(s) that ended in endpoint_error/error" in criterion.notes[0]
    assert "1 run(s) that ended in endpoint_error/error" in criteria_table({"reference": [fc]}).rows[0][-1]
