"""``agentbench compare`` end to end, and the intervals and Repeats table in run output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentbench.cli.app import main
from agentbench.report.tables import report_tables
from agentbench.store import ResultStore


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run(capsys: pytest.CaptureFixture[str], tmp: Path, models: str, repeats: int = 3) -> str:
    code, out, _ = cli(capsys, "run", "--suite", "smoke", "--models", models, "--repeats", str(repeats),
                       "--results-dir", str(tmp), "--no-report", "--json")
    assert code == 0
    return str(json.loads(out)["run_id"])


def test_compare_two_models_within_a_run_is_beyond_noise(capsys, tmp_path: Path) -> None:
    run_id = run(capsys, tmp_path, "reference,reference-noisy")
    code, out, _ = cli(capsys, "compare", run_id, "--models", "reference,reference-noisy",
                       "--results-dir", str(tmp_path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["a"]["model"] == "reference" and data["b"]["model"] == "reference-noisy"
    assert data["pairs"] == data["a"]["passed"] and data["a"]["pass_rate"] == 1.0
    assert data["a_fail_b_pass"] == 0 and data["a_pass_b_fail"] == data["pairs"] - data["b"]["passed"]
    assert data["mcnemar_p"] < 0.05 and data["different"] is True
    assert data["verdict"] == "different beyond noise (p < 0.05)"
    low, high = data["score_diff"]["ci95"]
    assert 0 < low <= data["score_diff"]["mean"] <= high
    code, out, _ = cli(capsys, "compare", run_id, "--models", "reference,reference-noisy",
                       "--results-dir", str(tmp_path))
    assert code == 0 and "McNemar" in out and "verdict: different beyond noise" in out


def test_compare_reference_with_itself_across_runs_is_within_noise(capsys, tmp_path: Path) -> None:
    first, second = run(capsys, tmp_path, "reference", 2), run(capsys, tmp_path, "reference", 2)
    code, out, _ = cli(capsys, "compare", first, second, "--results-dir", str(tmp_path), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["a"]["run"] == first and data["b"]["run"] == second and data["pairs"] > 0
    assert data["a_pass_b_fail"] == data["a_fail_b_pass"] == 0 and data["mcnemar_p"] == 1.0
    assert data["different"] is False and data["verdict"] == "the difference is within the noise (p = 1.00)"


def test_compare_bad_input_exits_1_with_a_message(capsys, tmp_path: Path) -> None:
    both = run(capsys, tmp_path, "reference,reference-noisy", 1)
    code, out, _ = cli(capsys, "run", "--scenarios", "irrelevance_definition", "--models", "reference", "--results-dir",
                       str(tmp_path), "--no-report", "--json")
    other = json.loads(out)["run_id"]
    cases = [
        (["compare", "no-such-run"], "no run 'no-such-run'"),
        (["compare", both], "needs --models A,B"),
        (["compare", both, "--models", "reference,gpt-x"], "model 'gpt-x' is not in run"),
        (["compare", both, "--models", "reference"], "--models takes two model keys"),
        (["compare", both, other], "pick one from each run with --models A,B"),
        (["compare", other, both, "--models", "reference,reference-noisy"], "no scenario (scenario, repeat) in common"),
    ]
    for args, message in cases:
        code, _, err = cli(capsys, *args, "--results-dir", str(tmp_path))
        assert code == 1 and message in err and "Traceback" not in err, (args, err)


def test_intervals_and_repeats_table(capsys, tmp_path: Path) -> None:
    run_id = run(capsys, tmp_path, "reference,reference-noisy", 3)
    results = list(ResultStore(tmp_path).results(run_id))
    tables = {t.title: t for t in report_tables(results, ["reference", "reference-noisy"])}
    summary = tables["Summary"]
    rate = summary.rows[0][summary.headers.index("pass rate")]
    assert rate.startswith("100.0% [") and rate.endswith("-100.0]")
    assert all("[" in cell for row in tables["Pass rate by category"].rows for cell in row[1:] if cell != "-")
    repeats = tables["Repeats"]
    assert repeats.headers == ["model", "scenarios", "k (repeats)", "pass@1", "pass@k", "pass^k"]
    ref, noisy = repeats.rows
    assert ref[0] == "reference" and ref[2] == "3" and ref[3:] == ["100.0%", "100.0%", "100.0%"]
    at_1, at_k, hat_k = (float(cell.rstrip("%")) for cell in noisy[3:])
    assert hat_k <= at_1 <= at_k
    code, out, _ = cli(capsys, "runs", "show", run_id, "--results-dir", str(tmp_path))
    assert code == 0 and "Repeats" in out and "pass^k" in out
    once = run(capsys, tmp_path, "reference", 1)
    titles = [t.title for t in report_tables(list(ResultStore(tmp_path).results(once)))]
    assert "Repeats" not in titles and "Summary" in titles


def test_run_json_has_interval_and_repeats(capsys, tmp_path: Path) -> None:
    code, out, _ = cli(capsys, "run", "--suite", "smoke", "--models", "reference-noisy", "--repeats", "2",
                       "--results-dir", str(tmp_path), "--no-report", "--json")
    summary = json.loads(out)["summary"]["reference-noisy"]
    low, high = summary["pass_rate_ci95"]
    assert code == 0 and low <= summary["pass_rate"] <= high
    assert summary["repeats"]["k"] == 2
    assert summary["repeats"]["pass^k"] <= summary["repeats"]["pass@1"] <= summary["repeats"]["pass@k"]
