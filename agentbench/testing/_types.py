"""The data model of the OpenAI test server: a parsed request, a scripted reply, a responder.

One job: the public dataclasses :class:`ChatRequest`, :class:`Reply` and :class:`ToolCallReply`
and the :data:`Responder` type, which :mod:`agentbench.testing.openai_server` re-exports (import
them from there). They live in this leaf module so the wire format (:mod:`._wire`) and the server
(:mod:`._server`) can use them without importing the public module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ChatRequest:
    """A chat-completions request as the server received it, parsed.

    Attributes:
        model: the requested model name.
        messages: the ``messages`` list, exactly as sent.
        tools: the ``tools`` list, or ``None`` when the request had none.
        stream: whether the client asked for a streamed (SSE) response.
        include_usage: whether ``stream_options.include_usage`` was set.
        headers: the HTTP headers, with lower-cased names.
        body: the raw JSON body (for fields not broken out above, e.g. ``temperature``).
    """

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    stream: bool
    include_usage: bool
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class ToolCallReply:
    """One tool call the assistant makes in a :class:`Reply`.

    Attributes:
        name: the function name.
        arguments: the raw argument text sent on the wire; it may be invalid JSON on
            purpose, to test how clients handle malformed tool calls.
        id: the tool-call id; a fresh ``call_<hex>`` is generated when ``None``.
    """

    name: str
    arguments: str
    id: str | None = None


@dataclass
class Reply:
    """What the server answers to one request.

    Attributes:
        content: the assistant's text (sent as ``null`` when empty and there are tool calls).
        tool_calls: tool calls to make; they set ``finish_reason`` to ``"tool_calls"``.
        reasoning: reasoning text, sent in vLLM's ``reasoning`` field of the message (or
            of stream deltas, before the content); omitted when ``None``.
        status: the HTTP status; anything but 200 sends an OpenAI-style error body
            ``{"error": {"message", "type", "param", "code"}}`` with ``error_message``.
        error_message: the error text for a non-200 ``status``.
        prompt_tokens: the reported prompt token count; by default the number of
            whitespace-separated words in all message texts (deterministic, not a tokenizer).
        completion_tokens: the reported completion token count; by default the number of
            words in content, reasoning and tool-call names and arguments.
        finish_reason: overrides the finish reason (e.g. ``"length"``); by default
            ``"tool_calls"`` when there are tool calls, else ``"stop"``.
        reasoning_field: the field name the reasoning goes in: ``"reasoning"`` (vLLM now) or
            ``"reasoning_content"`` (older vLLM, and other servers).
        reasoning_tokens: when set, reported as ``usage.completion_tokens_details.reasoning_tokens``
            (as OpenAI reports it; vLLM's chat completions do not send it).
    """

    content: str = ""
    tool_calls: list[ToolCallReply] = field(default_factory=list)
    reasoning: str | None = None
    status: int = 200
    error_message: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    reasoning_field: str = "reasoning"
    reasoning_tokens: int | None = None


Responder = Callable[[ChatRequest], Reply | Awaitable[Reply]]
"""Decides the reply to a request; may be sync or async.

Sync responders run on the server's event loop, so they must be quick; anything slow
(or that waits on something) should be an ``async def``.
"""
