"""``agentbench bench`` end to end against the local test server (chat endpoint, text prompts)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import agentbench.bench.agent as agent_mod
import agentbench.cli.bench_cmd as bench_cmd
from agentbench.bench.results import list_bench_results
from agentbench.cli.app import main
from agentbench.testing import reference_responder
from agentbench.testing.openai_server import OpenAITestServer, Reply


def test_bench_sweeps_concurrency_and_stores_the_result(tmp_path: Path, capsys) -> None:
    with OpenAITestServer(lambda _r: Reply(content="y" * 24, completion_tokens=6), model_names=["m"]) as server:
        code = main(["bench", "--base-url", server.base_url, "--model-name", "m", "--endpoint",
                     "/v1/chat/completions", "--concurrency", "1,4", "--num-prompts", "8", "--input-len", "32",
                     "--output-len", "6", "--goodput", "ttft:5000", "--results-dir", str(tmp_path), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    stored = list_bench_results(tmp_path, "m")
    assert len(stored) == 1 and stored[0]["bench_id"] == printed["bench_id"]
    points = stored[0]["points"]
    assert [p["concurrency"] for p in points] == [1, 4]
    assert all(p["metrics"]["completed"] == 8 and p["metrics"]["total_output"] == 48 for p in points)
    assert all(p["metrics"]["request_goodput"] > 0 for p in points)
    assert stored[0]["config"]["prompts"] == "text-fallback"


def test_bad_options_are_named(tmp_path: Path, capsys) -> None:
    assert main(["bench", "--base-url", "http://x/v1", "--model-name", "m", "--concurrency", "0,300"]) == 2
    assert "--concurrency values must be within 1..256" in capsys.readouterr().err
    assert main(["bench", "--base-url", "http://x/v1", "--model-name", "m", "--goodput", "itl:5"]) == 2


def _failing_after(n: int):
    """A responder whose server works for ``n`` requests and then answers 500 (a dying engine)."""
    seen: list[int] = []

    def respond(_request) -> Reply:
        seen.append(1)
        if len(seen) > n:
            return Reply(status=500, error_message="EngineDeadError: the engine core died")
        return Reply(content="y" * 24, completion_tokens=6)

    return respond


SMALL = ["--model-name", "m", "--endpoint", "/v1/chat/completions", "--num-prompts", "4", "--input-len", "16",
         "--output-len", "6"]


def test_a_failed_point_is_recorded_and_the_finished_ones_kept(tmp_path: Path, capsys) -> None:
    # c=1: one test request, one warm-up (a batch of 1) and 4 timed requests; c=4's test request gets a 500
    with OpenAITestServer(_failing_after(6), model_names=["m"]) as server:
        code = main(["bench", "--base-url", server.base_url, *SMALL, "--concurrency", "1,4",
                     "--results-dir", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 point(s) failed" in captured.err
    [stored] = list_bench_results(tmp_path, "m")
    first, second = stored["points"]
    assert first["metrics"]["completed"] == 4
    assert second["concurrency"] == 4 and "metrics" not in second
    assert second["error"].startswith("RuntimeError: the test request") and "500" in second["error"]
    assert main(["bench", "--show", "latest", "--results-dir", str(tmp_path)]) == 0
    assert "error: RuntimeError" in capsys.readouterr().out


def test_warmups_and_server_metrics_options(tmp_path: Path, capsys) -> None:
    requests = 0

    def respond(_request) -> Reply:
        nonlocal requests
        requests += 1
        return Reply(content="y" * 24, completion_tokens=6)

    def bench(*extra: str) -> dict:
        with OpenAITestServer(respond, model_names=["m"]) as server:
            code = main(["bench", "--base-url", server.base_url, *SMALL, "--concurrency", "2",
                         "--results-dir", str(tmp_path), "--json", *extra])
        assert code == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    default = bench()  # a test request, one batch of warm-ups (2), 4 timed; the test server has no /metrics
    assert requests == 1 + 2 + 4
    assert default["points"][0]["metrics"]["completed"] == 4
    assert "404" in default["points"][0]["telemetry"]["metrics_error"]
    requests = 0
    quiet = bench("--num-warmups", "0", "--no-server-metrics")
    assert requests == 1 + 4
    assert "metrics_error" not in quiet["points"][0]["telemetry"]
    assert quiet["config"]["warmups"] == 0 and quiet["config"]["metrics"] is False


def test_an_interrupted_bench_stores_what_finished(tmp_path: Path, capsys, monkeypatch) -> None:
    async def interrupted(*_a, **_k):
        raise KeyboardInterrupt  # Ctrl-C during the context pass, after the load sweep

    monkeypatch.setattr(bench_cmd, "context_pass", interrupted)
    with OpenAITestServer(lambda _r: Reply(content="y" * 24, completion_tokens=6), model_names=["m"]) as server:
        code = main(["bench", "--base-url", server.base_url, *SMALL, "--concurrency", "1,2", "--context",
                     "--results-dir", str(tmp_path)])
    assert code == 130
    assert "the finished part is stored" in " ".join(capsys.readouterr().err.split())
    [stored] = list_bench_results(tmp_path, "m")
    assert stored["incomplete"] == "KeyboardInterrupt"
    assert [p["metrics"]["completed"] for p in stored["points"]] == [4, 4]


def test_an_interrupted_agent_bench_keeps_the_finished_levels(library, tmp_path: Path, monkeypatch) -> None:
    real = agent_mod.agent_bench
    calls: list[int] = []

    async def second_level_interrupted(*args, **kwargs):
        calls.append(kwargs["concurrency"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return await real(*args, **kwargs)

    monkeypatch.setattr(agent_mod, "agent_bench", second_level_interrupted)
    with OpenAITestServer(reference_responder(library), model_names=["ref"]) as server:
        code = main(["bench", "--agent", "--base-url", server.base_url, "--model-name", "ref", "--scenarios",
                     "api_tickets_triage", "--concurrency", "1,2", "--results-dir", str(tmp_path)])
    assert code == 130 and calls == [1, 2]
    [stored] = list_bench_results(tmp_path, "ref")
    assert stored["kind"] == "agent" and stored["config"]["concurrency"] == 1 and stored["agent"]["passed"] == 1


def test_trust_env_decides_whether_the_proxy_variables_are_obeyed(tmp_path: Path, capsys, monkeypatch) -> None:
    # A proxy that refuses connections: a client obeying it fails its test request, one ignoring it works.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_proxy = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", dead_proxy)

    def bench(*extra: str) -> dict:
        with OpenAITestServer(lambda _r: Reply(content="y" * 24, completion_tokens=6), model_names=["m"]) as server:
            code = main(["bench", "--base-url", server.base_url, *SMALL, "--concurrency", "1", "--no-server-metrics",
                         "--results-dir", str(tmp_path), "--json", *extra])
        assert code == 0, capsys.readouterr().err
        return json.loads(capsys.readouterr().out)

    ignoring = bench("--no-trust-env")
    assert ignoring["points"][0]["metrics"]["completed"] == 4 and ignoring["config"]["trust_env"] is False
    for extra in ((), ("--trust-env",)):  # the default obeys a proxy variable that is set, as --trust-env does
        record = bench(*extra)
        point = record["points"][0]
        assert "metrics" not in point and "test request" in point["error"], point
        assert record["config"]["trust_env"] is True  # stored as it took effect, also for the default
    monkeypatch.delenv("http_proxy")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc either
    assert bench()["config"]["trust_env"] is False


def test_trust_env_does_not_combine_with_agent(capsys) -> None:
    assert main(["bench", "--agent", "--base-url", "http://127.0.0.1:9/v1", "--model-name", "m", "--trust-env"]) == 2
    assert "--agent" in capsys.readouterr().err
