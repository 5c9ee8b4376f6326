"""The examples run as documented (CI runs them against the local test server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agentbench.testing import ChatRequest, OpenAITestServer, Reply, ToolCallReply, reference_responder

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_build_agent_from_the_best_configuration_of_a_run(tmp_path: Path, library) -> None:
    reference = reference_responder(library)

    def served_model(request: ChatRequest) -> Reply:
        if "x-agentbench-scenario" in request.headers:  # the evaluation: gold replies
            return reference(request)
        # the built agent, asked a question outside any scenario: a calculator call, then an answer
        if request.messages[-1]["role"] == "tool":
            return Reply(content=f"It is {request.messages[-1]['content']}")
        return Reply(tool_calls=[ToolCallReply("calculator", '{"expression": "67.50 * 0.15"}')])

    env = {**os.environ, "AGENTBENCH_RESULTS_DIR": str(tmp_path / "results")}
    with OpenAITestServer(served_model, model_names=["local-model"]) as server:
        evaluated = subprocess.run(
            [sys.executable, "-m", "agentbench", "run", "--scenarios", "tip_calculation,multi_step_arithmetic",
             "--models", "reference-noisy,local-model", "--base-url", server.base_url, "--model-name",
             "local-model", "--no-report"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert evaluated.returncode == 0, evaluated.stderr
        done = subprocess.run([sys.executable, str(EXAMPLES / "build_agent_from_run.py")], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "best of run" in done.stdout and "local-model" in done.stdout and "calculator" in done.stdout
    assert "answer: It is" in done.stdout and "10.125" in done.stdout
