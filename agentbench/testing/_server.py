"""The OpenAI test server itself: aiohttp on its own event loop, driven by a responder.

One job: :class:`OpenAITestServer` (re-exported by :mod:`agentbench.testing.openai_server`,
import it from there): its lifecycle on a background thread or a caller's loop, its addresses,
and the HTTP handlers of ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /health``.
Request validation and response encoding are in :mod:`agentbench.testing._wire`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from collections.abc import Sequence

from aiohttp import web

from agentbench.testing._types import ChatRequest, Reply, Responder
from agentbench.testing._wire import _Completion, _dumps, _error_response, _parse_body


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
        self._add_routes(app)
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

    def _add_routes(self, app: web.Application) -> None:
        """More routes of a subclass (the fake vLLM's sleep mode); none here."""

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

