"""The vllm backend through the CLI: launch the (fake) server for a run, attach with --base-url, server
death mid-suite, a server that cannot start, and `agentbench serve`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from serving_helpers import alive, models_file, toy_spec

from agentbench.cli.app import main
from agentbench.models.backends import make_backend
from agentbench.models.vllm_backend import VLLMBackend
from agentbench.testing.fake_vllm import command
from agentbench.testing.openai_server import OpenAITestServer
from agentbench.testing.reference import reference_responder

SCENARIOS = "multi_step_arithmetic,irrelevance_capital,file_create_and_read"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _serving_record(results_dir: Path, run_id: str) -> dict:
    return json.loads((results_dir / "runs" / run_id / "serving.json").read_text())


def test_backend_is_registered_and_workers_only_attach() -> None:
    backend = make_backend(toy_spec())
    assert isinstance(backend, VLLMBackend) and not backend.attached
    backend.spec = backend.spec.model_copy(update={"base_url": "http://127.0.0.1:5/v1"})  # as start() leaves it
    worker = backend.worker_spec()
    assert worker.backend == "openai" and worker.serve is None
    assert (worker.base_url, worker.model_name) == ("http://127.0.0.1:5/v1", "toy")
    attached = make_backend(toy_spec().model_copy(update={"base_url": "http://h:1/v1"}))
    assert isinstance(attached, VLLMBackend) and attached.attached and attached.describe()["base_url"] == "http://h:1/v1"


@pytest.mark.slow  # a cold start of the fake plus a scenario through LangGraph (about 6 s here)
def test_scenario_with_model_starts_and_stops_the_server(capsys, results_dir: Path, tmp_path: Path) -> None:
    models = models_file(tmp_path / "models.yaml", "toy")
    code, out, _ = cli(capsys, "scenario", "multi_step_arithmetic", "--model", "toy", "--models-file", str(models),
                       "--vllm-command", command(), "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["results"][0]["outcome"] == "completed" and data["results"][0]["passed"]
    record = _serving_record(results_dir, data["run_id"])
    server = record["servers"][0]
    assert record["mode"] == "restart" and record["switches"][0]["how"] == "cold start"
    assert server["startup"]["kv_cache_tokens"] > 0 and server["stop"]["group_exited"]
    assert Path(server["log"]).parent == results_dir / "runs" / data["run_id"] / "servers"
    assert not alive({server["pid"]})


def test_base_url_attaches_without_launching(capsys, results_dir: Path, tmp_path: Path) -> None:
    models = models_file(tmp_path / "models.yaml", "toy")
    with OpenAITestServer(reference_responder(), model_names=("toy",)) as srv:
        code, out, _ = cli(capsys, "scenario", "irrelevance_capital", "--model", "toy", "--models-file", str(models),
                           "--base-url", srv.base_url, "--vllm-command", "/nonexistent/vllm", "--json")
        assert code == 0, out
        assert len(srv.requests) >= 1 and srv.requests[0].model == "toy"
    data = json.loads(out)
    assert data["results"][0]["passed"]
    assert not (results_dir / "runs" / data["run_id"] / "serving.json").exists()  # nothing was launched


def test_server_death_mid_suite_stores_endpoint_errors(capsys, results_dir: Path, tmp_path: Path) -> None:
    models = models_file(tmp_path / "models.yaml", "toy")
    code, out, _ = cli(capsys, "run", "--models", "toy", "--scenarios", SCENARIOS, "--concurrency", "1",
                       "--models-file", str(models), "--vllm-command", command(), "--vllm-env", "FAKE_VLLM_DIE_AFTER=3",
                       "--no-report", "--json")
    assert code == 3
    results = json.loads(out)["results"]
    assert len(results) == 3  # nothing lost
    outcomes = [r["outcome"] for r in results]
    assert "endpoint_error" in outcomes and outcomes[0] == "completed"
    last = results[-1]
    assert last["outcome"] == "endpoint_error" and "server exited" in last["error"]
    record = _serving_record(results_dir, json.loads(out)["run_id"])
    assert record["servers"][0]["stop"]["group_exited"]  # the orphaned engine child was cleaned up too


def test_a_server_that_cannot_start_records_its_scenarios_and_the_suite_goes_on(capsys, results_dir: Path,
                                                                               tmp_path: Path) -> None:
    models = models_file(tmp_path / "models.yaml", "toy")
    code, out, _ = cli(capsys, "run", "--models", "toy,reference", "--scenarios", "multi_step_arithmetic,"
                       "irrelevance_capital", "--models-file", str(models), "--vllm-command", command(),
                       "--vllm-env", "FAKE_VLLM_FAIL=oom", "--no-report", "--json")
    assert code == 3
    results = json.loads(out)["results"]
    toy = [r for r in results if r["model"] == "toy"]
    assert len(toy) == 2 and all(r["outcome"] == "endpoint_error" for r in toy)
    assert "out of GPU memory" in toy[0]["error"] and "hint:" in toy[0]["error"]
    assert all(r["passed"] for r in results if r["model"] == "reference")


def test_serve_without_gpu_or_vllm_fails_fast(capsys, tmp_path: Path) -> None:
    models = models_file(tmp_path / "models.yaml", "toy")
    log = tmp_path / "toy.log"
    start = time.monotonic()
    code, _, err = cli(capsys, "serve", "toy", "--models-file", str(models), "--log", str(log))
    assert time.monotonic() - start < 1.0
    assert code == 3 and "vLLM is not installed" in err and "--base-url" in err
    assert not log.exists()


def test_serve_once_reports_figures_and_a_clean_stop(capsys, tmp_path: Path) -> None:
    models = models_file(tmp_path / "models.yaml", "toy")
    code, out, err = cli(capsys, "serve", "toy", "--models-file", str(models), "--vllm-command", command(),
                         "--port", "0", "--max-model-len", "4096", "--once", "--json", "--log", str(tmp_path / "s.log"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["startup"]["max_concurrency_tokens"] == 4096 and summary["stop"]["group_exited"]
    assert "KV cache" in err and "ready on" in err  # the phases were shown as they happened


def test_serve_rejects_a_non_vllm_entry(capsys) -> None:
    code, _, err = cli(capsys, "serve", "reference")
    assert code == 1 and "vllm entries only" in err


def test_serve_detach_leaves_the_server_running_after_the_command_exits(tmp_path: Path) -> None:
    """The parent-death guard must not apply to --detach: the server outlives `agentbench serve`."""
    import os
    import signal
    import subprocess
    import urllib.request

    from agentbench.childproc import python_module_argv
    from agentbench.serving.server import group_pids

    models = models_file(tmp_path / "models.yaml", "toy")
    done = subprocess.run(
        [*python_module_argv("agentbench"), "serve", "toy", "--models-file", str(models), "--vllm-command", command(),
         "--port", "0", "--max-model-len", "4096", "--detach", "--json", "--log", str(tmp_path / "s.log")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    pids = group_pids(summary["pid"])
    try:
        time.sleep(1.0)  # a guarded server would be gone by now (SIGTERM on the parent's exit)
        assert summary["pid"] in alive(pids)
        with urllib.request.urlopen(summary["base_url"].removesuffix("/v1") + "/health", timeout=10) as reply:
            assert reply.status == 200
    finally:
        os.killpg(summary["pid"], signal.SIGKILL)


@pytest.mark.slow  # two cold starts of the fake plus a scenario (about 8 s here)
def test_an_architectures_vllm_members_are_launched_together_sharing_the_gpu(capsys, results_dir: Path,
                                                                              tmp_path: Path) -> None:
    import yaml
    from serving_helpers import TOY_SERVE

    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump({
        "toy-a": {"backend": "vllm", "serve": TOY_SERVE}, "toy-b": {"backend": "vllm", "serve": TOY_SERVE},
        "toy-pair": {"backend": "architecture", "architecture": {"kind": "fallback", "models": ["toy-a", "toy-b"]}},
    }), encoding="utf-8")
    code, out, err = cli(capsys, "scenario", "irrelevance_capital", "--model", "toy-pair", "--models-file",
                         str(models), "--vllm-command", command(), "--json")
    assert code in (0, 3), err  # the fake's echo answers may fail the grade; the serving is what is checked
    record = _serving_record(results_dir, json.loads(out)["run_id"])
    shares = {s["key"]: s["settings"]["args"][s["settings"]["args"].index("--gpu-memory-utilization") + 1]
              for s in record["servers"]}
    assert shares == {"toy-a": "0.45", "toy-b": "0.45"}  # both up at once, 0.9 of the GPU split between them
    assert all(s["stop"]["group_exited"] for s in record["servers"])
