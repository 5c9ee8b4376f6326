"""Worker processes: same grades as in-process, and a dead worker never loses a run."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from agentbench.models.registry import adhoc_openai_model, load_registry
from agentbench.runner.records import ScenarioResult
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore
from agentbench.testing import OpenAITestServer, reference_responder


def worker_pids() -> list[int]:
    """Worker processes that are children of this test process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if b"agentbench.runner.worker_main" in cmdline and parent == os.getpid():
            pids.append(int(entry.name))
    return pids


def run(library: ScenarioLibrary, spec, folder: Path, workers: int, **kw) -> list[ScenarioResult]:
    store = ResultStore(folder)
    plan = make_plan([spec], list(library.scenarios.values()), workers=workers, **kw)
    store.create_run(plan)
    asyncio.run(execute_plan(plan, library, store, on_result=kw.get("on_result")))
    return list(store.results(plan.run_id))


def test_workers_grade_exactly_like_one_process(library: ScenarioLibrary, tmp_path: Path) -> None:
    spec = load_registry()["reference-noisy"]
    alone = {r.scenario_id: r for r in run(library, spec, tmp_path / "one", 1, concurrency=4)}
    spread = {r.scenario_id: r for r in run(library, spec, tmp_path / "two", 2, concurrency=4)}
    assert set(alone) == set(spread) == set(library.scenarios)
    for scenario_id, result in alone.items():
        other = spread[scenario_id]
        assert [(g.grader, g.turn, g.passed, g.reason) for g in other.grades] == \
               [(g.grader, g.turn, g.passed, g.reason) for g in result.grades], scenario_id
        assert other.faults == result.faults


def test_a_dead_worker_leaves_its_runs_recorded_as_errors(library: ScenarioLibrary, tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_one_worker(_: ScenarioResult) -> None:
        if not killed:
            killed.append(worker_pids()[0])
            os.kill(killed[0], signal.SIGKILL)

    with OpenAITestServer(reference_responder(library), model_names=["reference"], delay_s=0.2) as server:
        spec = adhoc_openai_model(server.base_url, "reference")
        store = ResultStore(tmp_path)
        plan = make_plan([spec], list(library.scenarios.values()), repeats=2, concurrency=4, workers=2)
        store.create_run(plan)
        asyncio.run(execute_plan(plan, library, store, on_result=kill_one_worker))
        results = list(store.results(plan.run_id))
    keys = [(r.scenario_id, r.repeat) for r in results]
    assert len(keys) == len(set(keys)) == 2 * len(library.scenarios)  # every run recorded exactly once
    lost = [r for r in results if r.outcome == "error"]
    assert lost, "the killed worker had runs in flight"
    assert all("worker process exited" in (r.error or "") and not r.passed for r in lost)
    assert sum(r.passed for r in results) == len(results) - len(lost)  # the other worker finished the rest
    deadline = time.monotonic() + 5
    while worker_pids() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker_pids() == []
