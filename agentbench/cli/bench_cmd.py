"""``agentbench bench``: serving benchmarks with ``vllm bench serve``'s metric definitions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from agentbench.bench.dataset import load_tokenizer
from agentbench.bench.metrics import SLO_METRICS
from agentbench.bench.results import load_bench_result, save_bench_result
from agentbench.bench.run import MAX_CONCURRENCY, LoadConfig, context_pass, load_sweep
from agentbench.cli import common
from agentbench.report.tables import Table
from agentbench.store import results_dir
from agentbench.telemetry.sampler import TelemetrySampler


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what} takes comma-separated integers, got {text!r}") from None
    return values


def _slos(pairs: list[str] | None) -> dict[str, float]:
    slos: dict[str, float] = {}
    for pair in pairs or []:
        name, _, value = pair.partition(":")
        if name not in SLO_METRICS or not value:
            raise typer.BadParameter(f"--goodput takes METRIC:MS with METRIC one of {', '.join(SLO_METRICS)}, "
                                     f"got {pair!r}")
        try:
            slos[name] = float(value)
        except ValueError:
            raise typer.BadParameter(f"--goodput {pair!r}: {value!r} is not a number of milliseconds") from None
    return slos


def load_table(points: list[dict[str, Any]]) -> Table:
    """The load sweep as a table (one row per point)."""
    table = Table("Load sweep (vllm bench serve definitions; ms)",
                  ["conc.", "rate", "ok/fail", "req/s", "out tok/s", "goodput", "TTFT mean", "TTFT p99",
                   "TPOT mean", "TPOT p99", "ITL mean", "E2EL p99", "peak GB", "J/tok"])
    for p in points:
        m = p["metrics"]
        tel = (p.get("telemetry") or {}).get("summary", {})
        table.rows.append([
            str(p["concurrency"] or "-"), str(p["request_rate"] or "inf"), f"{m['completed']}/{m['failed']}",
            f"{m['request_throughput']:.2f}", f"{m['output_throughput']:.1f}",
            "-" if m["request_goodput"] is None else f"{m['request_goodput']:.2f}",
            f"{m['ttft_ms']['mean']:.1f}", f"{m['ttft_ms']['percentiles'].get('p99', 0):.1f}",
            f"{m['tpot_ms']['mean']:.2f}", f"{m['tpot_ms']['percentiles'].get('p99', 0):.2f}",
            f"{m['itl_ms']['mean']:.2f}", f"{m['e2el_ms']['percentiles'].get('p99', 0):.1f}",
            "-" if tel.get("peak_memory_gb") is None else f"{tel['peak_memory_gb']:.1f}",
            "-" if tel.get("joules_per_output_token") is None else f"{tel['joules_per_output_token']:.2f}",
        ])
    return table


def context_table(rows: list[dict[str, Any]]) -> Table:
    """Memory vs context length as a table."""
    table = Table("Memory vs context length", ["context", "TTFT ms", "TPOT ms", "peak GB", "peak KV %", "failed"])
    for r in rows:
        kv = r.get("peak_kv_cache_usage")
        table.rows.append([str(r["context_len"]), f"{r['mean_ttft_ms']:.1f}", f"{r['mean_tpot_ms']:.2f}",
                           "-" if r.get("peak_memory_gb") is None else f"{r['peak_memory_gb']:.1f}",
                           "-" if kv is None else f"{100 * kv:.1f}", str(r["failed"])])
    return table


def bench_command(
    key: Annotated[str | None, typer.Argument(help="Registry model to serve and bench (needs agentbench's server "
                                              "support); or give --base-url.", show_default=False)] = None,
    base_url: common.BaseUrlOption = None,
    model_name: common.ModelNameOption = None,
    tokenizer: Annotated[Path | None, typer.Option(help="The served model's tokenizer (a model folder): prompts "
                                                   "exactly as vllm bench serve builds them. Without it: "
                                                   "word prompts with min_tokens=max_tokens.")] = None,
    endpoint: Annotated[str, typer.Option(help="/v1/completions (vllm bench serve's default) or "
                                          "/v1/chat/completions.")] = "/v1/completions",
    concurrency: Annotated[str, typer.Option(help="Concurrency levels, comma-separated (1..256).")] = "1,2,4,8,16",
    request_rate: Annotated[str, typer.Option(help="Poisson request rates (req/s), comma-separated; "
                                              "none by default.")] = "",
    burstiness: Annotated[float, typer.Option(help="Gamma shape of the arrival gaps (1: Poisson).")] = 1.0,
    input_len: Annotated[int, typer.Option(min=1, help="Prompt tokens.")] = 1024,
    output_len: Annotated[int, typer.Option(min=1, help="Output tokens.")] = 128,
    num_prompts: Annotated[int | None, typer.Option(min=1, help="Prompts per point (default 4 x concurrency, "
                                                    "at least 16).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the prompts and arrival times.")] = 0,
    ignore_eos: Annotated[bool, typer.Option(help="Ask the server to ignore EOS (fixed output lengths).")] = True,
    goodput: Annotated[list[str] | None, typer.Option(help="SLO as METRIC:MS (ttft, tpot, e2el); repeatable.")]
    = None,
    context: Annotated[bool, typer.Option(help="Also measure memory and TTFT vs context length.")] = False,
    max_model_len: Annotated[int, typer.Option(help="The server's max model length (caps the context pass).")]
    = 8192,
    telemetry_interval: Annotated[float, typer.Option(help="Telemetry sampling period in seconds.")] = 0.1,
    json_output: common.JsonOption = False,
    results: common.ResultsDirOption = None,
) -> None:
    """Benchmark a served model: a concurrency / request-rate sweep, optionally memory vs context length."""
    if key is not None and not base_url:
        raise typer.BadParameter("serving a registry model from `agentbench bench` is not available yet; start it "
                                 "with `agentbench serve` (or vLLM) and pass --base-url and --model-name")
    if not (base_url and model_name):
        raise typer.BadParameter("give --base-url and --model-name (the served model's name)")
    if endpoint not in ("/v1/completions", "/v1/chat/completions"):
        raise typer.BadParameter(f"--endpoint must be /v1/completions or /v1/chat/completions, not {endpoint!r}")
    levels = _ints(concurrency, "--concurrency")
    bad = [c for c in levels if not 1 <= c <= MAX_CONCURRENCY]
    if bad:
        raise typer.BadParameter(f"--concurrency values must be within 1..{MAX_CONCURRENCY}, got {bad}")
    try:
        rates = [float(r) for r in request_rate.split(",") if r.strip()]
    except ValueError:
        raise typer.BadParameter(f"--request-rate takes comma-separated numbers, got {request_rate!r}") from None
    cfg = LoadConfig(base_url=base_url, model=model_name, endpoint=endpoint, input_len=input_len,
                     output_len=output_len, num_prompts=num_prompts, seed=seed, burstiness=burstiness,
                     ignore_eos=ignore_eos, slos_ms=_slos(goodput))
    tok = load_tokenizer(tokenizer) if tokenizer else None

    async def go() -> dict[str, Any]:
        with TelemetrySampler(interval_s=telemetry_interval, metrics_url=base_url) as sampler:
            points = await load_sweep(cfg, concurrencies=levels, request_rates=rates, tokenizer=tok, sampler=sampler)
            rows = await context_pass(cfg, max_model_len=max_model_len, tokenizer=tok, sampler=sampler) \
                if context else []
        return {"points": points, "context": rows, "gpu_available": sampler.gpu_available,
                "telemetry_reason": sampler.reason}

    outcome = asyncio.run(go())
    record = {"model": model_name, "kind": "load", "config": {**cfg.__dict__, "tokenizer": str(tokenizer or ""),
                                                              "prompts": "vllm-random" if tok else "text-fallback"},
              **outcome}
    path = save_bench_result(results_dir(results), record)
    if json_output:
        common.print_json({**load_bench_result(path), "path": str(path)})
        return
    common.print_table(load_table(outcome["points"]))
    if outcome["context"]:
        common.print_table(context_table(outcome["context"]))
    if not outcome["gpu_available"]:
        common.out.print(f"GPU telemetry unavailable: {outcome['telemetry_reason']}")
    common.out.print(f"Stored: {path}")
