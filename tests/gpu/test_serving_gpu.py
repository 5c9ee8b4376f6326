"""The server lifecycle and model switching on a real GPU with real vLLM (synthetic, dummy-weight models).

Skipped without nvidia-smi and vLLM (tests/gpu/conftest.py). vLLM may live in another environment:
set AGENTBENCH_VLLM_ENV (e.g. "PYTHONPATH=/tmp/site VLLM_USE_FLASHINFER_SAMPLER=0") and, if needed,
AGENTBENCH_VLLM_COMMAND. With AGENTBENCH_GPU_OUT set, logs and JSON results are written there
(scripts/gpu/serving_checks.sh does this). Each test is self-contained; asyncio.run keeps them free
of pytest plugins.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentbench.models.registry import load_registry, resolve_model
from agentbench.serving.launch import LaunchOptions
from agentbench.serving.server import VLLMServer
from agentbench.serving.switching import ModelSwitcher

pytestmark = pytest.mark.gpu

MODEL_A, MODEL_B = "llama31-8b", "qwen3-8b"


def _out(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("AGENTBENCH_GPU_OUT") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _save(folder: Path, name: str, data: dict[str, Any]) -> None:
    (folder / name).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")


def _options(**overrides: Any) -> LaunchOptions:
    return LaunchOptions(synthetic=True, max_model_len=8192, **overrides)


def test_synthetic_llama_starts_reports_its_figures_and_releases_memory(tmp_path: Path) -> None:
    out = _out(tmp_path)
    spec = resolve_model(MODEL_A, load_registry())
    server = VLLMServer(spec, _options(gpu_memory_utilization=0.85), log_dir=out, on_phase=print)

    async def run() -> None:
        async with server:
            reply = httpx.post(f"{server.base_url}/chat/completions", timeout=60, json={
                "model": spec.model_name or spec.key, "messages": [{"role": "user", "content": "hi"}],
                "max_tokens": 8})
            assert reply.status_code == 200, reply.text

    asyncio.run(run())
    _save(out, "serve-llama.json", server.describe())
    f = server.startup
    assert f.weights_gib is not None and 14.0 < f.weights_gib < 16.5  # 8.03 B params in bf16
    assert f.kv_cache_tokens is not None and f.kv_cache_tokens > 100_000
    assert f.max_concurrency_tokens == 8192 and f.max_concurrency is not None and f.max_concurrency > 10
    assert f.init_engine_s is not None and f.ready_s is not None and f.ready_s >= f.init_engine_s
    stop = server.last_stop
    assert stop is not None and stop.group_exited and stop.memory_released is True, stop


def _stops(switcher: ModelSwitcher) -> list[dict[str, Any]]:
    """The stop reports of every server the switcher ran."""
    return [s["stop"] for s in switcher.to_dict()["servers"] if "stop" in s]


def _all_clean(stops: list[dict[str, Any]]) -> bool:
    """Whether every stop left nothing behind: the whole group gone and the GPU memory given back."""
    return all(s["group_exited"] and s["memory_released"] is True for s in stops)


async def _raw_switch(leave: VLLMServer, enter: VLLMServer) -> float:
    """Sleep one server and wake the other with plain HTTP POSTs (no checks): vLLM's own cost."""
    async with httpx.AsyncClient(timeout=600) as client:
        start = time.perf_counter()
        (await client.post(f"{leave.root_url}/sleep", params={"level": "1"})).raise_for_status()
        (await client.post(f"{enter.root_url}/wake_up")).raise_for_status()
        return time.perf_counter() - start


def test_switch_sleep_wake_versus_raw_posts(tmp_path: Path) -> None:
    """Two resident 8B models: agentbench's warm switch (sleep one, wake the other, with its checks) against
    the same two POSTs sent bare, in the same run; the two cold starts are recorded beside them."""
    out = _out(tmp_path)
    registry = load_registry()
    a, b = resolve_model(MODEL_A, registry), resolve_model(MODEL_B, registry)
    result: dict[str, Any] = {"models": [MODEL_A, MODEL_B]}

    async def run() -> ModelSwitcher:
        sleepy = ModelSwitcher("sleep", _options(), log_dir=out / "sleep", record_path=out / "switch-sleep.json",
                               expected_models=2, on_phase=lambda key, line: print(key, line))
        try:
            for spec in (a, b, a, b):  # two cold starts, then the first sleeps of each (slow: weights to CPU)
                await sleepy.switch_to(spec)
            warm = []
            for spec in (a, b, a, b):
                await sleepy.switch_to(spec)
                warm.append(sleepy.records[-1].total_s)
            server_a, server_b = sleepy.servers[MODEL_A], sleepy.servers[MODEL_B]
            raw = [await _raw_switch(server_b, server_a), await _raw_switch(server_a, server_b),
                   await _raw_switch(server_b, server_a), await _raw_switch(server_a, server_b)]
            result["sleep"] = {"agentbench_switch_s": warm, "raw_sleep_wake_s": raw,
                               "ratio_median": statistics.median(warm) / statistics.median(raw),
                               "cold_start_s": {r.to_model: r.start_s for r in sleepy.records if r.start_s},
                               "records": [r.to_dict() for r in sleepy.records]}
        finally:
            await sleepy.close()
        return sleepy

    sleepy = asyncio.run(run())
    result["stops"] = _stops(sleepy)
    _save(out, "switch-summary.json", result)
    print(json.dumps(result, indent=2, default=str))
    assert len(result["stops"]) == 2 and _all_clean(result["stops"]), result["stops"]
    assert max(result["sleep"]["agentbench_switch_s"]) < 10  # warm switches take about a second on an H200
    assert result["sleep"]["ratio_median"] <= 1.2  # agentbench's checks add little to vLLM's own sleep + wake


def test_restart_switch_stops_releases_and_cold_starts_the_next(tmp_path: Path) -> None:
    """``--switch restart``: the first model's server is stopped (whole group gone, the memory it added given
    back) before the second one starts cold. Eager mode keeps two starts inside one 10-minute device call; the
    cold start with torch.compile and CUDA graphs is what the sleep/wake test records for its first starts."""
    out = _out(tmp_path)
    registry = load_registry()
    a, b = resolve_model(MODEL_A, registry), resolve_model(MODEL_B, registry)

    async def run() -> ModelSwitcher:
        restart = ModelSwitcher("restart", _options(gpu_memory_utilization=0.85, enforce_eager=True),
                                log_dir=out / "restart", record_path=out / "switch-restart.json",
                                on_phase=lambda key, line: print(key, line))
        try:
            await restart.switch_to(a)
            await restart.switch_to(b)
        finally:
            await restart.close()
        return restart

    restart = asyncio.run(run())
    first, second = restart.records
    summary = {"records": [r.to_dict() for r in restart.records],
               "cold_restart_s": second.total_s, "stop_s": second.stop_s,
               "memory_release_s": second.memory_release_s, "start_s": second.start_s}
    _save(out, "restart-summary.json", summary)
    print(json.dumps(summary, indent=2))
    assert (first.how, second.how) == ("cold start", "cold start") and second.from_models == [MODEL_A]
    assert second.memory_released is True and second.stop_s is not None and second.stop_s < 60
    assert second.start_s is not None and second.total_s >= second.start_s + second.stop_s
    stops = _stops(restart)
    assert len(stops) == 2 and _all_clean(stops), stops
