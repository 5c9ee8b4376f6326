"""The wire format of the OpenAI test server: request validation and response encoding.

One job: turn HTTP bodies into :class:`~agentbench.testing.openai_server.ChatRequest` (validated
the way vLLM does, :func:`_parse_body`) and a :class:`~agentbench.testing.openai_server.Reply`
into what vLLM and OpenAI send: the ``chat.completion`` object, the ``chat.completion.chunk``
server-sent events ending in ``data: [DONE]`` (with the ``include_usage`` chunk), OpenAI-style
error bodies, and the deterministic word-count token usage.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from agentbench.testing._types import ChatRequest, Reply

# Error "type" names as vLLM (and the openai SDK's exception classes) use them.
_ERROR_TYPES = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}


def _message_text(message: dict[str, Any]) -> str:
    """The text of a message whose content is a string, a list of parts, or null."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _count_words(text: str) -> int:
    return len(text.split())


def _dumps(obj: Any) -> str:
    # Compact, like vLLM's pydantic JSON; ensure_ascii=False keeps multi-byte text intact.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _error_response(status: int, message: str) -> web.Response:
    """An OpenAI/vLLM-style error body, which the openai SDK maps to its exceptions."""
    err_type = _ERROR_TYPES.get(status, "InternalServerError" if status >= 500 else "Error")
    body = {"error": {"message": message, "type": err_type, "param": None, "code": status}}
    return web.Response(status=status, text=_dumps(body), content_type="application/json")


@dataclass
class _Completion:
    """One reply, resolved for sending: ids, token counts and finish reason fixed."""

    id: str
    created: int
    model: str
    reply: Reply
    call_ids: list[str]
    usage: dict[str, Any]
    finish_reason: str

    @classmethod
    def build(cls, request: ChatRequest, reply: Reply) -> _Completion:
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = sum(_count_words(_message_text(m)) for m in request.messages)
        completion = reply.completion_tokens
        if completion is None:
            texts = [reply.content, reply.reasoning or ""]
            texts += [f"{tc.name} {tc.arguments}" for tc in reply.tool_calls]
            completion = sum(_count_words(t) for t in texts)
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        return cls(
            id=f"chatcmpl-{uuid.uuid4().hex}",
            created=int(time.time()),
            model=request.model,
            reply=reply,
            call_ids=[tc.id or f"call_{uuid.uuid4().hex[:24]}" for tc in reply.tool_calls],
            usage=_usage(prompt, completion, reply.reasoning_tokens),
            finish_reason=finish,
        )

    def message(self) -> dict[str, Any]:
        """The ``choices[0].message`` of a non-streamed response."""
        reply = self.reply
        message: dict[str, Any] = {
            "role": "assistant",
            # OpenAI and vLLM send null content when the assistant only calls tools.
            "content": None if (reply.tool_calls and not reply.content) else reply.content,
            "refusal": None,
            # vLLM always sends the list (empty when no calls); clients accept both.
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                }
                for tc, call_id in zip(reply.tool_calls, self.call_ids, strict=True)
            ],
        }
        if reply.reasoning is not None:
            message[reply.reasoning_field] = reply.reasoning
        return message

    def body(self) -> dict[str, Any]:
        """The full non-streamed ``chat.completion`` object."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(),
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One ``chat.completion.chunk`` carrying ``delta``."""
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def deltas(self, chunk_chars: int) -> Iterator[dict[str, Any]]:
        """The stream deltas in order: role, reasoning, content, then each tool call."""
        yield {"role": "assistant", "content": ""}
        for piece in _pieces(self.reply.reasoning or "", chunk_chars):
            yield {self.reply.reasoning_field: piece}
        for piece in _pieces(self.reply.content, chunk_chars):
            yield {"content": piece}
        for index, (tc, call_id) in enumerate(
            zip(self.reply.tool_calls, self.call_ids, strict=True)
        ):
            # The first delta of a call names it; later ones only add argument text,
            # which clients concatenate by ``index``.
            head = {"name": tc.name, "arguments": ""}
            yield {
                "tool_calls": [
                    {"index": index, "id": call_id, "type": "function", "function": head}
                ]
            }
            for piece in _pieces(tc.arguments, chunk_chars):
                yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}

    def sse_events(self, chunk_chars: int, include_usage: bool) -> Iterator[bytes]:
        """The encoded SSE events of the whole stream, ``data: [DONE]`` included."""
        chunks = [self.chunk(d) for d in self.deltas(chunk_chars)]
        chunks.append(self.chunk({}, self.finish_reason))
        if include_usage:
            # Per OpenAI, with include_usage every chunk has "usage": null except the
            # last one, which has the usage and no choices.
            for c in chunks:
                c["usage"] = None
            chunks.append({**self.chunk({}), "choices": [], "usage": self.usage})
        for c in chunks:
            yield f"data: {_dumps(c)}\n\n".encode()
        yield b"data: [DONE]\n\n"


def _usage(prompt: int, completion: int, reasoning: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


# ---------------------------------------------------------------------------
# Request parsing
# ---------------------------------------------------------------------------


def _parse_body(
    body: Any, headers: dict[str, str], model_names: Sequence[str]
) -> ChatRequest | web.Response:
    """Validate a chat-completions body the way vLLM does; an error response if invalid."""
    if not isinstance(body, dict):
        return _error_response(400, "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str):
        return _error_response(400, "`model` is required and must be a string.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return _error_response(400, "`messages` must be a list of objects.")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return _error_response(400, "`tools` must be a list.")
    stream = bool(body.get("stream", False))
    stream_options = body.get("stream_options")
    # vLLM and OpenAI both reject stream_options on a non-streamed request; mirroring
    # that catches a client bug here rather than against the real server.
    if stream_options and not stream:
        return _error_response(400, "Stream options can only be defined when `stream=True`.")
    if model not in model_names:
        return _error_response(404, f"The model `{model}` does not exist.")
    include_usage = isinstance(stream_options, dict) and bool(stream_options.get("include_usage"))
    return ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        stream=stream,
        include_usage=include_usage,
        headers=headers,
        body=body,
    )


