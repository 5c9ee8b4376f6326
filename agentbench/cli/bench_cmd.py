"""``agentbench bench``: serving benchmarks with ``vllm bench serve``'s metric definitions."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from agentbench.bench.agent import agent_table
from agentbench.bench.client import resolve_trust_env
from agentbench.bench.dataset import load_tokenizer, random_requests
from agentbench.bench.metrics import SLO_METRICS
from agentbench.bench.report import context_table, load_table, sweep_table
from agentbench.bench.results import bench_dir, list_bench_results, load_bench_result, save_bench_result
from agentbench.bench.run import MAX_CONCURRENCY, LoadConfig, bench_point, context_pass, load_sweep
from agentbench.bench.sweep import SWEEP_AXES, recommend, run_settings_sweep, settings_grid
from agentbench.cli import common
from agentbench.cli.serve_cmd import (
    HealthTimeoutOption,
    SyntheticOption,
    VllmCommandOption,
    VllmEnvOption,
    launch_options,
    phase_printer,
)
from agentbench.cli.termination import as_terminated
from agentbench.errors import ConfigError
from agentbench.models.registry import resolve_model
from agentbench.store import results_dir
from agentbench.telemetry.sampler import TelemetrySampler

# The default --sweep grid: the two settings that change memory and speed the most without a model change.
DEFAULT_SWEEP: dict[str, list[Any]] = {"kv_cache_dtype": ["auto", "fp8"], "enforce_eager": [False, True]}


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


def _sweep_axes(pairs: list[str] | None) -> dict[str, list[Any]]:
    """``--sweep-set NAME=V1,V2`` values as the sweep's axes (numbers and true/false converted)."""
    axes: dict[str, list[Any]] = {}
    for pair in pairs or []:
        name, sep, values = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in SWEEP_AXES or not values.strip():
            raise typer.BadParameter(f"--sweep-set takes NAME=V1,V2 with NAME one of {', '.join(SWEEP_AXES)}, "
                                     f"got {pair!r}")
        axes[name] = [_setting_value(v.strip()) for v in values.split(",") if v.strip()]
    return axes or dict(DEFAULT_SWEEP)


def _setting_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "none":  # leave the flag out (the entry's or vLLM's default)
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


async def _load_outcome(cfg: LoadConfig, record: dict[str, Any], *, levels: list[int], rates: list[float], tok: Any,
                        context: bool, max_model_len: int, interval: float) -> None:
    """The load sweep (and the context pass) against ``cfg``'s server, sampled by one telemetry sampler;
    points and rows go into ``record`` as they finish (kept when the run is interrupted)."""
    points: list[dict[str, Any]] = record.setdefault("points", [])
    rows: list[dict[str, Any]] = record.setdefault("context", [])
    with TelemetrySampler(interval_s=interval, metrics_url=cfg.metrics_url) as sampler:
        record.update(gpu_available=sampler.gpu_available, telemetry_reason=sampler.reason)
        await load_sweep(cfg, concurrencies=levels, request_rates=rates, tokenizer=tok, sampler=sampler, into=points)
        if context:
            await context_pass(cfg, max_model_len=max_model_len, tokenizer=tok, sampler=sampler, into=rows)


def _measured(record: dict[str, Any]) -> bool:
    """Whether a bench record holds anything finished (worth storing)."""
    return bool(record.get("points") or record.get("context") or record.get("rows"))


def _failed_parts(record: dict[str, Any]) -> int:
    """Points, context rows and sweep settings recorded with an error."""
    return sum("error" in part for key in ("points", "context", "rows") for part in record.get(key) or [])


def _stored_json(path: Path) -> dict[str, Any]:
    """A stored bench result as ``--json`` prints it: the record as saved, with its path."""
    return {**load_bench_result(path), "path": str(path)}


def bench_command(
    key: Annotated[str | None, typer.Argument(help="Registry model (backend vllm) for agentbench to serve, bench "
                                              "and stop; or give --base-url and --model-name.",
                                              show_default=False)] = None,
    base_url: common.BaseUrlOption = None,
    model_name: common.ModelNameOption = None,
    tokenizer: Annotated[Path | None, typer.Option(help="The served model's tokenizer (a model folder): prompts "
                                                   "exactly as vllm bench serve builds them. Without it: "
                                                   "word prompts with min_tokens=max_tokens (a served "
                                                   "synthetic or local model's folder is used by itself).")]
    = None,
    endpoint: Annotated[str, typer.Option(help="/v1/completions (vllm bench serve's default) or "
                                          "/v1/chat/completions.")] = "/v1/completions",
    concurrency: Annotated[str | None, typer.Option(help="Concurrency levels, comma-separated (1..256; default "
                                                    "1,2,4,8,16, with --agent 8).", show_default=False)] = None,
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
    max_model_len: Annotated[int | None, typer.Option(help="With KEY: the server's --max-model-len (default the "
                                                      "entry's). With --base-url: the server's max model length, "
                                                      "capping the context pass (default 8192).",
                                                      show_default=False)] = None,
    telemetry_interval: Annotated[float, typer.Option(help="GPU (NVML) sampling period in seconds; /metrics "
                                                     "is scraped every 0.5 s.")] = 0.1,
    num_warmups: Annotated[int | None, typer.Option(min=0, help="Untimed warm-up requests before each point "
                                                    "(vllm bench serve's --num-warmups; default: one batch, the "
                                                    "point's concurrency, so no point pays a first-batch kernel "
                                                    "compile).", show_default=False)] = None,
    server_metrics: Annotated[bool, typer.Option(help="Scrape the server's /metrics (every 0.5 s) into the "
                                                 "telemetry.")] = True,
    trust_env: Annotated[bool | None, typer.Option(help="aiohttp's proxy and netrc lookups on every request "
                                                   "(default: only when a proxy variable or ~/.netrc exists). "
                                                   "--trust-env always makes them, as vllm bench serve "
                                                   "does inside its TTFT clock, so the two time alike.")] = None,
    sweep: Annotated[bool, typer.Option("--sweep", help="With KEY: restart the server over a grid of serving "
                                        "settings, bench each at the highest --concurrency, and recommend the best "
                                        "goodput under --goodput.")] = False,
    sweep_set: Annotated[list[str] | None, typer.Option(
        "--sweep-set", help="A sweep axis as NAME=V1,V2 (repeatable; NAME: max_num_seqs, gpu_memory_utilization, "
        "kv_cache_dtype, enforce_eager, max_model_len). Default: kv_cache_dtype=auto,fp8 x enforce_eager=false,true.",
        show_default=False)] = None,
    agent: Annotated[bool, typer.Option("--agent", help="Agent workload: run a scenario suite through the runner "
                                        "at each --concurrency and report scenario throughput, latency "
                                        "percentiles and output tokens/s.")] = False,
    suite: Annotated[str | None, typer.Option(help="With --agent: a named suite (`agentbench scenarios list`; "
                                              "default: full).", show_default=False)] = None,
    scenarios: Annotated[str | None, typer.Option(help="With --agent: scenario ids or globs, comma-separated.",
                                                  show_default=False)] = None,
    repeats: Annotated[int, typer.Option(min=1, help="With --agent: runs of each scenario.")] = 1,
    workers: Annotated[int, typer.Option(min=0, help="With --agent: worker processes (0: automatic).")] = 0,
    show: Annotated[str | None, typer.Option("--show", help="Print a stored bench result (its id, or 'latest') "
                                             "instead of running one.", show_default=False)] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write every stored bench result as a report "
                                                "(Markdown, HTML and, with the plots extra, PNG plots) into this "
                                                "folder instead of running one.", show_default=False)] = None,
    synthetic: SyntheticOption = False,
    gpu_memory_utilization: Annotated[float | None, typer.Option(help="With KEY: override the entry's share of GPU "
                                                                 "memory.", show_default=False)] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="With KEY: no CUDA graphs.")] = False,
    vllm_arg: Annotated[list[str] | None, typer.Option("--vllm-arg", help="With KEY: one more vLLM argument, "
                                                       "verbatim (repeatable).", show_default=False)] = None,
    vllm_command: VllmCommandOption = None,
    vllm_env: VllmEnvOption = None,
    health_timeout: HealthTimeoutOption = 900.0,
    models_file: common.ModelsFileOption = None,
    json_output: common.JsonOption = False,
    results: common.ResultsDirOption = None,
) -> None:
    """Benchmark a served model: a concurrency / request-rate sweep, optionally memory vs context length;
    with KEY agentbench serves the model itself (and --sweep restarts it over serving settings);
    --agent runs a scenario suite instead; --show / --report display stored results."""
    if show is not None or report is not None:
        _show_or_report(results_dir(results), show, report, json_output)
        return
    if agent and (sweep or context):
        raise typer.BadParameter("--agent runs a scenario suite; it does not combine with --sweep or --context")
    if agent and trust_env is not None:
        raise typer.BadParameter("--trust-env/--no-trust-env set the load client's aiohttp session; --agent drives "
                                 "the scenarios through LangChain's OpenAI client, which has no such setting")
    concurrency = concurrency or ("8" if agent else "1,2,4,8,16")
    if key is not None and base_url:
        raise typer.BadParameter("give a registry KEY (agentbench serves it) or --base-url, not both")
    if key is None and not (base_url and model_name):
        raise typer.BadParameter("give a registry KEY to serve, or --base-url and --model-name (the served model)")
    if sweep and key is None:
        raise typer.BadParameter("--sweep restarts the server, so it needs a registry KEY (not --base-url)")
    if endpoint not in ("/v1/completions", "/v1/chat/completions"):
        raise typer.BadParameter(f"--endpoint must be /v1/completions or /v1/chat/completions, not {endpoint!r}")
    levels = _ints(concurrency, "--concurrency")
    bad = [c for c in levels if not 1 <= c <= MAX_CONCURRENCY]
    if bad or not levels:
        raise typer.BadParameter(f"--concurrency values must be within 1..{MAX_CONCURRENCY}, "
                                 f"got {bad or concurrency!r}")
    try:
        rates = [float(r) for r in request_rate.split(",") if r.strip()]
    except ValueError:
        raise typer.BadParameter(f"--request-rate takes comma-separated numbers, got {request_rate!r}") from None
    cfg = LoadConfig(base_url=base_url or "", model=model_name or "", endpoint=endpoint, input_len=input_len,
                     output_len=output_len, num_prompts=num_prompts, seed=seed, burstiness=burstiness,
                     ignore_eos=ignore_eos, slos_ms=_slos(goodput), warmups=num_warmups, metrics=server_metrics,
                     trust_env=resolve_trust_env(trust_env))  # stored as it took effect
    axes = _sweep_axes(sweep_set) if sweep else {}
    tok = load_tokenizer(tokenizer) if tokenizer else None
    root = results_dir(results)

    def config(tok_path: Path | str | None, loaded: Any) -> dict[str, Any]:
        return {**cfg.__dict__, "tokenizer": str(tok_path or ""),
                "prompts": "vllm-random" if loaded else "text-fallback"}

    if agent:
        # each level is stored the moment it finishes: an interrupted bench keeps the finished levels
        records, paths = _agent(key, base_url, model_name, models_file, levels, suite=suite, scenarios=scenarios,
                                repeats=repeats, workers=workers, root=root, interval=telemetry_interval,
                                options=launch_options(synthetic=synthetic, vllm_command=vllm_command,
                                                       vllm_env=vllm_env, gpu_memory_utilization=gpu_memory_utilization,
                                                       max_model_len=max_model_len, enforce_eager=enforce_eager,
                                                       extra_args=tuple(vllm_arg or ())),
                                health_timeout=health_timeout, quiet=json_output)
        if json_output:
            common.print_json([_stored_json(p) for p in paths])
            return
        for r, p in zip(records, paths):
            show_result(r)
            common.out.print(f"Stored: {p}")
        return
    record: dict[str, Any] = {"model": cfg.model, "kind": "load", "config": config(tokenizer, tok)}
    try:
        if key is None:
            asyncio.run(_load_outcome(cfg, record, levels=levels, rates=rates, tok=tok, context=context,
                                      max_model_len=max_model_len or 8192, interval=telemetry_interval))
        else:
            spec = resolve_model(key, common.registry(models_file))
            if spec.backend != "vllm":
                raise ConfigError(f"{key!r} is a {spec.backend} model; `agentbench bench KEY` serves vllm entries "
                                  "only (bench another server with --base-url and --model-name)")
            options = launch_options(synthetic=synthetic, vllm_command=vllm_command, vllm_env=vllm_env,
                                     gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                                     enforce_eager=enforce_eager, extra_args=tuple(vllm_arg or ()))
            log_dir = bench_dir(root) / "servers"
            phase = phase_printer(spec.key, json_output)
            record["model"] = spec.key
            if sweep:
                record.update(kind="sweep", rows=[], concurrency=max(levels))
                asyncio.run(_sweep(spec, options, cfg, axes, record, tok=tok, log_dir=log_dir,
                                   health_timeout=health_timeout, phase=phase, interval=telemetry_interval))
            else:
                asyncio.run(_served_load(spec, options, cfg, record, levels=levels, rates=rates, tok=tok,
                                         tok_path=tokenizer, context=context, log_dir=log_dir,
                                         health_timeout=health_timeout, phase=phase,
                                         interval=telemetry_interval, config=config))
    except BaseException as exc:  # Ctrl-C, SIGTERM, a server crash, a bug: keep every finished point
        if _measured(record):
            stopped = as_terminated(exc)
            record["incomplete"] = f"{type(stopped).__name__}: {stopped}".rstrip(": ")
            path = save_bench_result(root, record)
            common.err.print(f"Bench stopped ({record['incomplete']}); the finished part is stored: {path}",
                             highlight=False)
            if json_output:  # a caller reading stdout (`--json > file`) gets the part that was stored
                common.print_json(_stored_json(path))
        raise
    path = save_bench_result(root, record)
    if failed := _failed_parts(record):
        common.err.print(f"{failed} point(s) failed; each is stored with its error", highlight=False)
    if json_output:
        common.print_json(_stored_json(path))
        return
    show_result(record)
    common.out.print(f"Stored: {path}")


def _agent(key: str | None, base_url: str | None, model_name: str | None, models_file: Path | None,
           levels: list[int], *, suite: str | None, scenarios: str | None, repeats: int, workers: int, root: Path,
           interval: float, options: Any, health_timeout: float,
           quiet: bool) -> tuple[list[dict[str, Any]], list[Path]]:
    """The agent workload bench at each concurrency level: one result per level, stored as soon as the
    level finishes (a served model's server record is added to them once the server has stopped)."""
    from agentbench.bench.agent import agent_bench

    if suite and scenarios:
        raise typer.BadParameter("give --suite or --scenarios, not both")
    entries = common.registry(models_file, base_url if key is None else None, model_name if key is None else None)
    spec = resolve_model(key or str(model_name), entries)
    lib = common.library(None)
    chosen = lib.matching(scenarios) if scenarios else lib.suite(suite or "full")
    selection = f"scenarios {scenarios}" if scenarios else f"suite {suite or 'full'}"

    records: list[dict[str, Any]] = []
    paths: list[Path] = []

    def store(record: dict[str, Any]) -> None:
        path = save_bench_result(root, record)
        stored = load_bench_result(path)  # keep the id and time, so a later save replaces this file
        record.update(bench_id=stored["bench_id"], created_at=stored["created_at"])
        if path not in paths:
            records.append(record)
            paths.append(path)

    async def each(run_spec: Any) -> None:
        for c in levels:
            record = await agent_bench(run_spec, chosen, lib, results_root=root, concurrency=c, repeats=repeats,
                                       workers=workers or None, telemetry_interval_s=interval, selection=selection)
            store({**record, "model": spec.key})

    async def go() -> None:
        if spec.backend == "vllm" and not spec.base_url:
            from agentbench.bench.served import served

            handle = None
            try:
                async with served(spec, options, log_dir=bench_dir(root) / "servers",
                                  health_timeout_s=health_timeout, on_phase=phase_printer(spec.key, quiet)) as handle:
                    await each(spec.model_copy(update={"base_url": handle.base_url}))
            finally:
                for r in records:  # the startup figures and the stop report are known once it stopped
                    if handle is not None:
                        r["server"] = handle.record
                        store(r)
            return
        await each(spec)

    asyncio.run(go())
    return records, paths


def _show_or_report(root: Path, show: str | None, report: Path | None, json_output: bool) -> None:
    """``--show ID|latest``: one stored result as tables; ``--report DIR``: all of them as a report."""
    stored = list_bench_results(root)
    if not stored:
        raise typer.BadParameter(f"no bench results stored under {bench_dir(root)}")
    if show is not None:
        matches = [stored[-1]] if show == "latest" else [r for r in stored if r.get("bench_id") == show]
        if not matches:
            raise typer.BadParameter(f"--show: no bench result {show!r} under {bench_dir(root)} (ids: "
                                     f"{', '.join(str(r.get('bench_id')) for r in stored[-5:])}, ...)")
        if json_output:
            common.print_json(matches[0])
        else:
            show_result(matches[0])
    if report is not None:
        from agentbench.bench.report import write_bench_report

        written = write_bench_report(stored, report, root)
        if json_output:
            common.print_json({"report": [str(p) for p in written["files"]], "plots_note": written["note"]})
        else:
            for path in written["files"]:
                common.out.print(f"Wrote {path}")
            if written["note"]:
                common.out.print(written["note"])


async def _served_load(spec: Any, options: Any, cfg: LoadConfig, record: dict[str, Any], *, levels: list[int],
                       rates: list[float], tok: Any, tok_path: Path | None, context: bool, log_dir: Path,
                       health_timeout: float, phase: Any, interval: float, config: Any) -> None:
    """Serve ``spec``, run the load sweep against it into ``record``, stop it; the record carries the
    server's figures (also when the sweep was interrupted)."""
    from agentbench.bench.served import served, tokenizer_dir

    handle = None
    try:
        async with served(spec, options, log_dir=log_dir, health_timeout_s=health_timeout, on_phase=phase) as handle:
            run_cfg = dataclasses.replace(cfg, base_url=handle.base_url, model=handle.model)
            if tok is None and (found := tokenizer_dir(handle.model_dir)) is not None:
                tok_path, tok = found, await asyncio.to_thread(load_tokenizer, found)
            record["config"] = {**config(tok_path, tok), "base_url": handle.base_url, "model": handle.model}
            await _load_outcome(run_cfg, record, levels=levels, rates=rates, tok=tok, context=context,
                                max_model_len=handle.max_model_len or 8192, interval=interval)
    finally:
        if handle is not None:
            record["server"] = handle.record


async def _sweep(spec: Any, options: Any, cfg: LoadConfig, axes: dict[str, list[Any]], record: dict[str, Any], *,
                 tok: Any, log_dir: Path, health_timeout: float, phase: Any, interval: float) -> None:
    """The settings sweep through the real server factory: one load point at concurrency ``record['concurrency']``
    per setting, each row into ``record['rows']`` as it finishes."""
    from agentbench.bench.served import server_factory

    top = int(record["concurrency"])
    grid = settings_grid(axes)
    servers: list[dict[str, Any]] = []
    factory = server_factory(spec, options, log_dir=log_dir, records=servers, health_timeout_s=health_timeout,
                             on_phase=phase)

    async def bench(base_url: str, model: str) -> dict[str, Any]:
        run_cfg = dataclasses.replace(cfg, base_url=base_url, model=model)
        reqs = random_requests(run_cfg.prompts_for(top), cfg.input_len, cfg.output_len, tokenizer=tok,
                               range_ratio=cfg.range_ratio, seed=cfg.seed)
        with TelemetrySampler(interval_s=interval, metrics_url=run_cfg.metrics_url) as sampler:
            return await bench_point(run_cfg, reqs, concurrency=top, sampler=sampler)

    rows: list[dict[str, Any]] = record["rows"]
    await run_settings_sweep(grid, factory, bench, into=rows)
    for row, server in zip(rows, servers):
        row["server"] = server
    best = recommend(rows)
    record.update(recommended=None if best is None else best["settings"],
                  recommend_note="" if best is not None else (
                      "no recommendation: give an SLO with --goodput" if not cfg.slos_ms
                      else "no setting served the load without failures"))


def show_result(record: dict[str, Any]) -> None:
    """Print a stored bench result as tables (its kind decides which)."""
    kind = record.get("kind")
    if record.get("incomplete"):
        common.out.print(f"Incomplete bench (stopped by {record['incomplete']}): the finished part only")
    if kind == "sweep":
        common.print_table(sweep_table(record["rows"]))
        best = record.get("recommended")
        common.out.print(f"Recommended: {best}" if best else record.get("recommend_note", "no recommendation"))
        return
    if kind == "agent":
        common.print_table(agent_table(record))
    if record.get("points"):
        common.print_table(load_table(record["points"]))
    if record.get("context"):
        common.print_table(context_table(record["context"]))
    startup = (record.get("server") or {}).get("startup")
    if startup:
        common.out.print("Server startup: " + ", ".join(f"{k} {v}" for k, v in startup.items() if k != "extra"))
    if record.get("gpu_available") is False:
        common.out.print(f"GPU telemetry unavailable: {record.get('telemetry_reason', '')}")
