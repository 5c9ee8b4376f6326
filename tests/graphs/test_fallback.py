"""Fallback chain: each failure kind moves on to the next agent; failed attempts leave only events."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from agentbench.errors import EndpointError
from agentbench.graphs import recursion_limit, tool_loop
from agentbench.graphs.fallback import default_failure, fallback_graph
from agentbench.testing import ScriptedChatModel


@tool
def add(a: int, b: int) -> str:
    """Add two integers."""
    return str(a + b)


def call(name: str, args: dict, ident: str) -> dict:
    return {"name": name, "args": args, "id": ident, "type": "tool_call"}


def connection_error() -> openai.APIConnectionError:
    return openai.APIConnectionError(request=httpx.Request("POST", "http://x"))


class FailingModel(ScriptedChatModel):
    """Replies as scripted, then raises ``error`` on the call after the script."""

    error: Any = None

    def reply(self, messages: list[BaseMessage]) -> AIMessage:
        if len(self.received) >= len(self.replies):
            self.received.append(list(messages))
            raise self.error
        return super().reply(messages)


class SlowModel(ScriptedChatModel):
    """Waits ``delay_s`` before each reply, like an overloaded server."""

    delay_s: float = 10.0

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        await asyncio.sleep(self.delay_s)
        return await super()._agenerate(messages, stop, run_manager, **kwargs)


USAGE = {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12}
GOOD = "The answer is 4."


def backup() -> ScriptedChatModel:
    return ScriptedChatModel(replies=[AIMessage(GOOD)])


async def run(agents: list[tuple[str, Any]], text: str = "What is 2+2?", history: list[BaseMessage] | None = None,
              **options: Any) -> dict:
    graph = fallback_graph([(name, tool_loop(model, [add], max_steps=2)) for name, model in agents], **options)
    return await graph.ainvoke({"messages": [*(history or []), HumanMessage(text)]},
                               {"recursion_limit": recursion_limit(5)})


def assert_answered_by_backup(state: dict, second: ScriptedChatModel) -> None:
    assert [type(m).__name__ for m in state["messages"]] == ["HumanMessage", "AIMessage"]
    assert state["messages"][-1].content == GOOD and state["outcome"] == "completed"
    assert state["events"][-1] == {"kind": "answered_by", "agent": "backup", "attempts": 2, "outcome": "completed"}
    # The backup started from the turn's original state: it never saw the failed attempt.
    assert [m.content for m in second.received[0]] == ["What is 2+2?"]


@pytest.mark.parametrize("error", [connection_error(), EndpointError("HTTP 503 from http://x")])
async def test_endpoint_error_falls_back_and_keeps_the_partial_cost(error: Exception) -> None:
    first = FailingModel(replies=[AIMessage("", tool_calls=[call("add", {"a": 2, "b": 2}, "c1")],
                                            usage_metadata=USAGE)], error=error)
    second = backup()
    state = await run([("main", first), ("backup", second)])
    assert_answered_by_backup(state, second)
    event = state["events"][0]
    assert (event["kind"], event["from"], event["to"], event["outcome"]) == ("fallback", "main", "backup", "error")
    assert event["reason"].startswith(type(error).__name__)
    # The call made before the failure is paid for even though its messages were dropped.
    assert event["usage"]["model_calls"] == 1 and event["usage"]["input_tokens"] == 10
    assert len(first.received) == 2


async def test_timeout_falls_back() -> None:
    second = backup()
    state = await run([("main", SlowModel(replies=[AIMessage(GOOD)], delay_s=5)), ("backup", second)], timeout_s=0.2)
    assert_answered_by_backup(state, second)
    event = state["events"][0]
    assert event["reason"] == "timed out after 0.2s" and event["outcome"] == "timeout"
    assert 0.2 <= event["wall_s"] < 2


async def test_last_agent_timing_out_is_an_endpoint_error() -> None:
    with pytest.raises(EndpointError, match=r"'backup' did not finish within 0\.1s"):
        await run([("main", FailingModel(error=connection_error())),
                   ("backup", SlowModel(replies=[AIMessage(GOOD)], delay_s=5))], timeout_s=0.1)


@pytest.mark.parametrize(("replies", "reason"), [
    ([AIMessage("", invalid_tool_calls=[{"name": "add", "args": '{"a": 2,', "id": "c1", "error": "bad json",
                                         "type": "invalid_tool_call"}]), AIMessage("4")], "malformed tool call (add)"),
    ([AIMessage("I'm sorry, but I can't help with that.")], "refusal: \"I can't help\""),
    ([AIMessage("I am unable to assist with this request.")], "refusal: 'I am unable to assist'"),
    ([AIMessage("   ")], "empty final answer"),
    ([AIMessage("", tool_calls=[call("add", {"a": i, "b": 1}, f"c{i}")]) for i in range(3)], "step limit reached"),
])
async def test_bad_results_fall_back(replies: list[AIMessage], reason: str) -> None:
    second = backup()
    state = await run([("main", ScriptedChatModel(replies=replies)), ("backup", second)])
    assert_answered_by_backup(state, second)
    event = state["events"][0]
    assert event["reason"] == reason
    assert event["usage"]["model_calls"] == min(len(replies), 2)
    assert not any(isinstance(m, ToolMessage) for m in state["messages"])  # the failed attempt's are gone


async def test_no_fallback_when_the_first_succeeds() -> None:
    first = ScriptedChatModel(replies=[AIMessage("", tool_calls=[call("add", {"a": 2, "b": 2}, "c1")]),
                                       AIMessage(GOOD)])
    second = backup()
    state = await run([("main", first), ("backup", second)])
    assert state["events"] == [{"kind": "answered_by", "agent": "main", "attempts": 1, "outcome": "completed"}]
    assert [m.content for m in state["messages"]] == ["What is 2+2?", "", "4", GOOD]
    assert second.received == []


async def test_each_turn_starts_with_the_first_agent() -> None:
    first = FailingModel(replies=[AIMessage("hi")], error=connection_error())
    second = ScriptedChatModel(replies=[AIMessage("from backup")])
    turn1 = await run([("main", first), ("backup", second)], text="hello")
    assert turn1["events"] == [{"kind": "answered_by", "agent": "main", "attempts": 1, "outcome": "completed"}]
    turn2 = await run([("main", first), ("backup", second)], text="again", history=turn1["messages"])
    assert [e["kind"] for e in turn2["events"]] == ["fallback", "answered_by"]
    assert [m.content for m in turn2["messages"]] == ["hello", "hi", "again", "from backup"]


async def test_three_agents_chain_and_record_every_fallback() -> None:
    state = await run([("a", FailingModel(error=connection_error())),
                       ("b", ScriptedChatModel(replies=[AIMessage("I won't do that.")])),
                       ("c", ScriptedChatModel(replies=[AIMessage(GOOD)]))])
    assert [(e["kind"], e.get("from"), e.get("to"), e.get("agent")) for e in state["events"]] == [
        ("fallback", "a", "b", None), ("fallback", "b", "c", None), ("answered_by", None, None, "c")]
    assert state["messages"][-1].content == GOOD


async def test_last_agent_errors_are_raised() -> None:
    with pytest.raises(openai.APIConnectionError):
        await run([("main", FailingModel(error=connection_error())),
                   ("backup", FailingModel(error=connection_error()))])


async def test_last_agent_bad_result_stands_and_is_noted() -> None:
    state = await run([("main", FailingModel(error=connection_error())),
                       ("backup", ScriptedChatModel(replies=[AIMessage("I cannot help with that.")]))])
    assert state["events"][-1] == {"kind": "answered_by", "agent": "backup", "attempts": 2, "outcome": "completed",
                                   "failure": "refusal: 'I cannot help'"}
    assert state["messages"][-1].content == "I cannot help with that."


async def test_errors_outside_retry_on_are_bugs_and_propagate_at_once() -> None:
    second = backup()
    with pytest.raises(RuntimeError, match="bug"):
        await run([("main", FailingModel(error=RuntimeError("bug"))), ("backup", second)])
    assert second.received == []


async def test_custom_failure_check_and_retry_on() -> None:
    def wants_four(messages: list[BaseMessage], outcome: str) -> str | None:
        return None if "4" in messages[-1].text else "no 4 in the answer"

    state = await run([("main", ScriptedChatModel(replies=[AIMessage("five")])), ("backup", backup())],
                      should_fall_back=wants_four)
    assert state["events"][0]["reason"] == "no 4 in the answer"
    state = await run([("main", FailingModel(error=KeyError("k"))), ("backup", backup())], retry_on=(KeyError,))
    assert state["events"][0]["reason"] == "KeyError: 'k'"


@pytest.mark.parametrize(("messages", "outcome", "reason"), [
    ([AIMessage("Sure: 4.")], "completed", None),
    ([AIMessage("I can't help but notice it is 4.")], "completed", "refusal: \"I can't help\""),  # false positive
    ([AIMessage("I’m unable to comply.")], "completed", "refusal: 'I’m unable to comply'"),
    ([], "completed", "no model reply"),
    ([AIMessage("4")], "step_limit", "step limit reached"),
])
def test_default_failure(messages: list[BaseMessage], outcome: str, reason: str | None) -> None:
    assert default_failure(messages, outcome) == reason


def test_agents_are_required_and_named_uniquely() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fallback_graph([])
    loop = tool_loop(backup())
    with pytest.raises(ValueError, match="unique"):
        fallback_graph([("a", loop), ("a", loop)])


async def test_with_a_checkpointer_only_new_turns_are_passed_and_attempts_stay_apart() -> None:
    first = FailingModel(replies=[AIMessage("", tool_calls=[call("add", {"a": 1, "b": 1}, "c1")])],
                         error=connection_error())
    second = ScriptedChatModel(replies=[AIMessage("B1"), AIMessage("B2")])
    graph = fallback_graph([("main", tool_loop(first, [add])), ("backup", tool_loop(second))],
                           checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({"messages": [HumanMessage("q1")]}, config)
    state = await graph.ainvoke({"messages": [HumanMessage("q2")]}, config)
    assert [m.content for m in state["messages"]] == ["q1", "B1", "q2", "B2"]
    assert [m.content for m in second.received[1]] == ["q1", "B1", "q2"]  # no trace of the failed attempts
    assert [e["kind"] for e in state["events"]] == ["fallback", "answered_by"] * 2  # a thread keeps its events
