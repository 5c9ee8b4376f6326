"""Fallback chain: try agents in order until one succeeds; the turn is the successful attempt's.

```python
graph = fallback_graph([("small", tool_loop(small_model, tools)), ("large", tool_loop(large_model, tools))],
                       timeout_s=60)
state = await graph.ainvoke({"messages": [HumanMessage("What is 2+2?")]})
state["events"]  # [{"kind": "fallback", "from": "small", "to": "large", "reason": "refusal: ...", ...},
                 #  {"kind": "answered_by", "agent": "large", ...}]
```

One node runs the attempts. Each attempt starts from the state the turn began with, so a failed
attempt's messages never reach ``messages`` (the next agent does not see them either); their cost
is kept in the ``fallback`` event's ``usage``. An attempt fails when it raises one of ``retry_on``
(the endpoint failed), runs past ``timeout_s``, or ``should_fall_back`` finds a reason in its new
messages (``default_failure``: step limit, malformed tool calls, an empty answer, a refusal). The
last agent's result stands whatever it is; if it raises, the exception propagates (a timeout
becomes an ``EndpointError``, which the runner records as an endpoint failure).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer

from agentbench.errors import EndpointError

from .state import ArchState, Event, added_messages, final_answer, inner_config, usage_of
from .tool_loop import META

#: Decides from an attempt's new messages and outcome whether to try the next agent (a reason) or not (None).
FailureCheck = Callable[[list[BaseMessage], str], "str | None"]

#: A final answer that declines the task ("I can't help with that", "I'm unable to assist").
REFUSAL = re.compile(
    r"(?i)\b(?:I\s+can(?:not|['’]t)|I\s+am\s+unable\s+to|I['’]m\s+unable\s+to|I\s+won['’]t|I\s+will\s+not)"
    r"\s+(?:help|assist|do\s+that|comply)"
)


def default_failure(messages: list[BaseMessage], outcome: str) -> str | None:
    """Why an attempt failed, or None: the step limit, a malformed tool call, an empty answer, a refusal."""
    if outcome == "step_limit":
        return "step limit reached"
    malformed = [m.name or "?" for m in messages
                 if isinstance(m, ToolMessage) and m.response_metadata.get(META, {}).get("status") == "malformed"]
    if malformed:
        return f"malformed tool call ({', '.join(malformed)})"
    if not any(isinstance(m, AIMessage) for m in messages):
        return "no model reply"
    answer = final_answer(messages).strip()
    if not answer:
        return "empty final answer"
    refusal = REFUSAL.search(answer)
    if refusal:
        return f"refusal: {refusal.group(0)!r}"
    return None


@dataclass
class _Attempt:
    """What one agent did: its new messages (partial when it failed), outcome and failure."""

    messages: list[BaseMessage]
    outcome: str  # the agent's outcome, or "error" / "timeout"
    wall_s: float
    failure: str | None = None


async def _attempt(agent: CompiledStateGraph[Any, Any, Any, Any], messages: list[BaseMessage],
                   config: RunnableConfig, timeout_s: float | None,
                   retry_on: tuple[type[BaseException], ...]) -> _Attempt:
    """Run one agent on ``messages``; exceptions outside ``retry_on`` propagate.

    The agent is streamed (state after each step) so that a failure part-way still leaves the
    calls it made, and their cost, on record.
    """
    latest: list[BaseMessage] = list(messages)

    async def consume() -> str:
        nonlocal latest
        outcome = "completed"
        async for values in agent.astream({"messages": messages}, config, stream_mode="values"):
            latest = values["messages"]
            outcome = values.get("outcome", outcome)
        return outcome

    start = time.perf_counter()
    try:
        outcome = await (consume() if timeout_s is None else asyncio.wait_for(consume(), timeout_s))
    except asyncio.TimeoutError as exc:
        wall = time.perf_counter() - start
        # wait_for raises the same type as a timeout inside the agent: ours is the one that took timeout_s.
        if timeout_s is None or wall < timeout_s:
            if not isinstance(exc, retry_on):
                raise
            return _Attempt(added_messages(messages, latest), "error", wall, _describe(exc))
        return _Attempt(added_messages(messages, latest), "timeout", wall, f"timed out after {timeout_s:g}s")
    except retry_on as exc:
        return _Attempt(added_messages(messages, latest), "error", time.perf_counter() - start, _describe(exc))
    new = added_messages(messages, latest)
    return _Attempt(new, outcome, time.perf_counter() - start)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def fallback_graph(
    agents: Sequence[tuple[str, CompiledStateGraph[Any, Any, Any, Any]]],
    *,
    should_fall_back: FailureCheck = default_failure,
    retry_on: tuple[type[BaseException], ...] = (openai.APIError, EndpointError, asyncio.TimeoutError),
    timeout_s: float | None = None,
    checkpointer: Checkpointer = None,
    name: str = "fallback",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build a one-node graph over ``ArchState`` that tries ``agents`` (name, tool-loop graph) in order.

    Each failed attempt adds ``{"kind": "fallback", "from", "to", "reason", "outcome", "usage",
    "wall_s"}`` to ``events``; the turn ends with ``{"kind": "answered_by", "agent", "attempts",
    "outcome"}`` (plus ``"failure"`` when the last agent's result would itself have failed). An
    exception outside ``retry_on`` is a bug and propagates at once, from any agent.
    """
    if not agents:
        raise ValueError("fallback_graph needs at least one agent")
    names = [agent_name for agent_name, _ in agents]
    if len(set(names)) != len(names):
        raise ValueError(f"agent names must be unique: {names}")

    async def try_in_order(state: ArchState, config: RunnableConfig) -> dict[str, Any]:
        messages: list[BaseMessage] = list(state["messages"])
        events: list[Event] = []
        for index, (agent_name, agent) in enumerate(agents):
            last = index == len(agents) - 1
            # The last agent has no one to fall back to: its endpoint errors propagate unchanged.
            result = await _attempt(agent, messages, inner_config(config), timeout_s, () if last else retry_on)
            failure = result.failure or should_fall_back(result.messages, result.outcome)
            if last and result.outcome == "timeout":
                raise EndpointError(f"agent {agent_name!r} did not finish within {timeout_s:g}s")
            if failure is None or last:
                answered: Event = {"kind": "answered_by", "agent": agent_name, "attempts": index + 1,
                                   "outcome": result.outcome}
                if failure is not None:
                    answered["failure"] = failure
                return {"messages": result.messages, "outcome": result.outcome, "events": [*events, answered]}
            events.append({"kind": "fallback", "from": agent_name, "to": names[index + 1], "reason": failure,
                           "outcome": result.outcome, "usage": usage_of(result.messages),
                           "wall_s": round(result.wall_s, 6)})
        raise AssertionError("unreachable: the last agent always answers")

    graph = StateGraph(ArchState)
    graph.add_node("attempts", try_in_order)
    graph.add_edge(START, "attempts")
    graph.add_edge("attempts", END)
    return graph.compile(checkpointer=checkpointer, name=name)


__all__ = ["REFUSAL", "FailureCheck", "default_failure", "fallback_graph"]
