"""The seed's two performance criteria, checked per model from stored bench results:
GPU memory under 70 GB for the largest model, and over 50 output tokens/s on agent workloads.

**Memory is what the model needs, not what vLLM reserves.** vLLM takes ``gpu_memory_utilization`` x the
GPU's memory at start-up whatever the model needs (an 8B model at 0.90 on an H200 shows ~130 GB in use),
so the device-wide reading says nothing about the criterion. The figure checked is::

    model memory = weights + CUDA graphs + peak KV-cache usage x KV-cache size

with the weights (``Model loading took X GiB``), the CUDA-graph pool (``Graph capturing finished ...
took X GiB``; absent with ``--enforce-eager``) and the KV-cache size (``Available KV cache memory: X
GiB``) read from the server's startup log, and the peak of ``vllm:kv_cache_usage_perc`` (0..1) sampled
from ``/metrics`` during the bench: the KV cache that workload actually used. Peak activation and
non-torch memory (vLLM logs neither at INFO) are not included. Reported in GB (10^9 bytes).

Only ``agentbench bench KEY`` results (load or agent) carry the startup figures; a bench of a server
given with ``--base-url`` measures no model memory. Both criteria use the same selection rule: the
latest stored result of the model that measured the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentbench.bench.results import list_bench_results

__all__ = ["AGENT_TOKENS_PER_S_MIN", "MEMORY_GB_MAX", "model_memory", "perf_criteria"]

MEMORY_GB_MAX = 70.0
AGENT_TOKENS_PER_S_MIN = 50.0
GIB = 1 << 30


def _peak_kv_usage(record: dict[str, Any]) -> float | None:
    """The highest ``vllm:kv_cache_usage_perc`` sampled anywhere in the result (points, context rows,
    the agent suite's window)."""
    values = []
    for point in record.get("points") or []:
        values.append(((point.get("telemetry") or {}).get("summary") or {}).get("peak_kv_cache_usage"))
    for row in record.get("context") or []:
        values.append(row.get("peak_kv_cache_usage"))
    values.append(((record.get("telemetry") or {}).get("summary") or {}).get("peak_kv_cache_usage"))
    known = [float(v) for v in values if v is not None]
    return max(known) if known else None


def model_memory(record: dict[str, Any]) -> dict[str, Any] | None:
    """The model's memory need measured by one stored bench result (see the module docstring), with its
    parts in GiB: ``{"gb", "weights_gib", "cuda_graphs_gib", "kv_cache_gib", "peak_kv_cache_usage",
    "kv_used_gib"}``; ``None`` when the result lacks the startup figures or the KV-cache usage."""
    if record.get("kind") not in ("load", "agent"):
        return None  # a settings sweep measures other settings than the model's own
    startup = (record.get("server") or {}).get("startup") or {}
    weights, kv_size = startup.get("weights_gib"), startup.get("available_kv_cache_gib")
    usage = _peak_kv_usage(record)
    if weights is None or kv_size is None or usage is None:
        return None
    graphs = float(startup.get("graph_capture_gib") or 0.0)
    kv_used = usage * float(kv_size)
    total_gib = float(weights) + graphs + kv_used
    return {"gb": total_gib * GIB / 1e9, "weights_gib": float(weights), "cuda_graphs_gib": graphs,
            "kv_cache_gib": float(kv_size), "peak_kv_cache_usage": usage, "kv_used_gib": kv_used}


def _latest_memory(results: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    for record in reversed(results):  # oldest first: the latest that measured it
        if (memory := model_memory(record)) is not None:
            return memory, record
    return None


def _latest_agent_rate(results: Sequence[dict[str, Any]]) -> tuple[float, dict[str, Any]] | None:
    for record in reversed(results):
        rate = (record.get("agent") or {}).get("output_tokens_per_s") if record.get("kind") == "agent" else None
        if rate is not None:
            return float(rate), record
    return None


def perf_criteria(results_root: Path, model: str) -> list[dict[str, Any]]:
    """The two criteria for ``model``: name, threshold, measured value (None when no stored result
    measured it), ``passed`` (None when unmeasured), the ``bench_id`` it came from and a ``detail``
    line saying what was measured."""
    results = list_bench_results(results_root, model)
    memory = _latest_memory(results)
    rate = _latest_agent_rate(results)
    mem_detail = "needs `agentbench bench KEY` (startup figures) with /metrics (KV-cache usage)"
    if memory is not None:
        m = memory[0]
        mem_detail = (f"weights {m['weights_gib']:.2f} GiB + CUDA graphs {m['cuda_graphs_gib']:.2f} GiB + "
                      f"KV used {100 * m['peak_kv_cache_usage']:.1f}% of {m['kv_cache_gib']:.2f} GiB")
    return [
        {"criterion": "model GPU memory under 70 GB", "threshold": MEMORY_GB_MAX, "unit": "GB",
         "measured": None if memory is None else memory[0]["gb"],
         "passed": None if memory is None else memory[0]["gb"] < MEMORY_GB_MAX,
         "bench_id": None if memory is None else memory[1].get("bench_id"), "detail": mem_detail},
        {"criterion": "agent workload over 50 output tokens/s", "threshold": AGENT_TOKENS_PER_S_MIN,
         "unit": "tokens/s", "measured": None if rate is None else rate[0],
         "passed": None if rate is None else rate[0] > AGENT_TOKENS_PER_S_MIN,
         "bench_id": None if rate is None else rate[1].get("bench_id"),
         "detail": "output tokens (usage) / suite wall time, latest agent bench"},
    ]
