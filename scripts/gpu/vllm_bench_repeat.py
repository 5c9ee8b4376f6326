"""`vllm bench serve`, several runs in one process (GPU scripts only; needs vLLM installed).

On the H200 machine a `vllm bench serve` process spends 30-35 s importing vLLM before a 4-11 s run, so
repeated runs (the fidelity check's interleaved repeats) cost most of a 10-minute call in start-ups. This
calls what the CLI calls -- `vllm.benchmarks.serve.add_cli_args` on vLLM's own parser, then
`vllm.benchmarks.serve.main(args)` (the body of `vllm bench serve`) -- once per run, with the run's
concurrency and prompt count, one warm-up batch (`--num-warmups` = concurrency) and its own result file.

    python3 vllm_bench_repeat.py --runs "1:16 8:32 64:256 64:256" --prefix vllm [--discard 64:128] \
        -- --backend openai --base-url ... --result-dir DIR   (any other `vllm bench serve` options)

Result files: DIR/PREFIX-cC-K.json (K counts the runs at C, from 1). `--discard C:N` first runs once
without saving (a server warm-up). A failed run is reported and the next one still runs; the exit code
is the number of failed runs.
"""

from __future__ import annotations

import argparse
import copy
import sys
import traceback


def parse_runs(text: str, option: str = "--runs") -> list[tuple[int, int]]:
    """``"1:16 8:32"`` -> ``[(1, 16), (8, 32)]`` (concurrency, prompts); a bad item names ``option``."""
    runs = []
    for item in text.split():
        c, _, n = item.partition(":")
        if not (c.isdigit() and n.isdigit()) or int(c) < 1 or int(n) < 1:
            raise SystemExit(f"{option} takes CONCURRENCY:PROMPTS items (both at least 1), got {item!r}")
        runs.append((int(c), int(n)))
    return runs


class VllmBench:
    """``vllm bench serve`` options parsed by vLLM's own parser (``args``), and :meth:`run`: one run through
    vLLM's benchmark entry point, the body of the CLI command."""

    def __init__(self, vllm_argv: list[str]) -> None:
        from vllm.benchmarks.serve import add_cli_args
        from vllm.benchmarks.serve import main as bench_main
        from vllm.utils.argparse_utils import FlexibleArgumentParser

        parser = FlexibleArgumentParser()
        add_cli_args(parser)
        self.args = parser.parse_args(vllm_argv)
        self._main = bench_main

    def run(self, c: int, n: int, name: str | None) -> bool:
        """Concurrency ``c``, ``n`` prompts, one warm-up batch, saved as ``name`` in ``--result-dir`` (None:
        not saved). Returns whether the run finished; a failure is printed, not raised."""
        # A fresh copy per run: vLLM's main() rewrites its args (it sets self_timed, which a second call
        # with the same namespace then rejects).
        one = copy.deepcopy(self.args)
        one.max_concurrency, one.num_prompts, one.num_warmups = c, n, c
        one.save_result, one.result_filename = name is not None, name
        print(f"=== vllm bench serve: concurrency {c}, {n} prompts -> {name or 'discarded'}", flush=True)
        try:
            self._main(one)
        except KeyboardInterrupt:
            raise
        except BaseException:  # SystemExit too (vLLM's argument checks exit): the next run still runs
            traceback.print_exc()
            return False
        return True


def split_argv(argv: list[str], usage: str) -> tuple[list[str], list[str]]:
    """``OURS -- VLLM_BENCH_ARGS`` -> (ours, vLLM's)."""
    if "--" not in argv:
        raise SystemExit(f"usage: {usage}")
    split = argv.index("--")
    return argv[:split], argv[split + 1:]


def main(argv: list[str]) -> int:
    """Run every run of ``--runs`` through vLLM's own benchmark entry point."""
    mine_argv, vllm_argv = split_argv(argv, "vllm_bench_repeat.py --runs 'C:N ...' --prefix P [--discard C:N] "
                                            "-- VLLM_BENCH_ARGS")
    ours = argparse.ArgumentParser()
    ours.add_argument("--runs", required=True)
    ours.add_argument("--prefix", default="vllm")
    ours.add_argument("--discard", default="")
    mine = ours.parse_args(mine_argv)
    runs = parse_runs(mine.runs)
    discard = parse_runs(mine.discard, "--discard")
    vllm = VllmBench(vllm_argv)
    failed = sum(not vllm.run(c, n, None) for c, n in discard)
    counts: dict[int, int] = {}
    for c, n in runs:
        counts[c] = counts.get(c, 0) + 1
        failed += not vllm.run(c, n, f"{mine.prefix}-c{c}-{counts[c]}.json")
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
