"""Hierarchy: the primary delegates through tools; worker runs come back as answers plus artifacts."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from agentbench.errors import ToolError
from agentbench.graphs import recursion_limit, tool_loop
from agentbench.graphs.hierarchical import DELEGATION_NOTE, delegate_tool, hierarchical_graph
from agentbench.testing import ScriptedChatModel


@tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def call(name: str, args: dict, ident: str) -> dict:
    return {"name": name, "args": args, "id": ident, "type": "tool_call"}


TASK = "Compute 2+3 with the add tool and answer with the number only."


def delegating_primary(final: str = "The coder says 5.") -> ScriptedChatModel:
    return ScriptedChatModel(replies=[AIMessage("", tool_calls=[call("delegate_to_coder", {"task": TASK}, "d1")]),
                                      AIMessage(final)])


async def run(graph, text: str = "What is 2+3?") -> dict:
    return await graph.ainvoke({"messages": [HumanMessage(text)]}, {"recursion_limit": recursion_limit(5)})


async def test_primary_delegates_and_integrates_the_answer() -> None:
    worker_model = ScriptedChatModel(replies=[
        AIMessage("", tool_calls=[call("add", {"a": 2, "b": 3}, "w1")],
                  usage_metadata={"input_tokens": 30, "output_tokens": 5, "total_tokens": 35}),
        AIMessage("5", usage_metadata={"input_tokens": 40, "output_tokens": 1, "total_tokens": 41})])
    primary = delegating_primary()
    coder = tool_loop(worker_model, [add], system="You are a careful coder.")
    graph = hierarchical_graph(primary, {"coder": ("writes and runs code", coder)}, system="You are the lead.")
    state = await run(graph)

    assert [type(m).__name__ for m in state["messages"]] == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    result = state["messages"][2]
    assert isinstance(result, ToolMessage) and result.content == "5" and result.name == "delegate_to_coder"
    assert state["messages"][-1].content == "The coder says 5." and state["outcome"] == "completed"
    # The worker saw its own system prompt and the task alone, never the user's conversation.
    assert [m.content for m in worker_model.received[0]] == ["You are a careful coder.", TASK]
    # The primary's prompt is the caller's plus the delegation note; its second call sees the result.
    system = primary.received[0][0]
    assert isinstance(system, SystemMessage) and system.content == f"You are the lead.\n\n{DELEGATION_NOTE}"
    assert primary.received[1][-1].content == "5"

    artifact = result.artifact
    assert {k: artifact[k] for k in ("kind", "worker", "task", "outcome")} == {
        "kind": "delegate", "worker": "coder", "task": TASK, "outcome": "completed"}
    usage = artifact["usage"]
    assert (usage["model_calls"], usage["input_tokens"], usage["output_tokens"]) == (2, 70, 6)
    assert usage["latency_s"] > 0 and artifact["wall_s"] >= usage["latency_s"]
    assert artifact["messages"] == [
        {"role": "assistant", "content": "", "tool_calls": [{"id": "w1", "name": "add", "args": {"a": 2, "b": 3}}]},
        {"role": "tool", "content": "5", "tool_call_id": "w1", "name": "add", "status": "ok"},
        {"role": "assistant", "content": "5"},
    ]


async def test_worker_failure_is_an_error_result_the_primary_sees() -> None:
    broken = ScriptedChatModel(replies=[])  # raises IndexError on its first call
    primary = delegating_primary("The coder is down; I cannot compute it.")
    graph = hierarchical_graph(primary, {"coder": ("writes code", tool_loop(broken))})
    state = await run(graph)
    result = state["messages"][2]
    assert isinstance(result, ToolMessage) and result.status == "error"
    assert result.content.startswith("Error: the coder worker failed: IndexError: ScriptedChatModel has only 0")
    assert result.response_metadata["agentbench"]["status"] == "tool_error"
    assert primary.received[1][-1].content == result.content
    assert state["outcome"] == "completed"


async def test_delegate_tool_reports_a_worker_that_hit_its_step_limit() -> None:
    looping = ScriptedChatModel(replies=[AIMessage("", tool_calls=[call("add", {"a": i, "b": 1}, f"c{i}")])
                                         for i in range(3)])
    delegate = delegate_tool("coder", "writes code", tool_loop(looping, [add], max_steps=2), max_steps=2)
    message = await delegate.ainvoke(call("delegate_to_coder", {"task": "loop"}, "d1"))
    assert message.content == "(the coder worker gave no answer; it ended with outcome 'step_limit')"
    assert message.artifact["outcome"] == "step_limit" and message.artifact["usage"]["model_calls"] == 2
    assert message.artifact["messages"][-1]["status"] == "step_limit"


async def test_delegate_tool_raises_tool_error_with_an_artifact() -> None:
    delegate = delegate_tool("coder", "writes code", tool_loop(ScriptedChatModel()))
    with pytest.raises(ToolError, match="the coder worker failed") as failure:
        await delegate.ainvoke(call("delegate_to_coder", {"task": "x"}, "d1"))
    assert failure.value.artifact["kind"] == "delegate" and failure.value.artifact["outcome"] == "error"


def test_delegate_tool_schema_describes_the_task() -> None:
    delegate = delegate_tool("coder", "writes and runs Python", tool_loop(ScriptedChatModel()))
    schema = delegate.tool_call_schema.model_json_schema()
    assert delegate.name == "delegate_to_coder" and "writes and runs Python" in delegate.description
    assert schema["required"] == ["task"]
    assert "cannot see this conversation" in schema["properties"]["task"]["description"]


def test_invalid_worker_names_and_clashes_are_rejected() -> None:
    worker = tool_loop(ScriptedChatModel())
    with pytest.raises(ValueError, match="valid tool name"):
        delegate_tool("my coder", "x", worker)

    @tool
    def delegate_to_coder(task: str) -> str:
        """A tool that shadows the delegate."""
        return task

    with pytest.raises(ValueError, match="clash"):
        hierarchical_graph(ScriptedChatModel(), {"coder": ("x", worker)}, [delegate_to_coder])


async def test_primary_can_answer_without_delegating() -> None:
    primary = ScriptedChatModel(replies=[AIMessage("", tool_calls=[call("add", {"a": 1, "b": 1}, "p1")]),
                                         AIMessage("2")])
    worker_model = ScriptedChatModel()
    graph = hierarchical_graph(primary, {"coder": ("writes code", tool_loop(worker_model))}, [add])
    state = await run(graph, "1+1?")
    assert state["messages"][-1].content == "2" and worker_model.received == []
    assert primary.received[0][0].content == DELEGATION_NOTE  # no system given: the note alone


def _roles(messages: list[BaseMessage]) -> list[str]:
    return [m.type for m in messages]


async def test_two_delegations_in_one_step_run_independently() -> None:
    primary = ScriptedChatModel(replies=[
        AIMessage("", tool_calls=[call("delegate_to_coder", {"task": "a"}, "d1"),
                                  call("delegate_to_writer", {"task": "b"}, "d2")]),
        AIMessage("both done")])
    coder = ScriptedChatModel(replies=[AIMessage("code for a")])
    writer = ScriptedChatModel(replies=[AIMessage("prose for b")])
    graph = hierarchical_graph(primary, {"coder": ("code", tool_loop(coder)), "writer": ("prose", tool_loop(writer))})
    state = await run(graph)
    assert _roles(state["messages"]) == ["human", "ai", "tool", "tool", "ai"]
    assert [(m.content, m.artifact["worker"]) for m in state["messages"][2:4]] == [
        ("code for a", "coder"), ("prose for b", "writer")]
    assert [m.content for m in coder.received[0]] == ["a"] and [m.content for m in writer.received[0]] == ["b"]
