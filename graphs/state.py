"""State and event helpers shared by the multi-model architecture graphs (router, fallback, hierarchy).

Every architecture graph has the state ``ArchState``: the conversation, how the turn ended, and
``events``, the architecture's own decisions in order (a route, a fallback, a delegation). An
event is a JSON-serialisable dict with at least ``kind``; when the architecture did model work
that is not in ``messages`` (a router's own call, a failed attempt, a worker) the event carries
its cost as ``usage`` (see ``usage_of``) so the runner can add it to the run's cost.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from .tool_loop import BINDING_KEY, META, Outcome

#: One architecture event: ``{"kind": "route" | "fallback" | "answered_by" | "delegate", ...}``.
Event = dict[str, Any]


class ArchState(TypedDict, total=False):
    """Graph state of every architecture: the tool loop's state plus the architecture's events."""

    messages: Annotated[list[AnyMessage], add_messages]
    outcome: Outcome
    events: Annotated[list[Event], operator.add]


def usage_of(messages: Iterable[BaseMessage], *, model_calls: int | None = None,
             latency_s: float | None = None) -> dict[str, Any]:
    """The cost of the model calls in ``messages``: calls, tokens and model time.

    Tokens are summed over the calls that reported usage and are None when none did (the same
    rule the run records use). ``model_calls`` and ``latency_s`` override the counted values, for
    work whose messages were not kept (a router's call, for instance).
    """
    replies = [m for m in messages if isinstance(m, AIMessage)]
    usages = [m.usage_metadata for m in replies if m.usage_metadata]

    def total(key: str) -> int | None:
        known = [int(u[key]) for u in usages if u.get(key) is not None]  # type: ignore[literal-required]
        return sum(known) if known else None

    model_time = sum(float(m.response_metadata.get(META, {}).get("latency_s") or 0.0) for m in replies)
    return {
        "model_calls": len(replies) if model_calls is None else model_calls,
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "latency_s": model_time if latency_s is None else latency_s,
    }


def text_of(message: BaseMessage) -> str:
    """The text of a message (text parts only, when the content is a list of parts)."""
    return message.text


def last_user_text(messages: Sequence[BaseMessage]) -> str:
    """The text of the last user message ('' when there is none)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return text_of(message)
    return ""


def final_answer(messages: Sequence[BaseMessage]) -> str:
    """The text of the last model reply without tool calls ('' when there is none)."""
    for message in reversed(messages):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return text_of(message)
    return ""


def added_messages(before: Sequence[BaseMessage], after: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages of ``after`` that were not in ``before`` (by id, falling back to position).

    A tool loop only appends, but comparing ids keeps this right if a graph ever rewrites a
    message in place.
    """
    ids = {m.id for m in before if m.id}
    if len(ids) == len(before):
        return [m for m in after if m.id not in ids]
    return list(after[len(before):])


def message_dict(message: BaseMessage) -> dict[str, Any]:
    """A message as a small JSON-serialisable dict (role, content, tool calls, tool call id)."""
    role = {"human": "user", "ai": "assistant"}.get(message.type, message.type)
    record: dict[str, Any] = {"role": role, "content": text_of(message)}
    if isinstance(message, AIMessage) and message.tool_calls:
        record["tool_calls"] = [{"id": c.get("id"), "name": c["name"], "args": c["args"]} for c in message.tool_calls]
    if isinstance(message, ToolMessage):
        record.update(tool_call_id=message.tool_call_id, name=message.name,
                      status=message.response_metadata.get(META, {}).get("status", message.status))
    return record


def inner_config(config: RunnableConfig | None, *, recursion_limit: int | None = None) -> RunnableConfig:
    """The config to run a member graph (specialist, attempt, worker) with.

    A ``LoopBinding`` passed to the architecture is dropped: it would replace the model of every
    member tool loop, so all of them would silently run the same model.
    """
    inner: dict[str, Any] = dict(config or {})
    inner["configurable"] = {k: v for k, v in (inner.get("configurable") or {}).items() if k != BINDING_KEY}
    if recursion_limit is not None:
        inner["recursion_limit"] = recursion_limit
    return RunnableConfig(**inner)  # type: ignore[typeddict-item]


__all__ = [
    "ArchState",
    "Event",
    "added_messages",
    "final_answer",
    "inner_config",
    "last_user_text",
    "message_dict",
    "text_of",
    "usage_of",
]
