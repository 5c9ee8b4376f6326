"""The results store: durable appends, crash repair, and resume after kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentbench.errors import ConfigError
from agentbench.models.registry import load_registry
from agentbench.runner.records import GradeRecord, ScenarioResult
from agentbench.runner.suite import make_plan
from agentbench.store import ResultStore, RunPlan
from agentbench.testing import OpenAITestServer, reference_responder


def result(scenario: str, repeat: int = 0, run_id: str = "r1") -> ScenarioResult:
    return ScenarioResult(run_id=run_id, model="m", scenario_id=scenario, category="irrelevance", repeat=repeat,
                          outcome="completed", started_at="2026-01-01T00:00:00+00:00", wall_s=0.1,
                          grades=[GradeRecord(grader="outcome", passed=True, score=1.0, reason="ok")],
                          passed=True, score=1.0)


def plan(run_id: str = "r1") -> RunPlan:
    return RunPlan(run_id=run_id, created_at="2026-01-01T00:00:00+00:00", models=["m"],
                   scenario_ids=["a", "b", "c"], repeats=1)


def index_rows(root: Path, run_id: str) -> list[tuple]:
    with sqlite3.connect(root / "index.sqlite") as db:
        return db.execute("SELECT scenario_id, repeat FROM results WHERE run_id=? ORDER BY scenario_id",
                          (run_id,)).fetchall()


def test_append_and_read_back(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.create_run(plan())
    store.append(result("a"))
    store.append(result("b"))
    assert [r.scenario_id for r in store.results("r1")] == ["a", "b"]
    assert index_rows(tmp_path, "r1") == [("a", 0), ("b", 0)]
    assert store.runs()[0]["results"] == 2
    assert store.plan("r1").work_items() == [("m", "a", 0), ("m", "b", 0), ("m", "c", 0)]


def test_the_latest_run_is_the_last_created_even_within_one_second(tmp_path: Path, library) -> None:
    """Run ids carry a random suffix after the second: two runs started in one second (scripts, tests) must
    still come back newest first, or `runs show` and `report` would pick the older one."""
    store = ResultStore(tmp_path)
    reference = load_registry()["reference"]
    ids = ["20260101-000000-ffff", "20260101-000000-0000", "20260101-000000-8888"]  # suffixes out of order
    for run_id in ids:
        store.create_run(make_plan([reference], [library.scenarios["tip_calculation"]], run_id=run_id))
    assert store.latest_run_id() == ids[-1]
    assert [r["run_id"] for r in store.runs()] == ids[::-1]


def test_recover_drops_a_partial_line_and_reindexes(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.create_run(plan())
    store.append(result("a"))
    jsonl = tmp_path / "runs" / "r1" / "results.jsonl"
    # A crash between the JSONL write and the index commit, then one in the middle of a write:
    with open(jsonl, "a", encoding="utf-8") as handle:
        handle.write(result("b").model_dump_json() + "\n")
        handle.write(result("c").model_dump_json()[:50])
    assert index_rows(tmp_path, "r1") == [("a", 0)]
    done = store.recover("r1")
    assert done == {("m", "a", 0), ("m", "b", 0)}
    assert index_rows(tmp_path, "r1") == [("a", 0), ("b", 0)]
    assert jsonl.read_text().count("\n") == 2 and jsonl.read_text().endswith("\n")
    assert store.recover("r1") == done  # idempotent


def test_corrupt_line_in_the_middle_is_an_error_not_a_guess(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    store.create_run(plan())
    jsonl = tmp_path / "runs" / "r1" / "results.jsonl"
    jsonl.write_text('{"not": "a result"}\n' + result("a").model_dump_json() + "\n")
    with pytest.raises(ConfigError, match=r"results.jsonl:1: not a valid result record"):
        list(store.results("r1"))


def test_unknown_and_invalid_run_ids(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    with pytest.raises(ConfigError, match="no run 'nope'"):
        store.plan("nope")
    with pytest.raises(ConfigError, match="invalid run id"):
        store.plan("../etc")
    with pytest.raises(ConfigError, match="no runs in"):
        store.latest_run_id()


def _jsonl_lines(root: Path) -> tuple[str, list[str]]:
    runs = list((root / "runs").glob("*/results.jsonl"))
    if not runs:
        return "", []
    return runs[0].parent.name, runs[0].read_text().splitlines()


def _orphaned_workers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"agentbench.runner.worker_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_then_resume_loses_and_repeats_nothing(tmp_path: Path, library, workers: int) -> None:
    results = tmp_path / "results"
    env = {**os.environ, "AGENTBENCH_RESULTS_DIR": str(results)}
    expected = len(library.scenarios)
    with OpenAITestServer(reference_responder(library), model_names=["reference"], delay_s=0.15) as server:
        args = [sys.executable, "-m", "agentbench", "run", "--base-url", server.base_url, "--model-name",
                "reference", "--concurrency", str(workers), "--workers", str(workers), "--no-report"]
        child = subprocess.Popen(args, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(_jsonl_lines(results)[1]) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 5
        while _orphaned_workers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _orphaned_workers() == []  # workers exit when their parent dies
        run_id, before = _jsonl_lines(results)
        assert 3 <= len(before) < expected, "the kill must land mid-run"
        resumed = subprocess.run([sys.executable, "-m", "agentbench", "run", "--resume", run_id, "--json",
                                  "--no-report"], env=env, cwd=tmp_path, capture_output=True, text=True,
                                 timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    _, after = _jsonl_lines(results)
    assert after[: len(before)] == before  # what was stored is untouched
    keys = [(json.loads(line)["scenario_id"], json.loads(line)["repeat"]) for line in after]
    assert len(keys) == len(set(keys)) == expected  # nothing duplicated, nothing missing
    assert len(index_rows(results, run_id)) == expected
    report = json.loads(resumed.stdout)
    assert report["summary"]["reference"]["passed"] == expected
