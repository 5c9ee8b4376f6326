"""Reasoning models: the server's reasoning text reaches the stored transcript, reasoning tokens are
counted only when reported, chat_template_kwargs go in the request body, and ``--thinking`` /
``--tool-protocol`` override the entry and are stored with the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from model_helpers import run_once

from agentbench.cli.app import main
from agentbench.models.backends import make_backend
from agentbench.models.registry import ModelSpec, adhoc_openai_model
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore
from agentbench.testing import ChatRequest, OpenAITestServer, Reply, ToolCallReply

THOUGHT = "The user wants 15% of 67.50, so I should call the calculator with 67.50 * 0.15."
ANSWER_THOUGHT = "The calculator said 10.125, which rounds to 10.13."


def tip_replies(field: str = "reasoning", tokens: int | None = None) -> list[Reply]:
    call = ToolCallReply("calculator", json.dumps({"expression": "67.50 * 0.15"}))
    return [
        Reply(tool_calls=[call], reasoning=THOUGHT, reasoning_field=field, reasoning_tokens=tokens),
        Reply(content="A 15% tip on $67.50 is $10.13.", reasoning=ANSWER_THOUGHT, reasoning_field=field,
              reasoning_tokens=tokens),
    ]


class Recorder:
    """A responder answering the tip scenario by position, keeping the bodies it received."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies

    def __call__(self, request: ChatRequest) -> Reply:
        step = sum(1 for m in request.messages if m.get("role") == "assistant")
        return self.replies[min(step, len(self.replies) - 1)]


def run_tip(library: ScenarioLibrary, spec_update: dict[str, Any], replies: list[Reply],
            chunk_chars: int = 7) -> tuple[ScenarioResult, list[ChatRequest]]:
    with OpenAITestServer(Recorder(replies), model_names=["thinker"], chunk_chars=chunk_chars) as server:
        spec = adhoc_openai_model(server.base_url, "thinker").model_copy(update={"max_retries": 0, **spec_update})
        backend = make_backend(spec)
        return run_once(backend, library.get("tip_calculation")), list(server.requests)


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_server_reasoning_reaches_the_stored_transcript(library: ScenarioLibrary, stream: bool, field: str) -> None:
    result, requests = run_tip(library, {"stream": stream}, tip_replies(field))
    assert result.outcome == "completed" and result.passed, result.error
    assert all(r.stream == stream for r in requests)
    assistant = [m for m in result.turns[0].messages if m.role == "assistant"]
    assert [m.reasoning for m in assistant] == [THOUGHT, ANSWER_THOUGHT]
    assert result.turns[0].answer == "A 15% tip on $67.50 is $10.13."  # reasoning is not the answer
    # The stored record (JSON) holds it too, not only the in-memory object.
    assert THOUGHT in result.model_dump_json()


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_reasoning_tokens_are_counted_only_when_reported(library: ScenarioLibrary, stream: bool) -> None:
    reported, _ = run_tip(library, {"stream": stream}, tip_replies(tokens=17))
    assert [c.reasoning_tokens for c in reported.model_calls] == [17, 17]
    silent, _ = run_tip(library, {"stream": stream}, tip_replies())
    assert [c.reasoning_tokens for c in silent.model_calls] == [None, None]  # never invented
    assert all(c.output_tokens for c in silent.model_calls)


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_think_blocks_of_a_prompt_model_become_reasoning(library: ScenarioLibrary, stream: bool) -> None:
    replies = [
        Reply(content=f"<think>{THOUGHT}</think>\n<tool_call>\n"
                      '{"name": "calculator", "arguments": {"expression": "67.50 * 0.15"}}\n</tool_call>'),
        Reply(content=f"<think>{ANSWER_THOUGHT}</think>\n\nA 15% tip on $67.50 is $10.13."),
    ]
    result, requests = run_tip(library, {"stream": stream, "tool_protocol": "prompt"}, replies, chunk_chars=3)
    assert result.passed, (result.error, [g for g in result.grades if not g.passed])
    assistant = [m for m in result.turns[0].messages if m.role == "assistant"]
    assert [m.reasoning for m in assistant] == [THOUGHT, ANSWER_THOUGHT]
    assert result.turns[0].answer == "A 15% tip on $67.50 is $10.13."
    # Earlier replies go back without their reasoning.
    assert "<think>" not in json.dumps(requests[-1].messages)
    if stream:
        assert all(c.ttft_s is not None for c in result.model_calls)


def test_chat_template_kwargs_go_in_the_request_body(library: ScenarioLibrary) -> None:
    _, requests = run_tip(library, {"chat_template_kwargs": {"enable_thinking": False}}, tip_replies())
    assert [r.body.get("chat_template_kwargs") for r in requests] == [{"enable_thinking": False}] * 2
    _, plain = run_tip(library, {}, tip_replies())
    assert all("chat_template_kwargs" not in r.body for r in plain)


# -- the command line ------------------------------------------------------------------------------


def models_file(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(f"thinker:\n  backend: openai\n  base_url: {base_url}\n  model_name: thinker\n"
                    "  max_retries: 0\n  chat_template_kwargs: {top_k_hint: 3}\n", encoding="utf-8")
    return path


def stored_spec(results: Path) -> dict[str, Any]:
    store = ResultStore(results)
    return store.plan(store.latest_run_id() or "").model_specs["thinker"]


def test_cli_overrides_are_sent_and_stored_with_the_run(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       library: ScenarioLibrary) -> None:
    recorder = Recorder(tip_replies())
    with OpenAITestServer(recorder, model_names=["thinker"]) as server:
        registry = models_file(tmp_path, server.base_url)
        base = ["--models-file", str(registry), "--results-dir", str(tmp_path / "res")]
        assert main(["scenario", "tip_calculation", "--model", "thinker", "--thinking", "off", *base]) == 0
        spec = stored_spec(tmp_path / "res")
        assert spec["chat_template_kwargs"] == {"top_k_hint": 3, "enable_thinking": False}
        assert spec["tool_protocol"] == "native"
        assert server.requests[-1].body["chat_template_kwargs"] == {"top_k_hint": 3, "enable_thinking": False}
        assert server.requests[-1].tools is not None
        store = ResultStore(tmp_path / "res")
        [stored] = list(store.results(store.latest_run_id() or ""))
        assert [m.reasoning for m in stored.turns[0].messages if m.role == "assistant"] == [THOUGHT, ANSWER_THOUGHT]

        count = len(server.requests)
        code = main(["run", "--models", "thinker", "--scenarios", "tip_calculation", "--tool-protocol", "prompt",
                     "--thinking", "on", "--no-report", *base])
        # The scripted native replies are not prompt-protocol text: the run completes but fails.
        assert code == 0
        spec = stored_spec(tmp_path / "res")
        assert (spec["tool_protocol"], spec["chat_template_kwargs"]["enable_thinking"]) == ("prompt", True)
        assert all(r.tools is None for r in server.requests[count:])
    capsys.readouterr()


@pytest.mark.parametrize(("args", "message"), [
    (["--tool-protocol", "json"], "--tool-protocol takes 'native' or 'prompt'"),
    (["--thinking", "maybe"], "--thinking takes 'on' or 'off'"),
])
def test_cli_rejects_bad_override_values(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                         args: list[str], message: str) -> None:
    registry = models_file(tmp_path, "http://127.0.0.1:9/v1")
    code = main(["scenario", "tip_calculation", "--model", "thinker", "--models-file", str(registry),
                 "--results-dir", str(tmp_path / "res"), *args])
    assert code != 0
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_cli_overrides_need_a_served_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["scenario", "tip_calculation", "--model", "reference", "--tool-protocol", "prompt",
                 "--results-dir", str(tmp_path / "res")])
    assert code != 0
    assert "backend openai or vllm" in capsys.readouterr().err.replace("\n", " ")


def test_overrides_reach_architecture_members() -> None:
    from agentbench.cli.common import model_overrides
    from agentbench.models.registry import load_registry, resolve_model

    registry = load_registry()
    arch = resolve_model("arch:example-fallback", registry)
    [changed] = model_overrides([arch], "prompt", "off")
    assert changed.members["example-down"].tool_protocol == "prompt"
    assert changed.members["example-down"].chat_template_kwargs == {"enable_thinking": False}
    assert changed.members["reference"] == arch.members["reference"]
    assert isinstance(changed, ModelSpec) and arch.members["example-down"].tool_protocol == "native"
