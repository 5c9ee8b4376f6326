"""Running a plan: models one at a time, each model's scenario runs concurrently, every result
stored the moment it is graded. A resumed run skips what the store already holds."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from agentbench import __version__
from agentbench.errors import EndpointError
from agentbench.grading.drift import scenario_hash
from agentbench.models.backends import Backend, make_backend
from agentbench.models.registry import ModelSpec
from agentbench.runner.execute import failed_result, run_scenario
from agentbench.runner.records import ScenarioResult
from agentbench.runner.workers import auto_workers, run_in_workers
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.scenario.schema import Scenario
from agentbench.store import ResultStore, RunPlan, new_run_id, now_iso
from agentbench.telemetry.hook import RunTelemetry, safe_attach
from agentbench.telemetry.sampler import TelemetrySampler

OnResult = Callable[[ScenarioResult], None]


def make_plan(models: Sequence[ModelSpec], scenarios: Sequence[Scenario], *, repeats: int = 1,
              concurrency: int = 4, selection: str = "", scenarios_dirs: Sequence[str] = (),
              models_file: str | None = None, run_id: str | None = None,
              tool_options: dict[str, Any] | None = None, workers: int | None = None) -> RunPlan:
    """A new run's plan: which models, scenarios and repeats, with the settings to store."""
    return RunPlan(
        run_id=run_id or new_run_id(), created_at=now_iso(), models=[m.key for m in models],
        model_specs={m.key: m.model_dump(exclude_none=True) for m in models},
        scenario_ids=[s.id for s in scenarios], scenario_hashes={s.id: scenario_hash(s) for s in scenarios},
        repeats=repeats, concurrency=concurrency,
        workers=workers or auto_workers(concurrency),
        selection=selection, scenarios_dirs=list(scenarios_dirs), models_file=models_file,
        tool_options=dict(tool_options or {}), agentbench_version=__version__,
    )


async def _start(backend: Backend, plan: RunPlan, key: str, todo: list[tuple[str, int]], library: ScenarioLibrary,
                 store: ResultStore, on_result: OnResult | None) -> list[ScenarioResult] | None:
    """Start ``backend``; if its endpoint cannot start (a vLLM server that exits or never becomes
    healthy), store every scenario of the model as ``endpoint_error`` with the cause and return them:
    the suite goes on with the next model and nothing is silently missing."""
    try:
        await backend.start()
    except EndpointError as exc:
        await backend.stop()
        failed = [failed_result(library.get(s), key, plan.run_id, r, f"the model's endpoint did not start: {exc}")
                  .model_copy(update={"outcome": "endpoint_error"}) for s, r in todo]
        for result in failed:
            store.append(result)
            if on_result is not None:
                on_result(result)
        return failed
    return None


async def _run_model(plan: RunPlan, key: str, todo: list[tuple[str, int]], library: ScenarioLibrary,
                     store: ResultStore, on_result: OnResult | None,
                     sampler: TelemetrySampler | None = None) -> list[ScenarioResult]:
    """One model's share of a run: start its backend, run its scenarios concurrently, stop it.
    Telemetry is set up once the backend has started (the server's address is known then)."""
    backend = make_backend(ModelSpec.model_validate(plan.model_specs[key]))
    if (unstarted := await _start(backend, plan, key, todo, library, store, on_result)) is not None:
        return unstarted
    try:
        with RunTelemetry.for_backend(backend, sampler=sampler) as telemetry:
            if plan.workers > 1 and len(todo) > 1:
                # one sampler in this (parent) process; each worker result gets its window's slice
                return await run_in_workers(plan, backend.worker_spec(), todo, min(plan.workers, len(todo)),
                                            library, store, on_result or (lambda _: None), attach=telemetry.attach)
            return await _run_in_process(plan, key, todo, library, store, on_result, backend, telemetry)
    finally:
        await backend.stop()


async def _run_in_process(plan: RunPlan, key: str, todo: list[tuple[str, int]], library: ScenarioLibrary,
                          store: ResultStore, on_result: OnResult | None, backend: Backend,
                          telemetry: RunTelemetry) -> list[ScenarioResult]:
    """A started model's scenarios in this process, ``plan.concurrency`` at a time."""
    gate = asyncio.Semaphore(plan.concurrency)
    fresh: list[ScenarioResult] = []

    async def one(scenario_id: str, repeat: int) -> None:
        scenario = library.get(scenario_id)
        try:
            async with gate:
                t0 = time.perf_counter()
                result = await run_scenario(scenario, backend, run_id=plan.run_id, repeat=repeat,
                                            tool_options=plan.tool_options)
                # the GPU over this scenario's window; never raises
                safe_attach(telemetry.attach, result, t0, time.perf_counter())
        except Exception:  # run_scenario records failures itself; this is the last line of defence
            result = failed_result(scenario, key, plan.run_id, repeat, traceback.format_exc(limit=20))
        store.append(result)  # before anything else can fail: a graded result is never lost
        fresh.append(result)
        if on_result is not None:
            on_result(result)

    await asyncio.gather(*(one(s, r) for s, r in todo))
    return fresh


async def execute_plan(plan: RunPlan, library: ScenarioLibrary, store: ResultStore,
                       on_result: OnResult | None = None,
                       done: set[tuple[str, str, int]] | None = None,
                       sampler: TelemetrySampler | None = None) -> list[ScenarioResult]:
    """Run everything in ``plan`` that the store does not hold yet; return the new results.

    ``done`` is what ``store.recover(plan.run_id)`` returned, when the caller already ran it.
    ``sampler``: a running telemetry sampler to take the scenarios' windows from (the agent bench's,
    so the GPU is sampled once); by default each model gets its own."""
    done = store.recover(plan.run_id) if done is None else done
    fresh: list[ScenarioResult] = []
    for key in plan.models:
        todo = [(s, r) for (m, s, r) in plan.work_items() if m == key and (m, s, r) not in done]
        if todo:
            fresh += await _run_model(plan, key, todo, library, store, on_result, sampler)
    store.finish_run(plan.run_id, "completed")
    return fresh
