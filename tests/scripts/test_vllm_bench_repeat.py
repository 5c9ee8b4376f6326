"""scripts/gpu/vllm_bench_repeat.py against a stand-in of vLLM's benchmark module (vLLM is GPU-only here):
the runs, their order, warm-ups, result names, the discarded first run, and a failed run not stopping the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu" / "vllm_bench_repeat.py"

# The two vLLM entry points the script uses, with the options it sets; main() logs each call and fails
# when asked to (a run at concurrency 13).
STUB_SERVE = '''
import json, os
def add_cli_args(parser):
    parser.add_argument("--base-url")
    parser.add_argument("--max-concurrency", type=int)
    parser.add_argument("--num-prompts", type=int, default=1000)
    parser.add_argument("--num-warmups", type=int, default=0)
    parser.add_argument("--save-result", action="store_true")
    parser.add_argument("--result-filename")
    parser.add_argument("--result-dir")
def main(args):
    if args.max_concurrency == 13:
        raise RuntimeError("server gone")
    if args.max_concurrency == 14:
        raise SystemExit("a check inside vLLM's main() exits")
    with open(os.environ["STUB_LOG"], "a") as f:
        f.write(json.dumps({k: getattr(args, k) for k in ("base_url", "max_concurrency", "num_prompts",
                                                          "num_warmups", "save_result", "result_filename")}) + "\\n")
    return {}
'''


def _run(tmp_path: Path, stub: Path, *args: str) -> tuple[int, list[dict]]:
    log = tmp_path / "calls.jsonl"
    env = {"PYTHONPATH": str(stub), "STUB_LOG": str(log), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.returncode, calls


def test_runs_in_order_with_warmups_and_numbered_result_files(tmp_path: Path, vllm_stub: Callable[[str], Path]) -> None:
    rc, calls = _run(tmp_path, vllm_stub(STUB_SERVE), "--runs", "1:16 64:256 64:256", "--prefix", "v",
                     "--discard", "64:128", "--", "--base-url", "http://srv", "--result-dir", "out")
    assert rc == 0
    assert [(c["max_concurrency"], c["num_prompts"], c["num_warmups"], c["save_result"], c["result_filename"])
            for c in calls] == [(64, 128, 64, False, None), (1, 16, 1, True, "v-c1-1.json"),
                                (64, 256, 64, True, "v-c64-1.json"), (64, 256, 64, True, "v-c64-2.json")]
    assert all(c["base_url"] == "http://srv" for c in calls)


def test_a_failed_run_is_counted_and_the_next_still_runs(tmp_path: Path, vllm_stub: Callable[[str], Path]) -> None:
    rc, calls = _run(tmp_path, vllm_stub(STUB_SERVE), "--runs", "13:20 14:56 8:32", "--", "--base-url", "http://srv")
    assert rc == 2 and [c["result_filename"] for c in calls] == ["vllm-c8-1.json"]


def test_bad_runs_are_refused_by_name(tmp_path: Path, vllm_stub: Callable[[str], Path]) -> None:
    log = tmp_path / "x"
    for bad in ("64x256", "0:16"):
        proc = subprocess.run([sys.executable, str(SCRIPT), "--runs", bad, "--", "--base-url", "u"],
                              env={"PYTHONPATH": str(vllm_stub(STUB_SERVE)), "STUB_LOG": str(log)},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and bad in proc.stderr and not log.exists()
