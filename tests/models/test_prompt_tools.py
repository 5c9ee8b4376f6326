"""Prompt-based tool calling: parsing rules, rendering, and real scenarios end to end over HTTP.

The end-to-end tests run the real backend (ChatOpenAI), tool loop, tools and graders against the
wire-format test server; the server's responders answer in text, as a model without tool support
does, and refuse requests that carry ``tools``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from model_helpers import run_once

from agentbench.graphs import LoopBinding
from agentbench.models.backends import OpenAIBackend, make_backend
from agentbench.models.prompt_tools import (
    RAW_TEXT_KEY,
    parse_reply,
    parse_text,
    render_messages,
    reply_text,
    tools_prompt,
)
from agentbench.models.registry import FaultSettings, ModelSpec, adhoc_openai_model, load_registry
from agentbench.runner.records import ScenarioResult
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore
from agentbench.testing import (
    OpenAITestServer,
    Reply,
    ScriptedChatModel,
    prompt_reference_responder,
    scripted_responder,
)
from agentbench.tools import ToolContext, build_tools

CALC = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "67.50 * 0.15"}}\n</tool_call>'


# -- parsing -------------------------------------------------------------------------------------


def test_a_call_block_becomes_a_tool_call_with_an_id() -> None:
    parsed = parse_text(f"Let me compute that.\n{CALC}")
    assert [(c["name"], c["args"]) for c in parsed.tool_calls] == [("calculator", {"expression": "67.50 * 0.15"})]
    assert parsed.tool_calls[0]["id"] and parsed.tool_calls[0]["id"].startswith("call_")
    assert parsed.content == "Let me compute that."
    assert parsed.invalid_tool_calls == []


def test_several_blocks_are_several_calls_in_order() -> None:
    text = CALC + '\n<tool_call>{"name": "read_file", "arguments": {"path": "a.txt"}}</tool_call>'
    parsed = parse_text(text)
    assert [c["name"] for c in parsed.tool_calls] == ["calculator", "read_file"]
    assert len({c["id"] for c in parsed.tool_calls}) == 2
    assert parsed.content == ""


def test_plain_text_is_a_final_answer() -> None:
    parsed = parse_text("  The tip is $10.13.\n")
    assert parsed.content == "The tip is $10.13."
    assert parsed.tool_calls == [] and parsed.invalid_tool_calls == []


@pytest.mark.parametrize(("block", "error", "name"), [
    ('{"name": "calculator", "arguments": {"expression": "1+", }', "not valid JSON", "calculator"),
    ('[{"name": "calculator"}]', "not a JSON list", "calculator"),
    ('{"name": "calculator", "arguments": [1, 2]}', "arguments are not a JSON object", "calculator"),
    ('{"name": "calculator", "arguments": "{\\"expression\\": \\"1\\"}"}', "arguments are not a JSON object",
     "calculator"),
    ('{"arguments": {"expression": "1"}}', 'no "name"', None),
    ('{"name": "", "arguments": {}}', 'no "name"', None),
])
def test_malformed_blocks_become_invalid_calls_with_their_raw_text(block: str, error: str, name: str | None) -> None:
    parsed = parse_text(f"<tool_call>\n{block}\n</tool_call>")
    assert parsed.tool_calls == []
    [bad] = parsed.invalid_tool_calls
    assert error in (bad["error"] or "")
    assert bad["args"] == block  # the raw text, as the model wrote it
    assert bad["name"] == name
    assert bad["id"]


def test_an_unterminated_block_is_invalid_and_earlier_calls_survive() -> None:
    parsed = parse_text(CALC + '\n<tool_call>{"name": "calculator", "arguments": {"expression": "2*3"}}')
    assert [c["name"] for c in parsed.tool_calls] == ["calculator"]
    [bad] = parsed.invalid_tool_calls
    assert "unterminated" in (bad["error"] or "")
    assert bad["args"] == '{"name": "calculator", "arguments": {"expression": "2*3"}}'


def test_tolerated_variants_a_code_fence_parameters_and_no_arguments() -> None:
    fence = '```json\n{"name": "calculator", "parameters": {"expression": "1"}}\n```'
    fenced = parse_text(f"<tool_call>{fence}</tool_call>")
    assert [(c["name"], c["args"]) for c in fenced.tool_calls] == [("calculator", {"expression": "1"})]
    bare = parse_text('<tool_call>{"name": "list_files"}</tool_call>')
    assert [(c["name"], c["args"]) for c in bare.tool_calls] == [("list_files", {})]


@pytest.mark.parametrize(("text", "reasoning", "content"), [
    ("<think>\n15% of 67.50 is 10.125\n</think>\n\nIt is $10.13.", "15% of 67.50 is 10.125", "It is $10.13."),
    ("opened by the template</think>It is $10.13.", "opened by the template", "It is $10.13."),
    ("<think>cut off while thinking", "cut off while thinking", ""),
    ("It is $10.13.", None, "It is $10.13."),
])
def test_think_blocks_are_reasoning_not_answer(text: str, reasoning: str | None, content: str) -> None:
    parsed = parse_text(text)
    assert (parsed.reasoning, parsed.content) == (reasoning, content)


def test_calls_inside_a_think_block_are_not_calls() -> None:
    parsed = parse_text(f"<think>maybe {CALC}? no.</think>The answer is 4.")
    assert parsed.tool_calls == [] and parsed.content == "The answer is 4."
    assert "calculator" in (parsed.reasoning or "")


def test_parse_reply_keeps_raw_text_and_server_reasoning_and_is_idempotent() -> None:
    raw = f"<think>use the calculator</think>{CALC}"
    message = AIMessage(content=raw, additional_kwargs={"reasoning_content": "from the server"})
    parsed = parse_reply(message)
    assert parsed.content == "" and [c["name"] for c in parsed.tool_calls] == ["calculator"]
    assert parsed.additional_kwargs[RAW_TEXT_KEY] == raw
    assert parsed.additional_kwargs["reasoning_content"] == "from the server\n\nuse the calculator"
    assert parse_reply(parsed) is parsed


# -- rendering -----------------------------------------------------------------------------------


def tools_for(tmp_path: Path, names: Sequence[str] = ("calculator",)) -> list[Any]:
    return build_tools(list(names), ToolContext(workspace=tmp_path, state={}, options={}))


def test_the_tool_prompt_lists_every_tool_with_its_argument_schema(tmp_path: Path) -> None:
    tools = tools_for(tmp_path, ["calculator", "read_file"])
    text = tools_prompt(tools)
    listed = [json.loads(line) for line in text.split("<tools>\n")[1].split("\n</tools>")[0].splitlines()]
    assert [t["name"] for t in listed] == ["calculator", "read_file"]
    assert listed[0]["parameters"]["properties"]["expression"]["type"] == "string"
    assert listed[0]["description"] == tools[0].description
    assert "<tool_call>" in text and "<tool_response" in text


def test_history_is_rendered_without_tool_roles(tmp_path: Path) -> None:
    first = parse_reply(AIMessage(content=f"<think>hmm</think>I'll compute.\n{CALC}\n{CALC}"))
    ids = [c["id"] for c in first.tool_calls]
    history = [
        SystemMessage("Be brief."), HumanMessage("Tip on 67.50?"), first,
        ToolMessage("10.125", tool_call_id=ids[0], name="calculator"),
        ToolMessage("Error: boom", tool_call_id=ids[1], name="calculator", status="error"),
        HumanMessage("And 20%?"),
    ]
    rendered = render_messages(history, "TOOLS")
    assert [type(m).__name__ for m in rendered] == ["SystemMessage", "HumanMessage", "AIMessage", "HumanMessage"]
    assert rendered[0].content == "Be brief.\n\nTOOLS"
    assert rendered[2].content == f"I'll compute.\n{CALC}\n{CALC}"  # what it wrote, reasoning left out
    assert not rendered[2].tool_calls  # type: ignore[attr-defined]
    assert rendered[3].content == ('<tool_response name="calculator">\n10.125\n</tool_response>\n'
                                   '<tool_response name="calculator">\nError: boom\n</tool_response>\n\nAnd 20%?')


def test_without_a_system_role_the_system_text_opens_the_first_user_message() -> None:
    rendered = render_messages([SystemMessage("Be brief."), HumanMessage("Hi")], "TOOLS", system_role=False)
    assert [type(m).__name__ for m in rendered] == ["HumanMessage"]
    assert rendered[0].content == "Be brief.\n\nTOOLS\n\nHi"
    assert render_messages([HumanMessage("Hi")], "TOOLS")[0].content == "TOOLS"


def test_a_reply_not_parsed_here_is_written_out_in_the_protocol() -> None:
    message = AIMessage(content="ok", tool_calls=[{"name": "calculator", "args": {"expression": "1"}, "id": "c1"}])
    call = '{"name": "calculator", "arguments": {"expression": "1"}}'
    assert reply_text(message) == f"ok\n<tool_call>\n{call}\n</tool_call>"


def test_any_chat_model_can_use_the_prompt_protocol(tmp_path: Path) -> None:
    from agentbench.models.prompt_tools import with_prompt_tools

    model = ScriptedChatModel(replies=[AIMessage(content=CALC)])
    reply = with_prompt_tools(model, tools_for(tmp_path)).invoke([HumanMessage("Tip on 67.50?")])
    assert [c["name"] for c in reply.tool_calls] == ["calculator"]
    assert isinstance(model.received[0][0], SystemMessage) and "calculator" in str(model.received[0][0].content)


# -- end to end over HTTP -----------------------------------------------------------------------


def prompt_spec(base_url: str, name: str, **update: Any) -> ModelSpec:
    return adhoc_openai_model(base_url, name).model_copy(update={"tool_protocol": "prompt", "max_retries": 0,
                                                                  **update})


def run_all(library: ScenarioLibrary, spec: ModelSpec, tmp_path: Path, ids: Sequence[str] = ()) -> dict[str, Any]:
    store = ResultStore(tmp_path / spec.key)
    chosen = [library.get(i) for i in ids] if ids else list(library.scenarios.values())
    plan = make_plan([spec], chosen, concurrency=8, workers=1)
    store.create_run(plan)
    asyncio.run(execute_plan(plan, library, store))
    return {r.scenario_id: r for r in store.results(plan.run_id)}


def grades(result: ScenarioResult) -> list[tuple[Any, ...]]:
    return [(g.grader, g.turn, g.passed, g.score) for g in result.grades]


@pytest.mark.parametrize("stream", [False, True], ids=["invoke", "stream"])
def test_gold_solutions_through_the_prompt_protocol_grade_as_native(library: ScenarioLibrary, tmp_path: Path,
                                                                    stream: bool) -> None:
    ids = sorted(s.id for s in library.suite("smoke")) if stream else []
    local = run_all(library, load_registry()["reference"], tmp_path, ids)
    responder = prompt_reference_responder(library, think=True)
    with OpenAITestServer(responder, model_names=["prompted"], chunk_chars=5) as server:
        remote = run_all(library, prompt_spec(server.base_url, "prompted", stream=stream), tmp_path, ids)
        assert server.requests and all(r.tools is None for r in server.requests)
        assert all(m.get("role") != "tool" for r in server.requests for m in r.messages)
    assert set(remote) == set(local) and len(local) >= (3 if stream else 20)
    for scenario_id, expected in local.items():
        got = remote[scenario_id]
        assert got.outcome == "completed", (scenario_id, got.error)
        assert grades(got) == grades(expected), scenario_id
        assert [(c.name, c.args) for c in got.tool_calls] == [(c.name, c.args) for c in expected.tool_calls]
        for turn in got.turns:
            assert "<think>" not in turn.answer and "<tool_call>" not in turn.answer
            assert all(m.reasoning and m.reasoning.startswith("Turn ") for m in turn.messages if m.role == "assistant")


def test_seeded_faults_through_the_prompt_protocol_are_caught_as_natively(library: ScenarioLibrary,
                                                                          tmp_path: Path) -> None:
    faults = FaultSettings(rate=1.0, seed=11)
    local = run_all(library, ModelSpec(key="noisy", backend="reference", faults=faults), tmp_path)
    with OpenAITestServer(prompt_reference_responder(library, faults=faults), model_names=["noisy-p"]) as server:
        remote = run_all(library, prompt_spec(server.base_url, "noisy-p"), tmp_path)
    kinds = {f["kind"] for r in local.values() for f in r.faults}
    assert {"malformed_arguments", "hallucinated_tool"} <= kinds  # the seed covers both
    for scenario_id, expected in local.items():
        assert grades(remote[scenario_id]) == grades(expected), scenario_id
        assert ([(c.name, c.status) for c in remote[scenario_id].tool_calls]
                == [(c.name, c.status) for c in expected.tool_calls]), scenario_id


def test_scripted_text_replies_drive_a_real_scenario(library: ScenarioLibrary) -> None:
    scenario = library.get("tip_calculation")
    replies = [
        Reply(content='<tool_call>\n{"name": "calculator", "arguments": {"expression": "67.50 * 0.15",}\n</tool_call>'),
        Reply(content='<tool_call>{"name": "tip_calculator", "arguments": {"bill": 67.5}}</tool_call>'),
        Reply(content=f"Two at once.\n{CALC}\n" + CALC.replace("0.15", "15 / 100")),
        Reply(content="<think>10.125 rounds to 10.13</think>A 15% tip on $67.50 is $10.13."),
    ]
    with OpenAITestServer(scripted_responder(replies), model_names=["scripted"]) as server:
        backend = make_backend(prompt_spec(server.base_url, "scripted"))
        result = run_once(backend, scenario, run_id="r1")
        requests = list(server.requests)
    assert result.outcome == "completed", result.error
    assert [(c.name, c.status) for c in result.tool_calls] == [
        ("calculator", "malformed"), ("tip_calculator", "unknown_tool"), ("calculator", "ok"), ("calculator", "ok")]
    assert result.tool_calls[0].raw_args and '"67.50 * 0.15",}' in result.tool_calls[0].raw_args
    assert all('"numeric": "10.125"' in c.result for c in result.tool_calls[2:])
    assert result.turns[0].answer == "A 15% tip on $67.50 is $10.13."
    assert result.turns[0].messages[-1].reasoning == "10.125 rounds to 10.13"
    assert not result.passed  # the malformed and the unknown call are graded as such
    failed = {g.grader for g in result.grades if not g.passed}
    assert {"valid_tool_calls", "known_tools"} <= failed
    assert len(requests) == 4 and all(r.tools is None for r in requests)
    # What the model saw last: its own replies verbatim, and every result as a user message.
    last = requests[-1].messages
    assert [m["role"] for m in last] == ["system", "user", *["assistant", "user"] * 3]
    assert "calculator" in last[0]["content"] and "<tools>" in last[0]["content"]
    assert last[2]["content"] == replies[0].content.strip() and "tool_calls" not in last[2]
    assert "not a valid JSON object" in last[3]["content"] and last[3]["content"].startswith("<tool_response")
    assert "unknown tool 'tip_calculator'" in last[5]["content"]
    assert last[7]["content"].count('<tool_response name="calculator">\n{"expression": "67.50') == 2


def test_the_request_carries_tools_only_in_native_mode(tmp_path: Path) -> None:
    tools = tools_for(tmp_path)
    bodies: dict[str, dict[str, Any]] = {}
    with OpenAITestServer(lambda _r: Reply(content="done"), model_names=["m"]) as server:
        for protocol in ("native", "prompt"):
            spec = adhoc_openai_model(server.base_url, "m").model_copy(update={"tool_protocol": protocol})
            backend = OpenAIBackend(spec)

            async def call(backend: OpenAIBackend = backend) -> AIMessage:
                await backend.start()
                try:
                    bound = LoopBinding.of(backend.chat_model(None), tools).model
                    return await bound.ainvoke([HumanMessage("hi")])
                finally:
                    await backend.stop()

            assert asyncio.run(call()).content == "done"
            bodies[protocol] = server.requests[-1].body
    assert [t["function"]["name"] for t in bodies["native"]["tools"]] == ["calculator"]
    assert "tools" not in bodies["prompt"] and "tool_choice" not in bodies["prompt"]
    assert "<tools>" in bodies["prompt"]["messages"][0]["content"]
    assert bodies["native"]["messages"] == [{"role": "user", "content": "hi"}]


def test_a_family_without_a_system_role_gets_the_tool_list_in_its_first_user_message(library: ScenarioLibrary) -> None:
    entry = load_registry()["gemma2-9b"]
    assert entry.serve is not None and entry.serve.family == "gemma2"
    with OpenAITestServer(prompt_reference_responder(library), model_names=[entry.model_name or ""]) as server:
        # The openai backend's request path, as the vllm backend (its subclass) uses it on a running server.
        backend = OpenAIBackend(entry.model_copy(update={"base_url": server.base_url, "max_retries": 0}))
        result = run_once(backend, library.get("tip_calculation"))
        requests = list(server.requests)
    assert result.passed, result.error
    assert requests and all(m["role"] != "system" for r in requests for m in r.messages)
    first = requests[0].messages[0]
    assert first["role"] == "user" and "<tools>" in first["content"]
    assert first["content"].endswith(library.get("tip_calculation").turns[0].user)


def test_a_prompt_model_without_tools_still_keeps_its_thinking_apart(tmp_path: Path) -> None:
    from agentbench.graphs import recursion_limit, tool_loop

    reply = Reply(content="<think>2 + 2 is 4</think>\n\nFour.")
    with OpenAITestServer(lambda _r: reply, model_names=["m"]) as server:
        for stream in (False, True):
            spec = prompt_spec(server.base_url, "m", stream=stream)
            backend = OpenAIBackend(spec)

            async def go(backend: OpenAIBackend = backend) -> dict[str, Any]:
                await backend.start()
                try:
                    graph = tool_loop(backend.chat_model(None), [], max_steps=2)
                    return await graph.ainvoke({"messages": [HumanMessage("2 + 2?")]},
                                               {"recursion_limit": recursion_limit(2)})
                finally:
                    await backend.stop()

            answer = asyncio.run(go())["messages"][-1]
            assert (answer.content, answer.additional_kwargs["reasoning_content"]) == ("Four.", "2 + 2 is 4"), stream


def test_the_raw_text_is_exactly_what_the_model_wrote_and_reasoning_is_split_once(tmp_path: Path) -> None:
    # The answer mentions the tag: a second split would take "</think>" in it for a reasoning end.
    text = f"<think>use the calculator</think>\n{CALC}\nI wrote </think> by mistake."
    with OpenAITestServer(lambda _r: Reply(content=text, reasoning="server thought"), model_names=["m"],
                          chunk_chars=5) as server:
        for stream in (False, True):
            backend = OpenAIBackend(prompt_spec(server.base_url, "m", stream=stream))

            async def call(backend: OpenAIBackend = backend, stream: bool = stream) -> AIMessage:
                await backend.start()
                try:
                    bound = LoopBinding.of(backend.chat_model(None), tools_for(tmp_path)).model
                    if not stream:
                        return await bound.ainvoke([HumanMessage("tip?")])
                    chunks = [chunk async for chunk in bound.astream([HumanMessage("tip?")])]
                    merged = chunks[0]
                    for chunk in chunks[1:]:
                        merged += chunk
                    return bound.finish_stream(AIMessage(content=merged.content,  # type: ignore[attr-defined]
                                                         additional_kwargs=merged.additional_kwargs))
                finally:
                    await backend.stop()

            reply = asyncio.run(call())
            assert reply.additional_kwargs[RAW_TEXT_KEY] == text, stream
            assert reply.additional_kwargs["reasoning_content"] == "server thought\n\nuse the calculator", stream
            assert [c["name"] for c in reply.tool_calls] == ["calculator"]
            assert reply.content == "I wrote </think> by mistake.", stream
            assert reply_text(reply) == f"{CALC}\nI wrote </think> by mistake.", stream
