"""scripts/gpu/paired_fidelity.py against the local test server: vLLM's side is a stand-in of vLLM's
benchmark module that resolves its options as vLLM 0.24.0's main() does, builds vLLM's random prompts with
the model's tokenizer and sends them with agentbench's load client; our side is the real bench point.
Checked: the ABBA order per concurrency, both sides' files, the two sides of every pair sending the same
request bodies (so ours took vLLM's workload options right), a failed run counted without stopping the
pairs, and bad input -- malformed pairs, vLLM options ours cannot match -- refused before any run."""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from agentbench.bench.fidelity import compare_fidelity, ours_by_concurrency, vllm_by_concurrency
from agentbench.bench.results import list_bench_results
from agentbench.models.registry import load_registry
from agentbench.serving.synth import cached_synthetic_model
from agentbench.testing.openai_server import OpenAITestServer, Reply

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu" / "paired_fidelity.py"

# vLLM 0.24.0's options that matter here, with its defaults, and its main()'s resolution of them: --base-url
# or http://HOST:PORT, --input-len/--output-len over the random dataset's, the tokenizer or else the model,
# ignore_eos on for the random dataset. Sampling options only exist to be refused on our side.
STUB_SERVE = '''
import asyncio, json, os
def add_cli_args(p):
    for a in ("--backend", "--base-url", "--endpoint", "--model", "--served-model-name", "--tokenizer",
              "--result-filename", "--result-dir", "--dataset-path"):
        p.add_argument(a)
    p.add_argument("--dataset-name", default="random")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    for a in ("--random-input-len", "--random-output-len", "--max-concurrency", "--num-prompts",
              "--num-warmups", "--seed", "--random-prefix-len"):
        p.add_argument(a, type=int, default=0)
    for a in ("--input-len", "--output-len", "--top-k"):
        p.add_argument(a, type=int, default=None)
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--extra-body", type=json.loads, default=None)
    p.add_argument("--random-range-ratio", default="0.0")
    p.add_argument("--request-rate", type=float, default=float("inf"))
    p.add_argument("--burstiness", type=float, default=1.0)
    p.add_argument("--ignore-eos", action="store_true")
    p.add_argument("--save-result", action="store_true")
def main(args):
    if args.max_concurrency == 3:
        raise RuntimeError("server gone")
    from agentbench.bench.client import run_load
    from agentbench.bench.dataset import load_tokenizer, random_requests
    from agentbench.bench.metrics import compute_metrics
    base = args.base_url or f"http://{args.host}:{args.port}"
    input_len = args.input_len if args.input_len is not None else args.random_input_len
    output_len = args.output_len if args.output_len is not None else args.random_output_len
    ratio = float(json.loads(args.random_range_ratio)["input"]) if "{" in args.random_range_ratio \\
        else float(args.random_range_ratio)
    reqs = random_requests(args.num_prompts, input_len, output_len, range_ratio=ratio, seed=args.seed,
                           tokenizer=load_tokenizer(args.tokenizer or args.model))
    r = asyncio.run(run_load(base + args.endpoint, args.served_model_name or args.model, reqs,
                             max_concurrency=args.max_concurrency, warmups=args.num_warmups, ignore_eos=True,
                             request_rate=args.request_rate, burstiness=args.burstiness, seed=args.seed))
    m = compute_metrics(r.outputs, r.duration_s).to_dict()
    if args.save_result:
        with open(os.path.join(args.result_dir, args.result_filename), "w") as f:
            json.dump({"max_concurrency": args.max_concurrency, "output_throughput": m["output_throughput"],
                       "mean_ttft_ms": m["ttft_ms"]["mean"], "mean_tpot_ms": m["tpot_ms"]["mean"],
                       "completed": m["completed"]}, f)
'''


@pytest.fixture(scope="module")
def model_dir() -> Path:
    """A synthetic Llama-3.1-8B folder: its tokenizer is what both sides build prompts with."""
    return cached_synthetic_model(load_registry()["llama31-8b"])


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paired_fidelity", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, stub: Path, server: str, model: Path | str, *ours: str,
         vllm: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    (tmp_path / "vllm").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")]),
           "AGENTBENCH_RESULTS_DIR": str(tmp_path / "results")}
    where = ["--base-url", server] if server.startswith("http") else ["--host", "127.0.0.1", "--port", server]
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--ours-dir", str(tmp_path / "ours"), "--log", str(tmp_path / "pairs.jsonl"),
         *ours, "--", "--backend", "openai-chat", *where, "--endpoint", "/v1/chat/completions",
         "--model", str(model), "--served-model-name", "m", "--random-input-len", "24", "--random-output-len", "6",
         "--seed", "7", "--result-dir", str(tmp_path / "vllm"), *vllm],
        env=env, capture_output=True, text=True, timeout=180)


def _server() -> OpenAITestServer:
    return OpenAITestServer(lambda _r: Reply(content="y" * 24, completion_tokens=6), model_names=["m"])


def _log(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]


def _bodies_per_run(server: OpenAITestServer, log: list[dict]) -> list[list[str]]:
    """The request bodies of each run, in the log's order: a run sends a test request, one warm-up batch
    of c, then its prompts (every run here has 4 x c prompts), and runs never overlap."""
    bodies = [json.dumps(r.body, sort_keys=True) for r in server.requests]
    runs, at = [], 0
    for run in log:
        size = 1 + run["c"] + 4 * run["c"]
        runs.append(sorted(bodies[at:at + size]))
        at += size
    assert at == len(bodies)
    return runs


def test_pairs_alternate_and_both_sides_of_each_pair_send_the_same_requests(
        tmp_path: Path, vllm_stub: Callable[[str], Path], model_dir: Path) -> None:
    # no --tokenizer (vLLM uses the model's), a range ratio given as vLLM's JSON form, the server by port
    with _server() as server:
        port = server.base_url.split(":")[-1].split("/")[0]
        proc = _run(tmp_path, vllm_stub(STUB_SERVE), port, model_dir, "--pairs", "1:4 2:8 1:4 2:8",
                    vllm=("--random-range-ratio", '{"input": 0.5, "output": 0.5}'))
        assert proc.returncode == 0, proc.stderr
        log = _log(tmp_path)
        runs = _bodies_per_run(server, log)
    assert [(r["c"], r["k"], r["side"], r["prefix"]) for r in log] == [
        (1, 1, "vllm", "p"), (1, 1, "ours", "p"), (2, 1, "vllm", "p"), (2, 1, "ours", "p"),
        (1, 2, "ours", "p"), (1, 2, "vllm", "p"), (2, 2, "ours", "p"), (2, 2, "vllm", "p")]
    assert all(r["ok"] for r in log)
    assert all(b["start_s"] >= a["end_s"] for a, b in itertools.pairwise(log))  # one run at a time
    for first, second in zip(runs[::2], runs[1::2], strict=True):
        assert first == second  # same prompts, model, max tokens, ignore_eos: the same workload
    sent = [json.loads(b) for b in runs[0]]
    assert {b["max_completion_tokens"] for b in sent} != {6} and all(b["ignore_eos"] for b in sent)  # ratio 0.5
    assert all(b["model"] == "m" for b in sent)
    names = ["p-c1-1.json", "p-c1-2.json", "p-c2-1.json", "p-c2-2.json"]
    assert sorted(p.name for p in (tmp_path / "vllm").iterdir()) == names
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == names
    for name in names:
        record = json.loads((tmp_path / "ours" / name).read_text())
        cfg, [point] = record["config"], record["points"]
        # the workload is vLLM's options, and aiohttp's proxy/netrc lookups are on as in vLLM's client
        workload = (cfg["model"], cfg["input_len"], cfg["output_len"], cfg["range_ratio"], cfg["seed"],
                    cfg["tokenizer"], cfg["trust_env"])
        assert workload == ("m", 24, 6, 0.5, 7, str(model_dir), True)
        assert point["num_prompts"] == point["metrics"]["completed"] == (4 if "-c1-" in name else 8)
        assert "telemetry" in point  # the CLI's sampler ran around our run (no GPU here: recorded as such)
    stored = list_bench_results(tmp_path / "results", "m")  # where `agentbench bench --report` looks
    assert sorted(p["points"][0]["concurrency"] for p in stored) == [1, 1, 2, 2]
    compared = compare_fidelity(vllm_by_concurrency(sorted((tmp_path / "vllm").iterdir())),
                                ours_by_concurrency(sorted((tmp_path / "ours").iterdir())))
    assert compared["missing"] == [] and compared["unbalanced"] == []
    assert {(r["concurrency"], len(r["vllm_runs"]), len(r["agentbench_runs"])) for r in compared["rows"]} == {
        (1, 2, 2), (2, 2, 2)}


def test_a_failed_run_is_counted_and_the_pairs_go_on(tmp_path: Path, vllm_stub: Callable[[str], Path],
                                                      model_dir: Path) -> None:
    with _server() as server:
        proc = _run(tmp_path, vllm_stub(STUB_SERVE), server.base_url.removesuffix("/v1"), model_dir,
                    "--pairs", "3:4 1:4", "--no-trust-env", vllm=("--input-len", "32", "--output-len", "5"))
    assert proc.returncode == 1 and "server gone" in proc.stderr  # vLLM's run at c=3 failed
    assert "odd number of pairs at concurrency [1, 3]" in proc.stderr  # one pair each: no ABBA
    log = _log(tmp_path)
    assert [(r["c"], r["side"], r["ok"]) for r in log] == [(3, "vllm", False), (3, "ours", True),
                                                           (1, "vllm", True), (1, "ours", True)]
    cfg = json.loads((tmp_path / "ours" / "p-c1-1.json").read_text())["config"]
    assert (cfg["trust_env"], cfg["input_len"], cfg["output_len"]) == (False, 32, 5)  # the general lengths win


def test_bad_pairs_are_refused_before_any_run(tmp_path: Path, vllm_stub: Callable[[str], Path]) -> None:
    for bad in ("0:4", "4x16"):
        proc = _run(tmp_path, vllm_stub(STUB_SERVE), "http://127.0.0.1:9", "/models/m", "--pairs", bad)
        assert proc.returncode != 0 and bad in proc.stderr and "--pairs takes" in proc.stderr
        assert not (tmp_path / "pairs.jsonl").exists() and not (tmp_path / "ours").exists()


def test_vllm_options_ours_cannot_match_are_refused_before_any_run(tmp_path: Path,
                                                                  vllm_stub: Callable[[str], Path]) -> None:
    proc = _run(tmp_path, vllm_stub(STUB_SERVE), "http://127.0.0.1:9", "/models/m", "--pairs", "1:4",
                vllm=("--temperature", "0", "--random-prefix-len", "16", "--extra-body", '{"top_p": 0.5}'))
    assert proc.returncode != 0
    said = " ".join(proc.stderr.split())
    assert "--temperature 0.0" in said and "--random-prefix-len 16" in said and "--extra-body" in said
    assert not (tmp_path / "pairs.jsonl").exists() and not (tmp_path / "ours").exists()


def _vllm_defaults(**given: object) -> argparse.Namespace:
    """vLLM 0.24.0's parsed defaults for the options ``ours_settings`` reads, with ``given`` over them."""
    defaults: dict[str, object] = dict(
        backend="openai", base_url=None, host="127.0.0.1", port=8000, endpoint="/v1/completions", model="/m",
        served_model_name=None, tokenizer=None, dataset_name="random", input_len=None, output_len=None,
        random_input_len=1024, random_output_len=128, random_range_ratio="0.0", random_prefix_len=0, seed=0,
        request_rate=float("inf"), burstiness=1.0, ignore_eos=False, use_beam_search=False, logprobs=None,
        header=None, top_p=None, top_k=None, min_p=None, temperature=None, frequency_penalty=None,
        presence_penalty=None, repetition_penalty=None, lora_modules=None, ramp_up_strategy=None,
        chat_template_kwargs=None, extra_body=None, skip_tokenizer_init=False, dataset_path=None)
    return argparse.Namespace(**{**defaults, **given})


def test_settings_follow_vllms_resolution_of_its_options() -> None:
    settings = _script().ours_settings(_vllm_defaults())
    assert settings == {
        "base_url": "http://127.0.0.1:8000/v1", "model": "/m", "endpoint": "/v1/completions", "input_len": 1024,
        "output_len": 128, "range_ratio": 0.0, "seed": 0, "ignore_eos": True, "burstiness": 1.0,
        "tokenizer": "/m", "request_rate": float("inf")}  # ignore_eos: vLLM sets it for the random dataset
    settings = _script().ours_settings(_vllm_defaults(
        base_url="http://h:1", served_model_name="name", tokenizer="/tok", random_range_ratio="0.25",
        request_rate=8.0, burstiness=0.5, backend="vllm"))
    assert (settings["base_url"], settings["model"], settings["tokenizer"]) == ("http://h:1/v1", "name", "/tok")
    assert (settings["range_ratio"], settings["request_rate"], settings["burstiness"]) == (0.25, 8.0, 0.5)


@pytest.mark.parametrize(("given", "named"), [
    ({"dataset_name": "sharegpt"}, "--dataset-name 'sharegpt'"),
    ({"random_range_ratio": '{"input": 0.1, "output": 0.3}'}, "--random-range-ratio"),
    ({"backend": "openai-chat"}, "--backend 'openai-chat' with --endpoint '/v1/completions'"),
    ({"endpoint": "/v1/chat/completions"}, "--backend 'openai' with --endpoint '/v1/chat/completions'"),
    ({"model": None}, "no --model"),
    ({"header": ["x=1"]}, "--header"),
    ({"use_beam_search": True}, "--use-beam-search"),
    ({"top_k": 5}, "--top-k 5"),
    ({"skip_tokenizer_init": True}, "--skip-tokenizer-init"),
])
def test_options_ours_cannot_match_are_named(given: dict[str, object], named: str) -> None:
    with pytest.raises(SystemExit) as refused:
        _script().ours_settings(_vllm_defaults(**given))
    assert named in str(refused.value)
