"""``agentbench bench`` end to end against the local test server (chat endpoint, text prompts)."""

from __future__ import annotations

import json
from pathlib import Path

from agentbench.bench.results import list_bench_results
from agentbench.cli.app import main
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
