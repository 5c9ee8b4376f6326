"""``agentbench bench KEY``: agentbench serves a registry entry (the fake vLLM, real process group and
wire), benches it, stops it and stores the server's startup figures; ``--sweep`` restarts it per setting."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from agentbench.bench.results import list_bench_results
from agentbench.bench.served import options_for_settings, tokenizer_dir
from agentbench.cli.app import main
from agentbench.serving.launch import LaunchOptions
from agentbench.testing.fake_vllm import command

TOY = {"hf_id": "org/toy-8b", "params_b": 8.0, "native_context": 131072, "config": "toy", "max_model_len": 8192,
       "tool_parser": "hermes", "gpu_memory_utilization": 0.9}
ECHO = "FAKE_VLLM_RESPONDER=agentbench.testing.openai_server:echo_responder"
SMALL = ["--endpoint", "/v1/chat/completions", "--num-prompts", "4", "--input-len", "8", "--output-len", "4"]


def _models(tmp_path: Path) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"toy": {"backend": "vllm", "serve": TOY}}), encoding="utf-8")
    return path


def test_bench_key_serves_benches_stops_and_stores_startup_figures(tmp_path: Path, capsys) -> None:
    code = main(["bench", "toy", "--models-file", str(_models(tmp_path)), "--vllm-command", command(),
                 "--vllm-env", ECHO, "--concurrency", "1,2", *SMALL, "--max-model-len", "4096",
                 "--results-dir", str(tmp_path / "res"), "--json"])
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    [stored] = list_bench_results(tmp_path / "res", "toy")
    assert stored["bench_id"] == printed["bench_id"] and stored["kind"] == "load"
    assert [p["concurrency"] for p in stored["points"]] == [1, 2]
    assert all(p["metrics"]["completed"] == 4 and p["metrics"]["failed"] == 0 for p in stored["points"])
    server = stored["server"]
    # figures parsed from the server's own startup log; 4096 reached the server (KV tokens scale with it)
    assert server["startup"]["kv_cache_tokens"] == 839648 * 4096 // 8192
    assert server["startup"]["ready_s"] > 0
    assert server["stop"]["group_exited"] is True and server["stop"]["signal"] in ("SIGTERM", "SIGKILL")
    assert "--max-model-len" in server["settings"]["args"]
    assert stored["config"]["base_url"].startswith("http://127.0.0.1:")


def test_bench_key_sweep_restarts_per_setting_and_records_failed_starts(tmp_path: Path, capsys) -> None:
    code = main(["bench", "toy", "--models-file", str(_models(tmp_path)), "--vllm-command", command(),
                 "--vllm-env", ECHO, "--concurrency", "2", *SMALL, "--sweep", "--sweep-set", "max_model_len=4096,8192",
                 "--sweep-set", "max_num_seqs=none", "--goodput", "e2el:60000",
                 "--results-dir", str(tmp_path / "res"), "--json"])
    assert code == 0, capsys.readouterr().err
    [stored] = list_bench_results(tmp_path / "res", "toy")
    assert stored["kind"] == "sweep" and len(stored["rows"]) == 2
    kv = [r["server"]["startup"]["kv_cache_tokens"] for r in stored["rows"]]
    assert kv == [839648 * 4096 // 8192, 839648]  # a fresh server per setting
    assert all("--max-num-seqs" not in r["server"]["settings"]["args"] for r in stored["rows"])  # none: no flag
    assert stored["recommended"] in ({"max_model_len": 4096, "max_num_seqs": None},
                                     {"max_model_len": 8192, "max_num_seqs": None})


def test_sweep_setting_the_server_rejects_is_a_row_with_its_error(tmp_path: Path, capsys) -> None:
    # the fake, like vLLM's argparse, rejects an unknown flag: the start fails, the row says why
    code = main(["bench", "toy", "--models-file", str(_models(tmp_path)), "--vllm-command", command(),
                 "--vllm-env", ECHO, "--concurrency", "1", *SMALL, "--sweep", "--sweep-set", "kv_cache_dtype=fp8",
                 "--health-timeout", "30", "--results-dir", str(tmp_path / "res"), "--json"])
    assert code == 0, capsys.readouterr().err
    [stored] = list_bench_results(tmp_path / "res", "toy")
    [row] = stored["rows"]
    assert "error" in row and "ServerStartError" in row["error"]
    assert "unrecognized arguments" in row["server"]["log_tail"]
    assert stored["recommended"] is None and "--goodput" in stored["recommend_note"]


def test_settings_become_options_or_flags(tmp_path: Path) -> None:
    base = LaunchOptions(extra_args=("--seed", "1"))
    opts = options_for_settings(base, {"gpu_memory_utilization": 0.5, "enforce_eager": True, "max_num_seqs": 64,
                                       "kv_cache_dtype": "fp8"})
    assert opts.gpu_memory_utilization == 0.5 and opts.enforce_eager is True
    assert opts.extra_args == ("--seed", "1", "--max-num-seqs", "64", "--kv-cache-dtype", "fp8")
    assert tokenizer_dir("org/model") is None
    (tmp_path / "tokenizer.json").write_text("{}", encoding="utf-8")
    assert tokenizer_dir(str(tmp_path)) == tmp_path


def test_key_and_base_url_errors_are_named(tmp_path: Path, capsys) -> None:
    def err() -> str:  # the usage error is drawn in a box: compare the words
        return " ".join(capsys.readouterr().err.replace("│", " ").split())

    assert main(["bench", "toy", "--base-url", "http://x/v1"]) == 2
    assert "not both" in err()
    assert main(["bench", "--base-url", "http://x/v1", "--model-name", "m", "--sweep"]) == 2
    assert "--sweep restarts the server" in err()
    assert main(["bench", "toy", "--models-file", str(_models(tmp_path)), "--sweep", "--sweep-set", "tp=1,2"]) == 2
    assert "--sweep-set takes NAME=V1,V2" in err()


def test_a_server_crash_mid_bench_keeps_the_finished_points_and_the_server_record(tmp_path: Path, capsys) -> None:
    code = main(["bench", "toy", "--models-file", str(_models(tmp_path)), "--vllm-command", command(),
                 "--vllm-env", ECHO, "--vllm-env", "FAKE_VLLM_DIE_AFTER=6", "--concurrency", "1,2", *SMALL,
                 "--results-dir", str(tmp_path / "res"), "--json"])
    assert code == 0, capsys.readouterr().err
    [stored] = list_bench_results(tmp_path / "res", "toy")
    first, second = stored["points"]
    assert first["metrics"]["completed"] == 4 and first["metrics"]["failed"] == 0  # test request, warm-up, 4
    assert "metrics" not in second and "the test request" in second["error"]
    assert stored["server"]["startup"]["kv_cache_tokens"] > 0 and stored["server"]["stop"]["group_exited"]
