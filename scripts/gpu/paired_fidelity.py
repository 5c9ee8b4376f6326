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
k, start and end in seconds since the first pair). The exit code is the number of failed runs; every
finished run is on disk when the next starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

# The helper module sits beside this file (PYTHONSAFEPATH keeps a script's folder off sys.path).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from vllm_bench_repeat import VllmBench, parse_runs, split_argv

USAGE = ("paired_fidelity.py --pairs 'C:N ...' --ours-dir DIR [--prefix P] [--discard C:N] [--log FILE] "
         "[--telemetry-interval S] [--no-trust-env] -- VLLM_BENCH_ARGS")


class OursBench:
    """agentbench's bench client for one point at a time, configured from vLLM's parsed options."""

    def __init__(self, vllm_args: argparse.Namespace, *, trust_env: bool, telemetry_interval_s: float) -> None:
        from agentbench.bench.dataset import load_tokenizer
        from agentbench.bench.run import LoadConfig

        root = str(vllm_args.base_url).rstrip("/").removesuffix("/v1")
        self.cfg = LoadConfig(
            base_url=root + "/v1", model=getattr(vllm_args, "served_model_name", None) or vllm_args.model,
            endpoint=vllm_args.endpoint, input_len=int(vllm_args.random_input_len),
            output_len=int(vllm_args.random_output_len), seed=int(vllm_args.seed),
            ignore_eos=bool(vllm_args.ignore_eos), trust_env=trust_env)
        self.tokenizer_path = str(vllm_args.tokenizer or "")
        # no tokenizer (a CPU test): text prompts, as `agentbench bench` without --tokenizer
        self.tokenizer = load_tokenizer(self.tokenizer_path) if self.tokenizer_path else None
        self.interval_s = telemetry_interval_s

    def run(self, c: int, n: int, path: Path) -> bool:
        """One point at concurrency ``c`` with ``n`` prompts (one warm-up batch first), written to ``path``
        as an agentbench bench record. Returns whether it measured; a failed point is stored with its error."""
        from agentbench.bench.dataset import random_requests
        from agentbench.bench.run import bench_point
        from agentbench.telemetry.sampler import TelemetrySampler

        cfg = dataclasses.replace(self.cfg, num_prompts=n)
        reqs = random_requests(n, cfg.input_len, cfg.output_len, tokenizer=self.tokenizer, seed=cfg.seed)
        record: dict[str, Any] = {"model": cfg.model, "kind": "load", "runner": "paired_fidelity.py",
                                  "config": {**dataclasses.asdict(cfg), "tokenizer": self.tokenizer_path,
                                             "prompts": "vllm-random" if self.tokenizer else "text-fallback"}}
        print(f"=== agentbench bench: concurrency {c}, {n} prompts -> {path.name}", flush=True)
        with TelemetrySampler(interval_s=self.interval_s, metrics_url=cfg.metrics_url) as sampler:
            record.update(gpu_available=sampler.gpu_available, telemetry_reason=sampler.reason)
            try:
                point = asyncio.run(bench_point(cfg, reqs, concurrency=c, sampler=sampler))
            except Exception as exc:  # recorded like a failed point of `agentbench bench`; the next pair runs
                point = {"concurrency": c, "request_rate": None, "num_prompts": n,
                         "error": f"{type(exc).__name__}: {exc}"}
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
    pairs, discard = parse_runs(mine.pairs), parse_runs(mine.discard)  # refused before anything is imported
    mine.ours_dir.mkdir(parents=True, exist_ok=True)
    vllm = VllmBench(vllm_argv)
    if not vllm.args.result_dir:
        raise SystemExit("give vLLM's options a --result-dir (its result files go there)")
    ours = OursBench(vllm.args, trust_env=mine.trust_env, telemetry_interval_s=mine.telemetry_interval)
    failed = sum(not vllm.run(c, n, None) for c, n in discard)
    t0 = time.perf_counter()
    counts: dict[int, int] = {}
    for c, n in pairs:
        counts[c] = k = counts.get(c, 0) + 1
        name = f"{mine.prefix}-c{c}-{k}.json"
        for side in pair_order(k):
            start = time.perf_counter() - t0
            ok = vllm.run(c, n, name) if side == "vllm" else ours.run(c, n, mine.ours_dir / name)
            failed += not ok
            if mine.log:
                with mine.log.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"side": side, "c": c, "k": k, "start_s": round(start, 3),
                                        "end_s": round(time.perf_counter() - t0, 3), "ok": ok}) + "\n")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
