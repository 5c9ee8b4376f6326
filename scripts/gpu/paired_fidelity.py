"""Fidelity in pairs: `vllm bench serve` and agentbench's bench client, one right after the other, in ONE
process (GPU scripts only; needs vLLM and agentbench importable).

Why pairs: on the H200 one server's mean TTFT drifted by a third within five minutes (c=1: 52, 49, 44 and
35 ms in four blocks of one call, on both clients), so blocks of runs minutes apart compare the drift, not
the clients. Here each pair runs vLLM's run and ours seconds apart, and the order alternates per
concurrency (the k-th pair at C runs vLLM first when k is odd, ours first when k is even: ABBA), so a
steady drift cancels in the means over an even number of pairs. One process also pays vLLM's 30-35 s
import once.

    python3 paired_fidelity.py --pairs "1:16 8:32 64:256 1:16 8:32 64:256" --prefix p --ours-dir DIR \\
        [--discard 64:128] [--log pairs.jsonl] -- --backend openai --base-url ... --result-dir DIR ...

The vLLM side is vLLM's own benchmark entry point (``VllmBench`` of vllm_bench_repeat.py, as `vllm bench
serve`). Our side is what `agentbench bench` runs for one point (``agentbench.bench.run.bench_point`` with
the CLI's telemetry sampler around it, started only for our run so it never runs during vLLM's), with its
settings taken from vLLM's parsed options (server, endpoint, model, tokenizer, lengths, seed, ignore_eos)
so both send the same prompts, and aiohttp's ``trust_env`` on as in vLLM's client (``--no-trust-env``:
agentbench's default instead).

Result files: vLLM's ``--result-dir``/PREFIX-cC-K.json and ``--ours-dir``/PREFIX-cC-K.json (an agentbench
bench record, ``kind: load``, one point), which ``python -m agentbench.bench.fidelity`` pairs by
concurrency; with ``AGENTBENCH_RESULTS_DIR`` set, each of our records is also stored there as `agentbench
bench` stores its results (so its ``--report`` shows them). ``--log`` gets one JSON line per run (side, c,
k, prefix, start and end in seconds since the first pair). The exit code is the number of failed runs
(at most 125); every finished run is on disk when the next starts.

vLLM's options are mapped as vLLM's benchmark resolves them (``--base-url`` or ``--host``/``--port``, the
general ``--input-len``/``--output-len``, the tokenizer or else the model, ``--random-range-ratio``,
``--request-rate`` and ``--burstiness``, ignore_eos always on for the random dataset); options ours cannot
match (another dataset, a prefix, sampling parameters, extra body or headers, beam search, LoRA, ramp-up)
are refused before anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

# The helper module sits beside this file (PYTHONSAFEPATH keeps a script's folder off sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vllm_bench_repeat import VllmBench, parse_runs, split_argv

USAGE = ("paired_fidelity.py --pairs 'C:N ...' --ours-dir DIR [--prefix P] [--discard C:N] [--log FILE] "
         "[--telemetry-interval S] [--no-trust-env] -- VLLM_BENCH_ARGS")


# vLLM options that change what its client sends or how, with their defaults (vLLM 0.24.0): ours has no
# counterpart, so a pair with any of them set would compare two different workloads and is refused.
UNMAPPED_DEFAULTS: dict[str, Any] = {
    "random_prefix_len": 0, "use_beam_search": False, "logprobs": None, "header": None, "top_p": None,
    "top_k": None, "min_p": None, "temperature": None, "frequency_penalty": None, "presence_penalty": None,
    "repetition_penalty": None, "lora_modules": None, "ramp_up_strategy": None, "chat_template_kwargs": None,
    "extra_body": None, "skip_tokenizer_init": False, "dataset_path": None,
}
COMPLETIONS_BACKENDS = ("openai", "vllm")  # vLLM's backends that send what ours sends to /v1/completions


def _range_ratio(value: Any) -> float | None:
    """vLLM's ``--random-range-ratio`` (a float, or a JSON dict of ``input`` and ``output``) as ours' one
    float; None when input and output differ (ours has one ratio for both)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = json.loads(value)
    if isinstance(value, dict):
        ratios = {float(value.get("input", 0.0)), float(value.get("output", 0.0))}
        return ratios.pop() if len(ratios) == 1 else None
    return float(value)


def ours_settings(args: argparse.Namespace) -> dict[str, Any]:
    """agentbench's settings for the workload that vLLM's parsed ``args`` describe, as vLLM's benchmark
    resolves them: ``LoadConfig`` fields plus ``tokenizer`` and ``request_rate``. Raises SystemExit naming
    every option ours cannot match (a pair must send the same requests on both sides)."""
    problems = [f"--{name.replace('_', '-')} {getattr(args, name)!r}" for name, default in UNMAPPED_DEFAULTS.items()
                if getattr(args, name, default) not in (default, [], {})]
    dataset = getattr(args, "dataset_name", "random")
    if dataset != "random":
        problems.append(f"--dataset-name {dataset!r} (pairs use vLLM's random dataset)")
    chat = str(args.endpoint).rstrip("/").endswith("/chat/completions")
    if args.backend not in (("openai-chat",) if chat else COMPLETIONS_BACKENDS):
        problems.append(f"--backend {args.backend!r} with --endpoint {args.endpoint!r}")
    if not args.model:
        problems.append("no --model (vLLM would ask the server for its first model; name it)")
    ratio = _range_ratio(getattr(args, "random_range_ratio", 0.0))
    if ratio is None:
        problems.append(f"--random-range-ratio {args.random_range_ratio!r} (ours has one ratio for input and output)")
    if problems:
        raise SystemExit("paired_fidelity.py cannot give agentbench's client the same workload as these "
                         "`vllm bench serve` options: " + "; ".join(problems))
    # vLLM's main(): --base-url, else http://HOST:PORT; the general --input-len/--output-len override the
    # random dataset's; the tokenizer is --tokenizer, else the model; with the random dataset on an
    # OpenAI-compatible backend it always sets ignore_eos.
    root = args.base_url or f"http://{args.host}:{args.port}"
    input_len = args.input_len if getattr(args, "input_len", None) is not None else args.random_input_len
    output_len = args.output_len if getattr(args, "output_len", None) is not None else args.random_output_len
    # ours posts to base_url minus "/v1" plus the endpoint: vLLM's base_url + endpoint, exactly
    return {"base_url": f"{root}/v1",
            "model": getattr(args, "served_model_name", None) or args.model, "endpoint": args.endpoint,
            "input_len": int(input_len), "output_len": int(output_len), "range_ratio": ratio,
            "seed": int(args.seed), "ignore_eos": True, "burstiness": float(getattr(args, "burstiness", 1.0)),
            "tokenizer": str(args.tokenizer or args.model),
            "request_rate": float(getattr(args, "request_rate", float("inf")))}


class OursBench:
    """agentbench's bench client for one point at a time, configured from vLLM's parsed options."""

    def __init__(self, vllm_args: argparse.Namespace, *, trust_env: bool, telemetry_interval_s: float) -> None:
        from agentbench.bench.dataset import load_tokenizer
        from agentbench.bench.run import LoadConfig

        settings = ours_settings(vllm_args)
        self.request_rate = settings.pop("request_rate")
        self.tokenizer_path = settings.pop("tokenizer")
        self.cfg = LoadConfig(**settings, trust_env=trust_env)
        self.tokenizer = load_tokenizer(self.tokenizer_path)  # vLLM's random prompts need the model's tokenizer
        self.interval_s = telemetry_interval_s

    def run(self, c: int, n: int, path: Path) -> bool:
        """One point at concurrency ``c`` with ``n`` prompts (one warm-up batch first), written to ``path``
        as an agentbench bench record. Returns whether it measured; a failed point is stored with its error."""
        from agentbench.bench.dataset import random_requests
        from agentbench.bench.run import bench_point
        from agentbench.telemetry.sampler import TelemetrySampler

        cfg = dataclasses.replace(self.cfg, num_prompts=n)
        rate = None if self.request_rate == float("inf") else self.request_rate  # as a bench point records it
        record: dict[str, Any] = {"model": cfg.model, "kind": "load", "runner": "paired_fidelity.py",
                                  "config": {**dataclasses.asdict(cfg), "tokenizer": self.tokenizer_path,
                                             "request_rate": rate, "prompts": "vllm-random"}}
        print(f"=== agentbench bench: concurrency {c}, {n} prompts -> {path.name}", flush=True)
        try:  # anything failing here is recorded like a failed point of `agentbench bench`; the next pair runs
            reqs = random_requests(n, cfg.input_len, cfg.output_len, tokenizer=self.tokenizer,
                                   range_ratio=cfg.range_ratio, seed=cfg.seed)
            with TelemetrySampler(interval_s=self.interval_s, metrics_url=cfg.metrics_url) as sampler:
                record.update(gpu_available=sampler.gpu_available, telemetry_reason=sampler.reason)
                point = asyncio.run(bench_point(cfg, reqs, concurrency=c, request_rate=self.request_rate,
                                                sampler=sampler))
        except Exception as exc:
            traceback.print_exc()
            point = {"concurrency": c, "request_rate": rate, "num_prompts": n, "error": f"{type(exc).__name__}: {exc}"}
        record["points"] = [point]
        path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        if os.environ.get("AGENTBENCH_RESULTS_DIR"):  # also where `agentbench bench --report` finds results
            from agentbench.bench.results import save_bench_result

            save_bench_result(Path(os.environ["AGENTBENCH_RESULTS_DIR"]), record)
        return "metrics" in point


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paired_fidelity.py", usage=USAGE)
    p.add_argument("--pairs", required=True, help="C:N items, one pair each")
    p.add_argument("--prefix", default="p")
    p.add_argument("--ours-dir", required=True, type=Path)
    p.add_argument("--discard", default="", help="C:N runs of vLLM's client first, not saved (a server warm-up)")
    p.add_argument("--log", type=Path, help="one JSON line per run: side, c, k, start_s, end_s, ok")
    p.add_argument("--telemetry-interval", type=float, default=0.1, help="our sampler's NVML period (the CLI's)")
    p.add_argument("--no-trust-env", dest="trust_env", action="store_false",
                   help="agentbench's default client (no proxy/netrc lookups) instead of vLLM's setting")
    return p


def pair_order(k: int) -> tuple[str, str]:
    """The sides of the k-th pair (from 1) at one concurrency: vLLM first when k is odd."""
    return ("vllm", "ours") if k % 2 else ("ours", "vllm")


def main(argv: list[str]) -> int:
    """Run the pairs; return the number of failed runs."""
    mine_argv, vllm_argv = split_argv(argv, USAGE)
    mine = _parser().parse_args(mine_argv)
    # refused before anything is imported
    pairs, discard = parse_runs(mine.pairs, "--pairs"), parse_runs(mine.discard, "--discard")
    per_c = Counter(c for c, _ in pairs)
    if odd := sorted(c for c, k in per_c.items() if k % 2):
        print(f"warning: an odd number of pairs at concurrency {odd}: a steady drift of the server cancels "
              "only over an even number (ABBA)", file=sys.stderr, flush=True)
    vllm = VllmBench(vllm_argv)
    if not vllm.args.result_dir:
        raise SystemExit("give vLLM's options a --result-dir (its result files go there)")
    ours = OursBench(vllm.args, trust_env=mine.trust_env, telemetry_interval_s=mine.telemetry_interval)
    mine.ours_dir.mkdir(parents=True, exist_ok=True)
    failed = sum(not vllm.run(c, n, None) for c, n in discard)
    t0 = time.perf_counter()
    counts: Counter[int] = Counter()
    for c, n in pairs:
        counts[c] += 1
        k = counts[c]
        name = f"{mine.prefix}-c{c}-{k}.json"
        for side in pair_order(k):
            start = time.perf_counter() - t0
            ok = vllm.run(c, n, name) if side == "vllm" else ours.run(c, n, mine.ours_dir / name)
            failed += not ok
            if mine.log:
                with mine.log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"prefix": mine.prefix, "side": side, "c": c, "k": k,
                                        "start_s": round(start, 3), "end_s": round(time.perf_counter() - t0, 3),
                                        "ok": ok}) + "\n")
    return failed


if __name__ == "__main__":
    sys.exit(min(main(sys.argv[1:]), 125))  # an exit status is one byte, and 126+ mean other things to a shell
