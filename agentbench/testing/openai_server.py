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

This module is the public face: it re-exports the dataclasses (from :mod:`._types`) and
:class:`OpenAITestServer` (from :mod:`._server`; the wire format is in :mod:`._wire`), and its one
own job is the ready-made responders and the command line.

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
import signal
import threading
from collections.abc import Iterator, Sequence

from agentbench.testing._server import OpenAITestServer
from agentbench.testing._types import ChatRequest, Reply, Responder, ToolCallReply
from agentbench.testing._wire import _message_text

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
    # Under `python -m` this file runs as __main__, a second copy of the module (its own
    # responders, CLI and so on; the dataclasses are shared, from ._types); run the canonical
    # module's main so that one copy is in use.
    from agentbench.testing.openai_server import main as _canonical_main

    _canonical_main()
