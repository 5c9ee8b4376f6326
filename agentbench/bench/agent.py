"""The agent workload bench: a scenario suite at concurrency N through the ordinary runner
(:func:`agentbench.runner.suite.execute_plan`, so every scenario run is stored and graded like any
run), with one telemetry sampler over the whole suite.

Reported (``kind: agent`` bench result, ``agent`` block): scenario runs per second and per minute,
latency percentiles per scenario run (its ``wall_s``) and per model call (``latency_s``, and TTFT
where the backend streams), output tokens per second (``usage`` summed over every model call, divided
by the suite's wall time: the figure the seed's "> 50 tokens/s for agent workloads" is checked on),
and the GPU/server telemetry summary of the whole window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentbench.bench.metrics import LatencyStats
from agentbench.models.registry import ModelSpec
from agentbench.report.tables import Table
from agentbench.runner.records import ScenarioResult
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.scenario.schema import Scenario
from agentbench.store import ResultStore
from agentbench.telemetry.sampler import TelemetrySampler

__all__ = ["agent_bench", "agent_metrics", "agent_table"]

PERCENTILES = (50, 90, 99)


def agent_metrics(results: Sequence[ScenarioResult], duration_s: float) -> dict[str, Any]:
    """The agent block of a result from the suite's scenario results and its wall time."""
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    calls = [c for r in results for c in r.model_calls]
    output = [r.tokens("output") for r in results]
    known = [n for n in output if n is not None]
    total_output = sum(known) if known else None
    ttfts = [c.ttft_s for c in calls if c.ttft_s is not None]
    return {
        "scenario_runs": len(results),
        "passed": sum(r.passed for r in results),
        "errors": sum(r.outcome in ("error", "endpoint_error") for r in results),
        "duration_s": duration_s,
        "scenario_runs_per_s": len(results) / duration_s,
        "scenario_runs_per_min": 60 * len(results) / duration_s,
        "model_calls": len(calls),
        "model_calls_per_s": len(calls) / duration_s,
        "output_tokens": total_output,
        # None (not 0) when no backend reported usage: the criterion is then "not measured"
        "output_tokens_per_s": None if total_output is None else total_output / duration_s,
        "scenario_latency_ms": LatencyStats.of([r.wall_s for r in results], PERCENTILES).__dict__,
        "model_call_latency_ms": LatencyStats.of([c.latency_s for c in calls], PERCENTILES).__dict__,
        "model_call_ttft_ms": LatencyStats.of(ttfts, PERCENTILES).__dict__ if ttfts else None,
    }


async def agent_bench(spec: ModelSpec, scenarios: Sequence[Scenario], library: ScenarioLibrary, *,
                      results_root: Path, concurrency: int = 8, repeats: int = 1, workers: int | None = None,
                      telemetry_interval_s: float = 0.1, selection: str = "",
                      tool_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``scenarios`` x ``repeats`` on ``spec`` (already reachable: a reference model, or an
    endpoint with a ``base_url``) at ``concurrency``; return the ``kind: agent`` bench record (not
    yet stored). The scenario runs are stored as run ``record['run_id']`` in the same results folder."""
    if not scenarios:
        raise ValueError("the agent bench needs at least one scenario")
    store = ResultStore(results_root)
    plan = make_plan([spec], scenarios, repeats=repeats, concurrency=concurrency, workers=workers,
                     selection=selection or "agent bench", tool_options=tool_options)
    store.create_run(plan)
    metrics_url = spec.base_url if spec.backend in ("vllm", "openai") and spec.base_url else None
    with TelemetrySampler(interval_s=telemetry_interval_s, metrics_url=metrics_url) as sampler:
        t0 = time.perf_counter()
        await execute_plan(plan, library, store, sampler=sampler)  # one sampler: the scenarios' windows too
        t1 = time.perf_counter()
    results = list(store.results(plan.run_id))
    agent = agent_metrics(results, t1 - t0)
    return {
        "model": spec.key, "kind": "agent", "run_id": plan.run_id,
        "config": {"concurrency": concurrency, "repeats": repeats, "workers": plan.workers,
                   "scenarios": [s.id for s in scenarios], "selection": plan.selection},
        "agent": agent,
        "telemetry": sampler.record(t0, t1 + sampler.interval_s, output_tokens=agent["output_tokens"],
                                    keep_samples=True),  # the suite's one window: joules per token hold
        "gpu_available": sampler.gpu_available, "telemetry_reason": sampler.reason,
    }


def _ms(stats: dict[str, Any] | None, key: str) -> str:
    if not stats:
        return "-"
    value = stats["percentiles"].get(key) if key.startswith("p") else stats.get(key)
    return "-" if value is None else f"{value:.0f}"


def agent_table(record: dict[str, Any]) -> Table:
    """An agent bench result as a table (one row; latencies in ms)."""
    a = record["agent"]
    cfg = record.get("config", {})
    summary = (record.get("telemetry") or {}).get("summary") or {}
    table = Table("Agent workload (scenario suite through the runner; ms)",
                  ["conc.", "runs ok/all", "runs/min", "calls/s", "out tok/s", "run p50", "run p90", "run p99",
                   "call p50", "call p99", "TTFT p50", "device GB", "J/tok"])
    rate = a.get("output_tokens_per_s")
    table.rows.append([
        str(cfg.get("concurrency", "-")), f"{a['passed']}/{a['scenario_runs']}", f"{a['scenario_runs_per_min']:.1f}",
        f"{a['model_calls_per_s']:.2f}", "-" if rate is None else f"{rate:.1f}",
        _ms(a["scenario_latency_ms"], "p50"), _ms(a["scenario_latency_ms"], "p90"),
        _ms(a["scenario_latency_ms"], "p99"), _ms(a["model_call_latency_ms"], "p50"),
        _ms(a["model_call_latency_ms"], "p99"), _ms(a.get("model_call_ttft_ms"), "p50"),
        "-" if summary.get("peak_memory_gb") is None else f"{summary['peak_memory_gb']:.1f}",
        "-" if summary.get("joules_per_output_token") is None else f"{summary['joules_per_output_token']:.2f}",
    ])
    table.note = (f"run {record.get('run_id')}: {len(cfg.get('scenarios', []))} scenarios x "
                  f"{cfg.get('repeats', 1)} repeats; output tokens from the servers' usage")
    return table
