"""One ``agentbench bench`` run: a load sweep over concurrency and request rates, a memory-vs-context
pass, each point with the GPU/server telemetry of its window. The results are plain dicts ready for
:mod:`agentbench.bench.results`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agentbench.bench.client import BenchRequest, run_load
from agentbench.bench.dataset import random_requests
from agentbench.bench.metrics import compute_metrics
from agentbench.telemetry.sampler import TelemetrySampler

__all__ = ["CONTEXT_LENGTHS", "DEFAULT_CONCURRENCIES", "LoadConfig", "bench_point", "context_pass", "load_sweep"]

DEFAULT_CONCURRENCIES = (1, 2, 4, 8, 16)
CONTEXT_LENGTHS = (1024, 4096, 8192, 16384, 32768, 65536)
MAX_CONCURRENCY = 256


@dataclass
class LoadConfig:
    """What to send and where: the server, the workload and the SLOs for goodput."""

    base_url: str  # the server's OpenAI root, e.g. http://127.0.0.1:8000/v1
    model: str  # the served model name
    endpoint: str = "/v1/completions"  # vLLM bench serve's default; or /v1/chat/completions
    input_len: int = 1024
    output_len: int = 128
    num_prompts: int | None = None  # None: 4 x concurrency, at least 16
    range_ratio: float = 0.0
    seed: int = 0
    burstiness: float = 1.0
    ignore_eos: bool = True
    slos_ms: dict[str, float] = field(default_factory=dict)
    percentiles: tuple[float, ...] = (50, 90, 99)
    metrics: bool = True  # scrape the server's /metrics during the run (telemetry's server part)
    warmups: int | None = None  # untimed requests before each point; None: one batch (the point's concurrency)
    trust_env: bool | None = None  # aiohttp's proxy/netrc lookups: None only when configured, True as vLLM's client

    @property
    def url(self) -> str:
        """The full URL requests go to."""
        root = self.base_url.rstrip("/").removesuffix("/v1")
        return root + self.endpoint

    def prompts_for(self, concurrency: int | None) -> int:
        """How many prompts a point at ``concurrency`` sends."""
        if self.num_prompts is not None:
            return self.num_prompts
        return max(16, 4 * (concurrency or 16))

    @property
    def metrics_url(self) -> str | None:
        """What the telemetry sampler scrapes: the server, unless ``metrics`` is off."""
        return self.base_url if self.metrics else None

    def warmups_for(self, concurrency: int | None) -> int:
        """How many untimed warm-up requests go before a point at ``concurrency`` (None: a request-rate
        point, warmed with 16): one full batch unless set, so the point never pays a first-batch compile."""
        if self.warmups is not None:
            return self.warmups
        return concurrency or 16


async def bench_point(cfg: LoadConfig, requests: Sequence[BenchRequest], *, concurrency: int | None,
                      request_rate: float = float("inf"), sampler: TelemetrySampler | None = None) -> dict[str, Any]:
    """Run one load point and return its parameters, metrics and telemetry window."""
    if concurrency is not None and not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be within 1..{MAX_CONCURRENCY}, got {concurrency}")
    load = await run_load(cfg.url, cfg.model, requests, max_concurrency=concurrency, request_rate=request_rate,
                          burstiness=cfg.burstiness, seed=cfg.seed, ignore_eos=cfg.ignore_eos,
                          warmups=cfg.warmups_for(concurrency), trust_env=cfg.trust_env)
    t1 = time.perf_counter()
    metrics = compute_metrics(load.outputs, load.duration_s, percentiles=cfg.percentiles, slos_ms=cfg.slos_ms)
    point: dict[str, Any] = {
        "concurrency": concurrency, "request_rate": None if request_rate == float("inf") else request_rate,
        "num_prompts": len(requests), "metrics": metrics.to_dict(),
    }
    if sampler is not None:  # the timed part only: the test request and warm-ups are not the point's energy
        point["telemetry"] = sampler.record(load.started_at, t1, output_tokens=metrics.total_output, keep_samples=True)
    return point


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


async def load_sweep(cfg: LoadConfig, *, concurrencies: Sequence[int] = DEFAULT_CONCURRENCIES,
                     request_rates: Sequence[float] = (), tokenizer: Any = None,
                     sampler: TelemetrySampler | None = None,
                     into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """A point per concurrency (all requests at once, capped by the semaphore) and per request rate
    (gamma arrivals, no cap). Prompts are built once per size so every point sees the same workload.

    A point that fails (e.g. its test request is refused) is recorded with ``error`` and the sweep goes
    on. Points are appended to ``into`` (returned) as they finish, so a caller keeps the finished ones
    when the sweep is interrupted."""
    points = [] if into is None else into
    for c, rate in [(c, float("inf")) for c in concurrencies] + [(None, r) for r in request_rates]:
        reqs = random_requests(cfg.prompts_for(c), cfg.input_len, cfg.output_len, tokenizer=tokenizer,
                               range_ratio=cfg.range_ratio, seed=cfg.seed)
        try:
            points.append(await bench_point(cfg, reqs, concurrency=c, request_rate=rate, sampler=sampler))
        except Exception as exc:
            points.append({"concurrency": c, "request_rate": None if rate == float("inf") else rate,
                           "num_prompts": len(reqs), "error": _error(exc)})
    return points


async def context_pass(cfg: LoadConfig, *, max_model_len: int, lengths: Sequence[int] = CONTEXT_LENGTHS,
                       tokenizer: Any = None, sampler: TelemetrySampler | None = None,
                       prompts: int = 2, into: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Memory vs context length: for each length that fits ``max_model_len`` (prompt + output),
    ``prompts`` requests one at a time; records TTFT, peak GPU memory and peak KV-cache usage.
    Errors and ``into`` as in :func:`load_sweep`."""
    rows = [] if into is None else into
    for length in lengths:
        input_len = length - cfg.output_len
        if length > max_model_len or input_len < 1:
            continue
        reqs = random_requests(prompts, input_len, cfg.output_len, tokenizer=tokenizer, seed=cfg.seed)
        try:
            point = await bench_point(cfg, reqs, concurrency=1, sampler=sampler)
        except Exception as exc:
            rows.append({"context_len": length, "input_len": input_len, "error": _error(exc)})
            continue
        summary = (point.get("telemetry") or {}).get("summary", {})
        rows.append({
            "context_len": length, "input_len": input_len,
            "mean_ttft_ms": point["metrics"]["ttft_ms"]["mean"],
            "mean_tpot_ms": point["metrics"]["tpot_ms"]["mean"],
            "failed": point["metrics"]["failed"],
            "peak_memory_gb": summary.get("peak_memory_gb"),
            "peak_kv_cache_usage": summary.get("peak_kv_cache_usage"),
        })
    return rows


def run_sync(coro: Any) -> Any:
    """Run a coroutine from synchronous code (the CLI)."""
    return asyncio.run(coro)


def config_dict(cfg: LoadConfig) -> dict[str, Any]:
    """The config as stored with a result."""
    return asdict(cfg)
