"""scripts/gpu/paired_fidelity.py against the local test server: vLLM's side is a stand-in of vLLM's
benchmark module that drives the server with agentbench's load client and writes vLLM's result keys; our
side is the real bench point. Checked: the ABBA order per concurrency, both sides' files, settings taken
from vLLM's options, a failed run counted without stopping the pairs, bad input refused before any run."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from agentbench.bench.fidelity import compare_fidelity, ours_by_concurrency, vllm_by_concurrency
from agentbench.bench.results import list_bench_results
from agentbench.testing.openai_server import OpenAITestServer, Reply

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu" / "paired_fidelity.py"

STUB_SERVE = '''
import asyncio, json, os
def add_cli_args(p):
    for a in ("--backend", "--base-url", "--endpoint", "--model", "--served-model-name", "--tokenizer",
              "--dataset-name", "--result-filename", "--result-dir"):
        p.add_argument(a)
    for a in ("--random-input-len", "--random-output-len", "--max-concurrency", "--num-prompts",
              "--num-warmups", "--seed"):
        p.add_argument(a, type=int, default=0)
    p.add_argument("--ignore-eos", action="store_true")
    p.add_argument("--save-result", action="store_true")
def main(args):
    if args.max_concurrency == 3:
        raise RuntimeError("server gone")
    from agentbench.bench.client import run_load
    from agentbench.bench.dataset import random_requests
    from agentbench.bench.metrics import compute_metrics
    reqs = random_requests(args.num_prompts, args.random_input_len, args.random_output_len, seed=args.seed)
    r = asyncio.run(run_load(args.base_url + args.endpoint, args.served_model_name or args.model, reqs,
                             max_concurrency=args.max_concurrency, warmups=args.num_warmups))
    m = compute_metrics(r.outputs, r.duration_s).to_dict()
    if args.save_result:
        with open(os.path.join(args.result_dir, args.result_filename), "w") as f:
            json.dump({"max_concurrency": args.max_concurrency, "output_throughput": m["output_throughput"],
                       "mean_ttft_ms": m["ttft_ms"]["mean"], "mean_tpot_ms": m["tpot_ms"]["mean"],
                       "completed": m["completed"]}, f)
'''


def _run(tmp_path: Path, stub: Path, base_url: str, *ours: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "vllm").mkdir(exist_ok=True)
    root = base_url.removesuffix("/v1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")]),
           "AGENTBENCH_RESULTS_DIR": str(tmp_path / "results")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--ours-dir", str(tmp_path / "ours"), "--log", str(tmp_path / "pairs.jsonl"),
         *ours, "--", "--backend", "openai-chat", "--base-url", root, "--endpoint", "/v1/chat/completions",
         "--model", "/models/m", "--served-model-name", "m", "--random-input-len", "24", "--random-output-len", "6",
         "--seed", "7", "--ignore-eos", "--result-dir", str(tmp_path / "vllm")],
        env=env, capture_output=True, text=True, timeout=120)


def _server() -> OpenAITestServer:
    return OpenAITestServer(lambda _r: Reply(content="y" * 24, completion_tokens=6), model_names=["m"])


def test_pairs_alternate_per_concurrency_and_both_sides_are_compared(tmp_path: Path,
                                                                     vllm_stub: Callable[[str], Path]) -> None:
    with _server() as server:
        proc = _run(tmp_path, vllm_stub(STUB_SERVE), server.base_url, "--pairs", "1:4 2:8 1:4 2:8")
    assert proc.returncode == 0, proc.stderr
    log = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [(r["c"], r["k"], r["side"]) for r in log] == [
        (1, 1, "vllm"), (1, 1, "ours"), (2, 1, "vllm"), (2, 1, "ours"),
        (1, 2, "ours"), (1, 2, "vllm"), (2, 2, "ours"), (2, 2, "vllm")]
    assert all(r["ok"] for r in log)
    assert all(b["start_s"] >= a["end_s"] for a, b in itertools.pairwise(log))  # one run at a time
    names = ["p-c1-1.json", "p-c1-2.json", "p-c2-1.json", "p-c2-2.json"]
    assert sorted(p.name for p in (tmp_path / "vllm").iterdir()) == names
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == names
    for name in names:
        record = json.loads((tmp_path / "ours" / name).read_text())
        cfg, [point] = record["config"], record["points"]
        # the workload is vLLM's options, and aiohttp's proxy/netrc lookups are on as in vLLM's client
        workload = (cfg["model"], cfg["input_len"], cfg["output_len"], cfg["seed"], cfg["trust_env"])
        assert workload == ("m", 24, 6, 7, True)
        assert cfg["endpoint"] == "/v1/chat/completions" and record["kind"] == "load"
        assert point["num_prompts"] == point["metrics"]["completed"] == (4 if "-c1-" in name else 8)
        assert "telemetry" in point  # the CLI's sampler ran around our run (no GPU here: recorded as such)
    stored = list_bench_results(tmp_path / "results", "m")  # where `agentbench bench --report` looks
    assert sorted(p["points"][0]["concurrency"] for p in stored) == [1, 1, 2, 2]
    compared = compare_fidelity(vllm_by_concurrency(sorted((tmp_path / "vllm").iterdir())),
                                ours_by_concurrency(sorted((tmp_path / "ours").iterdir())))
    assert compared["missing"] == [] and compared["unbalanced"] == [] and compared["passed"] in (True, False)
    assert {(r["concurrency"], len(r["vllm_runs"]), len(r["agentbench_runs"])) for r in compared["rows"]} == {
        (1, 2, 2), (2, 2, 2)}


def test_a_failed_run_is_counted_and_the_pairs_go_on(tmp_path: Path, vllm_stub: Callable[[str], Path]) -> None:
    with _server() as server:
        proc = _run(tmp_path, vllm_stub(STUB_SERVE), server.base_url, "--pairs", "3:4 1:4", "--no-trust-env")
    assert proc.returncode == 1 and "server gone" in proc.stderr  # vLLM's run at c=3 failed
    log = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [(r["c"], r["side"], r["ok"]) for r in log] == [(3, "vllm", False), (3, "ours", True),
                                                           (1, "vllm", True), (1, "ours", True)]
    assert json.loads((tmp_path / "ours" / "p-c1-1.json").read_text())["config"]["trust_env"] is False


def test_bad_pairs_are_refused_before_any_run(tmp_path: Path, vllm_stub: Callable[[str], Path]) -> None:
    for bad in ("0:4", "4x16"):
        proc = _run(tmp_path, vllm_stub(STUB_SERVE), "http://127.0.0.1:9/v1", "--pairs", bad)
        assert proc.returncode != 0 and bad in proc.stderr
        assert not (tmp_path / "pairs.jsonl").exists() and not (tmp_path / "ours").exists()
