"""The seed's two performance criteria, checked per model from stored bench results:
GPU memory under 70 GB for the largest model, and over 50 output tokens/s on agent workloads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentbench.bench.results import list_bench_results

__all__ = ["AGENT_TOKENS_PER_S_MIN", "MEMORY_GB_MAX", "perf_criteria"]

MEMORY_GB_MAX = 70.0
AGENT_TOKENS_PER_S_MIN = 50.0


def _peak_memory_gb(results: Sequence[dict[str, Any]]) -> float | None:
    peaks = []
    for r in results:
        for point in r.get("points", []) + r.get("rows", []):
            value = ((point.get("telemetry") or {}).get("summary") or {}).get("peak_memory_gb")
            if value is None:
                value = point.get("peak_memory_gb")
            if value is not None:
                peaks.append(float(value))
        summary = (r.get("telemetry") or {}).get("summary") or {}
        if summary.get("peak_memory_gb") is not None:
            peaks.append(float(summary["peak_memory_gb"]))
    return max(peaks) if peaks else None


def _agent_tokens_per_s(results: Sequence[dict[str, Any]]) -> float | None:
    values = [float(r["agent"]["output_tokens_per_s"]) for r in results
              if r.get("kind") == "agent" and (r.get("agent") or {}).get("output_tokens_per_s") is not None]
    return values[-1] if values else None  # the latest agent bench


def perf_criteria(results_root: Path, model: str) -> list[dict[str, Any]]:
    """The two criteria for ``model``: name, threshold, measured value (None when nothing stored
    measured it), and ``passed`` (None when unmeasured)."""
    results = list_bench_results(results_root, model)
    memory = _peak_memory_gb(results)
    rate = _agent_tokens_per_s(results)
    return [
        {"criterion": "peak GPU memory under 70 GB", "threshold": MEMORY_GB_MAX, "unit": "GB",
         "measured": memory, "passed": None if memory is None else memory < MEMORY_GB_MAX},
        {"criterion": "agent workload over 50 output tokens/s", "threshold": AGENT_TOKENS_PER_S_MIN,
         "unit": "tokens/s", "measured": rate, "passed": None if rate is None else rate > AGENT_TOKENS_PER_S_MIN},
    ]
