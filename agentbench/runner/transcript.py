"""Turning the graph's messages into records: transcript lines, tool calls and model calls."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from agentbench.graphs import META
from agentbench.runner.records import MessageRecord, ModelCallRecord, ToolCallRecord

_RESULT_LIMIT = 20_000  # characters of a tool result kept in the record


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content or []]
    return "".join(parts)


def reasoning_of(message: AIMessage) -> str | None:
    """Reasoning text a server sent beside the answer (vLLM's ``reasoning`` field), if kept."""
    kwargs = message.additional_kwargs
    value = kwargs.get("reasoning_content") or kwargs.get("reasoning")
    return value if isinstance(value, str) and value else None


def message_record(message: BaseMessage) -> MessageRecord:
    """One message as stored in the transcript."""
    content = _text(message.content)
    if isinstance(message, AIMessage):
        invalid = message.response_metadata.get("invalid_tool_calls", [])
        return MessageRecord(
            role="assistant", content=content,
            tool_calls=[{"id": c["id"], "name": c["name"], "args": c["args"]} for c in message.tool_calls
                        if c["id"] not in {i["id"] for i in invalid}],
            invalid_tool_calls=[dict(i) for i in invalid],
            reasoning=reasoning_of(message), fault=message.response_metadata.get("injected_fault"),
        )
    if isinstance(message, ToolMessage):
        return MessageRecord(role="tool", content=content, tool_call_id=message.tool_call_id,
                             name=message.name, status=message.response_metadata.get(META, {}).get("status"))
    if isinstance(message, SystemMessage):
        return MessageRecord(role="system", content=content)
    return MessageRecord(role="user", content=content)


def model_call_records(messages: Sequence[BaseMessage], turn: int) -> list[ModelCallRecord]:
    """Timing and usage of each model call in one turn's messages."""
    records = []
    for step, message in enumerate(m for m in messages if isinstance(m, AIMessage)):
        timing = message.response_metadata.get(META, {})
        usage: dict[str, Any] = dict(message.usage_metadata or {})
        details: dict[str, Any] = dict(usage.get("output_token_details") or {})
        records.append(ModelCallRecord(
            turn=turn, step=step, latency_s=timing.get("latency_s", 0.0), ttft_s=timing.get("ttft_s"),
            input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
            reasoning_tokens=details.get("reasoning"),
        ))
    return records


def tool_call_records(messages: Sequence[BaseMessage], turn: int) -> list[ToolCallRecord]:
    """Each tool call in one turn's messages with its result, status and latency."""
    results = {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}
    records = []
    for step, message in enumerate(m for m in messages if isinstance(m, AIMessage)):
        invalid = {i["id"]: i for i in message.response_metadata.get("invalid_tool_calls", [])}
        for call in message.tool_calls:
            ident = call["id"] or ""  # the graph gives every call an id
            result = results.get(ident)
            meta = result.response_metadata.get(META, {}) if result is not None else {}
            bad = invalid.get(ident)
            raw = bad.get("args") if bad else None
            records.append(ToolCallRecord(
                turn=turn, step=step, id=ident, name=call["name"],
                args=call["args"] if bad is None else {},
                raw_args=raw if isinstance(raw, str) or raw is None else json.dumps(raw),
                status=meta.get("status", "malformed" if bad else "ok"),
                result=_text(result.content)[:_RESULT_LIMIT] if result is not None else "",
                latency_s=meta.get("latency_s", 0.0),
            ))
    return records


def final_answer(messages: Sequence[BaseMessage]) -> str:
    """The text of the turn's last model message without tool calls."""
    for message in reversed(messages):
        if isinstance(message, AIMessage) and not message.tool_calls:
            return _text(message.content)
    return ""


def delegation_events(messages: Sequence[BaseMessage], turn: int) -> list[dict[str, Any]]:
    """Events that tools reported in their artifacts (a delegate tool's worker run and cost)."""
    return [{**m.artifact, "turn": turn} for m in messages
            if isinstance(m, ToolMessage) and isinstance(m.artifact, dict) and m.artifact.get("kind")]


def faults_in(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Faults a test model labelled on its messages (``reference-noisy``)."""
    return [m.response_metadata["injected_fault"] for m in messages
            if isinstance(m, AIMessage) and m.response_metadata.get("injected_fault")]
