"""The command line as users run it: outputs, files written, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sample_scenarios import VALID_SCENARIO

from agentbench.cli.app import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_default_run_compares_reference_and_noisy(capsys, results_dir: Path, library) -> None:
    code, out, _ = cli(capsys, "run")
    assert code == 0
    assert "reference-noisy" in out and "Injected faults (grader check)" in out
    assert "MISSED" not in out and "FALSE FAILURE" not in out
    run_dir = next((results_dir / "runs").iterdir())
    assert (run_dir / "report" / "report.md").is_file() and (run_dir / "report" / "report.html").is_file()
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2 * len(library.scenarios)


def test_run_json_summary(capsys, results_dir: Path, library) -> None:
    code, out, _ = cli(capsys, "run", "--models", "reference", "--suite", "smoke", "--json", "--no-report")
    assert code == 0
    data = json.loads(out)
    smoke = len(library.suite("smoke"))
    assert data["summary"]["reference"]["runs"] == smoke and data["summary"]["reference"]["pass_rate"] == 1.0
    assert {r["scenario"] for r in data["results"]} == {s.id for s in library.suite("smoke")}


def test_repeats_and_runs_listing(capsys, results_dir: Path) -> None:
    assert cli(capsys, "run", "--models", "reference", "--scenarios", "tip_*", "--repeats", "3", "--no-report")[0] == 0
    code, out, _ = cli(capsys, "runs", "list", "--json")
    runs = json.loads(out)
    assert code == 0 and runs[0]["results"] == 3 and runs[0]["status"] == "completed"
    code, out, _ = cli(capsys, "runs", "show")
    assert code == 0 and "tip_calculation" in out and "PASS 3/3" in out


def test_report_command_writes_markdown_and_html(capsys, results_dir: Path, tmp_path: Path) -> None:
    cli(capsys, "run", "--scenarios", "tip_calculation", "--no-report")
    code, _out, _ = cli(capsys, "report", "--out", str(tmp_path / "rep"))
    assert code == 0
    markdown = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "| reference |" in markdown and "## Pass rate by category" in markdown
    # re-rendered reports carry every success criterion, the performance ones too (not measured here)
    assert "function calling accuracy" in markdown and "model GPU memory under 70 GB" in markdown
    assert page.startswith("<!doctype html>") and "<link" not in page and "<script src" not in page


def test_scenario_command_shows_transcript_and_grades(capsys, results_dir: Path) -> None:
    code, out, _ = cli(capsys, "scenario", "tip_calculation", "--model", "reference")
    assert code == 0
    assert "calculator(" in out and "PASS" in out and "tool_calls[turn 1]" in out and "timings:" in out


def test_scenario_json(capsys, results_dir: Path) -> None:
    code, out, _ = cli(capsys, "scenario", "tip_calculation", "--model", "reference-noisy", "--repeats", "2",
                       "--json")
    assert code == 0
    results = json.loads(out)["results"]
    assert [r["repeat"] for r in results] == [0, 1]
    assert [m["role"] for m in results[0]["turns"][0]["messages"]][:2] == ["user", "assistant"]


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--models", "gpt-17"], "unknown model 'gpt-17'"),
    (["run", "--suite", "nope"], "unknown suite 'nope'"),
    (["scenario", "nope"], "unknown scenario 'nope'"),
    (["run", "--resume", "20990101-000000-0000"], "no run '20990101-000000-0000'"),
    (["tools", "show", "teleport"], "unknown tool 'teleport'"),
    # checked at once, even when no vLLM server ends up being launched
    (["scenario", "tip_calculation", "--vllm-env", "NOEQUALS"], "--vllm-env: expected KEY=VALUE"),
])
def test_bad_input_exits_1_with_a_message(capsys, results_dir: Path, args: list[str], message: str) -> None:
    code, out, err = cli(capsys, *args)
    assert code == 1
    assert message in err
    assert "Traceback" not in out + err


def test_usage_error_exits_2(capsys) -> None:
    assert cli(capsys, "run", "--repeats", "zero")[0] == 2


def test_unreachable_endpoint_exits_3(capsys, results_dir: Path) -> None:
    code, out, err = cli(capsys, "run", "--scenarios", "tip_calculation", "--base-url", "http://127.0.0.1:9/v1",
                         "--model-name", "ghost", "--no-report")
    assert code == 3
    assert "endpoint_error" in out + err


def test_validate_reports_each_problem_and_exits_1(capsys, write_scenario) -> None:
    good = write_scenario(VALID_SCENARIO, "good.yaml")
    bad = write_scenario(VALID_SCENARIO.replace("id: demo_tip", "id: other").replace("max_steps: 4", "max_steps: x")
                         .replace("{regex: '80'}", "{glob: 1}"), "bad.yaml")
    code, out, err = cli(capsys, "scenarios", "validate", str(good.parent))
    assert code == 1
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{bad}:6:1: max_steps:")
    assert lines[1].startswith(f"{bad}:15:15: turns[0].expect.tool_calls.calls[0].args.expression: unknown argument")
    assert "2 problem(s) in 2 file(s)" in err and "Traceback" not in out + err
    assert cli(capsys, "scenarios", "validate", str(good))[0] == 0


def test_validate_builtin_scenarios_are_clean(capsys) -> None:
    from agentbench.scenario.loader import builtin_dir

    code, _, err = cli(capsys, "scenarios", "validate", str(builtin_dir()))
    assert code == 0 and "valid" in err


def test_scenarios_list_show_schema(capsys, library) -> None:
    code, out, _ = cli(capsys, "scenarios", "list", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["scenarios"]) == len(library.scenarios) and "smoke" in data["suites"]
    code, out, _ = cli(capsys, "scenarios", "show", "tip_calculation")
    assert code == 0 and "Calculate 15% tip on $67.50" in out
    code, out, _ = cli(capsys, "scenarios", "schema")
    schema = json.loads(out)
    assert code == 0 and schema["additionalProperties"] is False and "turns" in schema["required"]


def test_models_and_tools_listing(capsys) -> None:
    code, out, _ = cli(capsys, "models", "list", "--json")
    assert code == 0 and json.loads(out)["reference-noisy"]["faults"]["rate"] == 0.5
    code, out, _ = cli(capsys, "tools", "list", "--json")
    tools = {t["function"]["name"]: t for t in json.loads(out)}
    assert {"calculator", "read_file", "write_file", "list_files"} <= set(tools)
    assert tools["calculator"]["function"]["parameters"]["required"] == ["expression"]
    code, out, _ = cli(capsys, "tools", "show", "write_file")
    assert code == 0 and '"content"' in out


def test_user_models_file_adds_entries(capsys, tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("local:\n  backend: openai\n  base_url: http://localhost:8000/v1\n  model_name: qwen\n")
    code, out, _ = cli(capsys, "models", "show", "local", "--models-file", str(models), "--json")
    assert code == 0 and json.loads(out)["model_name"] == "qwen"
    models.write_text("local:\n  backend: openai\n  base_ur1: x\n")
    code, _, err = cli(capsys, "models", "list", "--models-file", str(models))
    assert code == 1 and "models.yaml:3:3: local.base_ur1: unknown key 'base_ur1'; did you mean 'base_url'?" in err


def test_installed_command_works_from_any_directory(tmp_path: Path) -> None:
    # The console script, not this test's imports: what a user runs after `pip install .`.
    done = subprocess.run([Path(sys.executable).with_name("agentbench"), "scenario", "code_debugging", "--model",
                           "reference", "--results-dir", str(tmp_path / "r")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "PASS" in done.stdout and "stats.py" in done.stdout
