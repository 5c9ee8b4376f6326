"""``agentbench bench KEY --sweep``: restart the server over a grid of serving settings, bench each,
and recommend the setting with the best goodput under the stated SLO.

The server is reached through a factory (``settings -> async context manager yielding
(base_url, model)``) so the grid and recommendation logic does not depend on how the server is
started; the CLI passes :func:`agentbench.bench.served.server_factory` (the real vLLM server
lifecycle of :mod:`agentbench.serving`), tests may pass a fake.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

__all__ = ["SWEEP_AXES", "recommend", "run_settings_sweep", "settings_grid"]

# setting -> vLLM flag it maps to (values: None = leave the flag out)
SWEEP_AXES: Mapping[str, str] = {
    "max_num_seqs": "--max-num-seqs",
    "gpu_memory_utilization": "--gpu-memory-utilization",
    "kv_cache_dtype": "--kv-cache-dtype",
    "enforce_eager": "--enforce-eager",
    "max_model_len": "--max-model-len",
}

ServerFactory = Callable[[dict[str, Any]], AbstractAsyncContextManager[tuple[str, str]]]
BenchFn = Callable[[str, str], Awaitable[dict[str, Any]]]


def settings_grid(axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the given values (the cartesian product, in the given order)."""
    unknown = set(axes) - set(SWEEP_AXES)
    if unknown:
        raise ValueError(f"unknown sweep setting(s) {sorted(unknown)}; known: {', '.join(SWEEP_AXES)}")
    empty = [k for k, v in axes.items() if not v]
    if empty:
        raise ValueError(f"sweep setting(s) {empty} have no values")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(axes[k] for k in keys))]


def vllm_flags(settings: Mapping[str, Any]) -> list[str]:
    """The vLLM command-line flags for one setting of the grid."""
    flags: list[str] = []
    for key, value in settings.items():
        if value is None or value is False:
            continue
        flags += [SWEEP_AXES[key]] if value is True else [SWEEP_AXES[key], str(value)]
    return flags


async def run_settings_sweep(grid: Sequence[dict[str, Any]], server_factory: ServerFactory,
                             bench: BenchFn, *, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """For each setting: start a server, run ``bench(base_url, model)`` (a load point's dict with
    ``metrics``), stop it. A setting whose server fails to start is recorded with its error. Rows are
    appended to ``into`` (returned) as they finish, so an interrupted sweep keeps the finished ones."""
    rows = [] if into is None else into
    for settings in grid:
        try:
            async with server_factory(dict(settings)) as (base_url, model):
                point = await bench(base_url, model)
            rows.append({"settings": dict(settings), **point})
        except Exception as exc:
            rows.append({"settings": dict(settings), "error": f"{type(exc).__name__}: {exc}"})
    return rows


def recommend(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The row with the highest goodput (requests/s meeting the SLO); output tok/s breaks ties.
    Rows with errors, failed requests or no goodput (no SLO given) are not eligible."""
    eligible = [r for r in rows if "error" not in r and r["metrics"].get("request_goodput") is not None
                and not r["metrics"].get("failed")]
    if not eligible:
        return None
    return max(eligible, key=lambda r: (r["metrics"]["request_goodput"], r["metrics"]["output_throughput"]))
