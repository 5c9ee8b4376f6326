"""The README's promises: the Quickstart shape CI relies on, and the library example runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from agentbench.testing import OpenAITestServer, Reply, ToolCallReply, scripted_responder

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_commands() -> list[str]:
    section = README.read_text().split("## Quickstart", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_has_exactly_two_commands() -> None:
    install_and_run, install_and_test = quickstart_commands()
    assert "pip install ." in install_and_run and install_and_run.endswith("agentbench run")
    assert '".[test]"' in install_and_test and install_and_test.endswith("pytest")


def test_library_example_runs_as_written(tmp_path: Path) -> None:
    code = re.search(r"## Building the agent.*?```python\n(.*?)```", README.read_text(), re.S)
    assert code, "the README lost its library example"
    replies = [Reply(tool_calls=[ToolCallReply("calculator", '{"expression": "67.50 * 0.15"}')]),
               Reply(content="15% of 67.50 is 10.125.")]
    with OpenAITestServer(scripted_responder(replies), model_names=["Qwen/Qwen3-8B"]) as server:
        program = code.group(1).replace("http://localhost:8000/v1", server.base_url)
        done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)
        sent = server.requests
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "completed 15% of 67.50 is 10.125."
    assert "10.125" in sent[1].messages[-1]["content"]  # the real calculator answered the model
