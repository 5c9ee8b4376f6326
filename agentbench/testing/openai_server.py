"""A local OpenAI-compatible chat-completions server for tests and benchmarks.

The project talks to models over HTTP (langchain-openai ``ChatOpenAI`` against vLLM or
any OpenAI-compatible server). This module lets that path be exercised without a GPU:
:class:`OpenAITestServer` speaks the real wire format of ``POST /v1/chat/completions``
as vLLM and OpenAI do, both non-streaming and streaming (server-sent events ending in
``data: [DONE]``, with the ``stream_options.include_usage`` usage chunk), including
tool calls, reasoning text and OpenAI-style error bodies. What it answers is decided
by a *responder*: a plain (sync or async) function from :class:`ChatRequest` to
:class:`Reply`.

Example::

    from openai import OpenAI
    from agentbench.testing.openai_server import OpenAITestServer, Reply, scripted_responder

    with OpenAITestServer(scripted_responder([Reply(content="hello")])) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="x")
        client.chat.completions.create(model="test-model", messages=[...])
        assert srv.requests[0].messages == [...]

The server runs aiohttp on its own event loop in a background thread, so it can be used
from synchronous and asynchronous tests alike. For load benchmarks, run it in its own
process so it does not share the GIL with the client::

    python -m agentbench.testing.openai_server --port 8123 \\
        --responder package.module:factory [--model-name NAME ...] [--delay-s 0]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "ChatRequest",
    "OpenAITestServer",
    "Reply",
    "Responder",
    "ToolCallReply",
    "echo_responder",
    "main",
    "scripted_responder",
]

DEFAULT_RESPONDER = "agentbench.testing.openai_server:echo_responder"

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
    """

    content: str = ""
    tool_calls: list[ToolCallReply] = field(default_factory=list)
    reasoning: str | None = None
    status: int = 200
    error_message: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None


Responder = Callable[[ChatRequest], Reply | Awaitable[Reply]]
"""Decides the reply to a request; may be sync or async.

Sync responders run on the server's event loop, so they must be quick; anything slow
(or that waits on something) should be an ``async def``.
"""


# ---------------------------------------------------------------------------
# Responders
# ---------------------------------------------------------------------------


def scripted_responder(replies: Sequence[Reply]) -> Responder:
    """Return a responder that gives ``replies`` in order, one per request.

    After the last one it answers HTTP 500 saying the script is exhausted, so a test that
    makes more calls than it scripted fails loudly instead of hanging or looping.
    """
    script = list(replies)
    iterator: Iterator[Reply] = iter(script)
    # A lock, because the same responder may be shared by servers on different threads.
    lock = threading.Lock()

    def respond(_request: ChatRequest) -> Reply:
        with lock:
            nxt = next(iterator, None)
        if nxt is None:
            return Reply(
                status=500,
                error_message=f"scripted_responder: script exhausted after {len(script)} replies",
            )
        return nxt

    return respond


def echo_responder() -> Responder:
    """Return a responder that replies with the text of the last user message.

    It is the default ``--responder`` of the module CLI: each reply depends only on its
    own request, which makes it easy to check that concurrent clients get their own answer.
    """

    def respond(request: ChatRequest) -> Reply:
        for message in reversed(request.messages):
            if message.get("role") == "user":
                return Reply(content=_message_text(message))
        return Reply(content="")

    return respond


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


# ---------------------------------------------------------------------------
# Wire format
# ---------------------------------------------------------------------------


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
    usage: dict[str, int]
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
            usage={
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
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
            message["reasoning"] = reply.reasoning
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
            yield {"reasoning": piece}
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


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class OpenAITestServer:
    """An OpenAI-compatible ``/v1/chat/completions`` server driven by a responder.

    Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /health``.
    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        responder: decides each reply (see :data:`Responder`).
        host: the interface to listen on.
        port: the TCP port; 0 picks a free one (read it back from :attr:`port`).
        model_names: the models served; any other name gets a 404 like vLLM's.
        chunk_chars: characters per streamed content / argument delta.
        delay_s: if > 0, seconds to wait before the first byte of every completion,
            to emulate time-to-first-token.
        record_requests: append every valid completion request to :attr:`requests`
            (turn off for long benchmarks, so memory does not grow).
    """

    def __init__(
        self,
        responder: Responder,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_names: Sequence[str] = ("test-model",),
        chunk_chars: int = 8,
        delay_s: float = 0.0,
        record_requests: bool = True,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be >= 1")
        self._responder = responder
        self._host = host
        self._requested_port = port
        self._model_names = tuple(model_names)
        self._chunk_chars = chunk_chars
        self._delay_s = delay_s
        self._record = record_requests
        #: Completion requests received (validated ones, in arrival order).
        self.requests: list[ChatRequest] = []
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> OpenAITestServer:
        """Start serving on a background thread; return once the port is listening."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="openai-test-server", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self.astart(), loop).result(timeout=30)
        except BaseException:
            self._stop_loop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving and close all connections; calling it again does nothing."""
        if self._loop is None:
            return
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self.astop(), self._loop)
            future.result(timeout=30)
        self._stop_loop()

    async def astart(self) -> None:
        """Start serving on the running event loop (what :meth:`start` does in its thread).

        For callers that own an event loop, such as the module CLI.
        """
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/health", self._handle_health)
        # No access log: at benchmark concurrency it costs time and floods the output.
        # A short shutdown timeout, so stop() does not wait on streams a client left open.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._requested_port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def astop(self) -> None:
        """Stop serving on the running event loop (the counterpart of :meth:`astart`)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        self._loop = None
        # _thread stays set: a stopped server is not restarted (its port may be gone).

    def __enter__(self) -> OpenAITestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port being listened on (the real one when 0 was asked for)."""
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` to give clients, e.g. ``http://127.0.0.1:8123/v1``."""
        host = self._host
        # A wildcard bind address is not something a client can connect to.
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}/v1"

    # -- handlers --------------------------------------------------------------

    async def _handle_health(self, _request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _handle_models(self, _request: web.Request) -> web.Response:
        created = int(time.time())
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "agentbench"}
            for name in self._model_names
        ]
        return web.json_response({"object": "list", "data": data}, dumps=_dumps)

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            return _error_response(400, f"Invalid JSON body: {exc}")
        headers = {k.lower(): v for k, v in request.headers.items()}
        parsed = _parse_body(body, headers, self._model_names)
        if isinstance(parsed, web.Response):
            return parsed
        if self._record:
            self.requests.append(parsed)
        try:
            reply = await self._call_responder(parsed)
        except Exception as exc:
            # Surface responder bugs to the test as a 500 carrying the exception text.
            return _error_response(500, f"responder raised {type(exc).__name__}: {exc}")
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
        if reply.status != 200:
            return _error_response(reply.status, reply.error_message or f"HTTP {reply.status}")
        completion = _Completion.build(parsed, reply)
        if not parsed.stream:
            return web.json_response(completion.body(), dumps=_dumps)
        return await self._stream(request, completion, parsed.include_usage)

    async def _call_responder(self, request: ChatRequest) -> Reply:
        result = self._responder(request)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, Reply):
            raise TypeError(f"responder returned {type(result).__name__}, not Reply")
        return result

    async def _stream(
        self, request: web.Request, completion: _Completion, include_usage: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        await response.prepare(request)
        try:
            # One write per event, as a real server sends them (they arrive as separate
            # network chunks); aiohttp only awaits a drain once its buffer is large.
            for event in completion.sse_events(self._chunk_chars, include_usage):
                await response.write(event)
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away mid-stream; nothing left to do
        return response


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _load_responder(spec: str) -> Responder:
    """Call the factory named ``package.module:factory`` and return its responder."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"--responder must look like package.module:factory, got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attr)
    responder = factory()
    if not callable(responder):
        raise SystemExit(f"{spec}() returned {type(responder).__name__}, not a responder")
    return responder


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m agentbench.testing.openai_server",
        description="Serve a local OpenAI-compatible /v1/chat/completions endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument(
        "--responder",
        default=DEFAULT_RESPONDER,
        help="package.module:factory; factory() returns a responder (default: echo)",
    )
    parser.add_argument(
        "--model-name",
        action="append",
        dest="model_names",
        help="a served model name; repeat for several (default: test-model)",
    )
    parser.add_argument("--delay-s", type=float, default=0.0, help="delay before first byte")
    parser.add_argument("--chunk-chars", type=int, default=8, help="characters per delta")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    server = OpenAITestServer(
        _load_responder(args.responder),
        host=args.host,
        port=args.port,
        model_names=args.model_names or ("test-model",),
        chunk_chars=args.chunk_chars,
        delay_s=args.delay_s,
        record_requests=False,  # a long-running process must not keep every request
    )
    await server.astart()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The line callers wait for; flushed so a pipe reader sees it immediately.
    print(f"listening on {server.base_url}", flush=True)
    await stop.wait()
    await server.astop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the server in this process until SIGTERM or SIGINT (the module CLI)."""
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    # Under `python -m` this file runs as __main__, a second copy of the module whose
    # Reply class differs from the one responders import; run the canonical module's main.
    from agentbench.testing.openai_server import main as _canonical_main

    _canonical_main()
