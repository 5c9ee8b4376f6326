"""Spreading one model's scenario runs over worker processes (``--workers N``).

A Python process running LangChain and LangGraph saturates one core long before a GPU server
does; scenario runs are independent, so several worker processes multiply the client's
throughput. The parent hands out items one at a time as workers finish them and is the only
writer to the results store. A worker that dies leaves its unfinished items recorded as
``error`` outcomes, never silently missing.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from agentbench.childproc import python_module_argv
from agentbench.models.registry import ModelSpec
from agentbench.runner.execute import failed_result
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore, RunPlan
from agentbench.telemetry.hook import safe_attach

_LINE_LIMIT = 2**28  # one ScenarioResult per line; long transcripts are long lines


def auto_workers(concurrency: int) -> int:
    """Worker processes for a run: one per 16 concurrent runs, at most one per core."""
    return max(1, min(os.cpu_count() or 1, concurrency // 16))


Attach = Callable[[ScenarioResult, float, float], None]


class _Dispatch:
    """The shared queue of items and what to do with each result."""

    def __init__(self, todo: list[tuple[str, int]], store: ResultStore,
                 on_result: Callable[[ScenarioResult], None], attach: Attach | None = None) -> None:
        self.queue = deque(todo)
        self.store = store
        self.on_result = on_result
        self.attach = attach
        self.fresh: list[ScenarioResult] = []

    def accept(self, result: ScenarioResult, line: str | None = None,
               window: tuple[float, float] | None = None) -> None:
        if self.attach is not None and window is not None:
            # Telemetry is sampled once, here in the parent; each result gets the slice of its window
            # (item handed out -> result back, perf_counter in this process), so its line changes.
            # A telemetry error is recorded in the result, never raised: the graded result is kept.
            safe_attach(self.attach, result, *window)
            line = None
        self.store.append(result, line)  # the parent is the only writer
        self.fresh.append(result)
        self.on_result(result)


async def _drive(proc: asyncio.subprocess.Process, job: dict[str, Any], slots: int, dispatch: _Dispatch,
                 library: ScenarioLibrary) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout
    in_flight: set[tuple[str, int]] = set()
    sent_at: dict[tuple[str, int], float] = {}
    stdin.write((json.dumps(job) + "\n").encode())

    def send_next() -> None:
        if dispatch.queue:
            scenario_id, repeat = dispatch.queue.popleft()
            in_flight.add((scenario_id, repeat))
            sent_at[(scenario_id, repeat)] = time.perf_counter()
            stdin.write((json.dumps({"scenario_id": scenario_id, "repeat": repeat}) + "\n").encode())
        elif not stdin.is_closing():
            stdin.close()  # nothing left to hand out: the worker finishes and exits

    for _ in range(slots):
        send_next()
    while in_flight:
        try:
            line = await stdout.readline()
            if not line:
                break  # the worker died
            result = ScenarioResult.model_validate_json(line)
        except (ValueError, asyncio.LimitOverrunError):  # an unreadable answer: treat the worker as broken
            proc.kill()
            break
        in_flight.discard((result.scenario_id, result.repeat))
        t0 = sent_at.pop((result.scenario_id, result.repeat), None)
        dispatch.accept(result, line.decode(), None if t0 is None else (t0, time.perf_counter()))
        send_next()
    if not stdin.is_closing():
        stdin.close()
    code = await proc.wait()
    for scenario_id, repeat in sorted(in_flight):
        dispatch.accept(failed_result(library.get(scenario_id), job["model_spec"]["key"], job["run_id"], repeat,
                                      f"the worker process exited (code {code}) before finishing this run"))


async def run_in_workers(plan: RunPlan, spec: ModelSpec, todo: list[tuple[str, int]], workers: int,
                         library: ScenarioLibrary, store: ResultStore,
                         on_result: Callable[[ScenarioResult], None],
                         attach: Attach | None = None) -> list[ScenarioResult]:
    """Run ``todo`` for one model in ``workers`` processes; store and return the results.
    ``attach(result, t0, t1)`` (the runner's telemetry) is called with each result's window."""
    dispatch = _Dispatch(todo, store, on_result, attach)
    slots = max(1, math.ceil(plan.concurrency / workers))
    job = {"model_spec": spec.model_dump(), "run_id": plan.run_id, "scenarios_dirs": plan.scenarios_dirs,
           "tool_options": plan.tool_options, "concurrency": slots}
    procs = [await asyncio.create_subprocess_exec(
        *python_module_argv("agentbench.runner.worker_main"), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, limit=_LINE_LIMIT) for _ in range(workers)]
    try:
        await asyncio.gather(*(_drive(p, job, slots, dispatch, library) for p in procs))
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return dispatch.fresh
