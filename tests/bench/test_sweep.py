"""The serving-settings sweep: grid, flags and recommendation, with a fake server factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agentbench.bench.sweep import recommend, run_settings_sweep, settings_grid, vllm_flags


def test_grid_is_the_cartesian_product_and_rejects_unknown_settings() -> None:
    grid = settings_grid({"max_num_seqs": [64, 256], "kv_cache_dtype": ["auto", "fp8"]})
    assert len(grid) == 4 and {"max_num_seqs": 256, "kv_cache_dtype": "fp8"} in grid
    with pytest.raises(ValueError, match="unknown sweep setting"):
        settings_grid({"tensor_parallel": [1]})
    assert vllm_flags({"enforce_eager": True, "kv_cache_dtype": "fp8", "max_model_len": None}) == [
        "--enforce-eager", "--kv-cache-dtype", "fp8"]


def test_recommends_best_goodput_and_records_failed_starts() -> None:
    started: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def factory(settings: dict[str, Any]) -> AsyncIterator[tuple[str, str]]:
        if settings["gpu_memory_utilization"] == 0.95:
            raise RuntimeError("CUDA out of memory")
        started.append(settings)
        yield f"http://fake/{settings['max_num_seqs']}", "m"

    async def bench(base_url: str, model: str) -> dict[str, Any]:
        seqs = int(base_url.rsplit("/", 1)[1])
        goodput = {64: 3.0, 128: 5.0, 256: 4.0}[seqs]  # goodput drops past 128: the SLO is missed
        return {"metrics": {"request_goodput": goodput, "output_throughput": seqs * 10.0, "failed": 0}}

    grid = settings_grid({"max_num_seqs": [64, 128, 256], "gpu_memory_utilization": [0.9, 0.95]})
    rows = asyncio.run(run_settings_sweep(grid, factory, bench))
    assert len(started) == 3 and sum("error" in r for r in rows) == 3
    best = recommend(rows)
    assert best is not None and best["settings"] == {"max_num_seqs": 128, "gpu_memory_utilization": 0.9}
    assert recommend([r for r in rows if "error" in r]) is None
