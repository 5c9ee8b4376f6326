"""Tests for agentbench.testing.openai_server: the wire format seen by real clients.

Every test talks to the server over real HTTP through the official ``openai`` SDK or
langchain-openai's ``ChatOpenAI``, so a wire-format mistake shows up as a client error
or a wrong parsed value, not just as a different dict.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from agentbench.testing.openai_server import (
    ChatRequest,
    OpenAITestServer,
    Reply,
    ToolCallReply,
    echo_responder,
    scripted_responder,
)

# Typed Any: the openai SDK's TypedDict params are stricter than these plain literals.
CALC_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}
USER: Any = [{"role": "user", "content": "what is one plus two"}]


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return expression


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start servers for a test (``serve(responder, **kw)``) and stop them all after it."""
    servers: list[OpenAITestServer] = []

    def _serve(responder: Any, **kwargs: Any) -> OpenAITestServer:
        srv = OpenAITestServer(responder, **kwargs).start()
        servers.append(srv)
        return srv

    yield _serve
    for srv in servers:
        srv.stop()


def client_for(srv: OpenAITestServer, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.base_url, api_key="x", max_retries=0, **kwargs)


def chat_model(srv: OpenAITestServer, *, streaming: bool = True) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=srv.base_url,
        api_key=SecretStr("x"),
        model="test-model",
        use_responses_api=False,
        stream_usage=True,
        streaming=streaming,
        temperature=0,
        seed=0,
        max_retries=0,
    )


# -- plain text ----------------------------------------------------------------


def test_non_stream_text_and_usage(serve: Any) -> None:
    srv = serve(scripted_responder([Reply(content="three, obviously")]))
    resp = client_for(srv).chat.completions.create(model="test-model", messages=USER)
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == "test-model"
    assert isinstance(resp.created, int)
    choice = resp.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "three, obviously"
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls
    # Default counts: whitespace words of the prompt (5) and of the reply (2).
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 2)
    assert resp.usage.total_tokens == 7


def test_explicit_token_counts_and_reasoning(serve: Any) -> None:
    reply = Reply(content="ok", reasoning="think first", prompt_tokens=100, completion_tokens=7)
    srv = serve(scripted_responder([reply]))
    resp = client_for(srv).chat.completions.create(model="test-model", messages=USER)
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (100, 7)
    assert resp.choices[0].message.model_extra == {"reasoning": "think first"}


def test_stream_text_with_usage_chunk(serve: Any) -> None:
    text = "The answer is three; it is the sum of one and two."
    srv = serve(scripted_responder([Reply(content=text, reasoning="add them")]), chunk_chars=5)
    stream = client_for(srv).chat.completions.create(
        model="test-model",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    first, finish, last = chunks[0], chunks[-2], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == text
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning", "") for c in chunks[:-1]
    )
    assert reasoning == "add them"
    # Real streaming: content arrives in chunk_chars-sized deltas, not all at once.
    assert max(len(c.choices[0].delta.content or "") for c in chunks if c.choices) == 5
    assert finish.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (5, 14)
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"


def test_stream_without_include_usage_has_no_usage_chunk(serve: Any) -> None:
    srv = serve(scripted_responder([Reply(content="hi")]))
    chunks = list(
        client_for(srv).chat.completions.create(model="test-model", messages=USER, stream=True)
    )
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert srv.requests[0].include_usage is False


def test_raw_sse_framing(serve: Any) -> None:
    """The bytes on the wire: ``data: {...}`` events, blank-line separated, then [DONE]."""
    srv = serve(scripted_responder([Reply(content="hi")]))
    body = {
        "model": "test-model",
        "messages": USER,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    req = urllib.request.Request(
        srv.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = resp.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert [p["choices"][0]["delta"] for p in payloads[:-1]] == [
        {"role": "assistant", "content": ""},
        {"content": "hi"},
        {},
    ]
    assert payloads[-1]["choices"] == []
    assert payloads[-1]["usage"] == {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}


# -- tool calls ----------------------------------------------------------------


def test_tool_call_non_stream(serve: Any) -> None:
    args = '{"expression": "1+2"}'
    reply = Reply(tool_calls=[ToolCallReply("calculator", args, id="call_abc")])
    srv = serve(scripted_responder([reply]))
    resp = client_for(srv).chat.completions.create(
        model="test-model",
        messages=USER,
        tools=[CALC_TOOL],
    )
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id == "call_abc"
    assert call.function.name == "calculator"
    assert call.function.arguments == args


def test_parallel_tool_calls_stream(serve: Any) -> None:
    a1 = '{"expression": "1+2", "note": "first of two calls"}'
    a2 = '{"expression": "3*4"}'
    reply = Reply(
        content="Let me compute.",
        tool_calls=[ToolCallReply("calculator", a1), ToolCallReply("calculator", a2)],
    )
    srv = serve(scripted_responder([reply]), chunk_chars=4)
    stream = client_for(srv).chat.completions.create(
        model="test-model",
        messages=USER,
        tools=[CALC_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    content, finish = "", None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        for tc in delta.tool_calls or []:
            if tc.index not in calls:
                # The first delta of each call carries its id, type and name.
                assert tc.id and tc.id.startswith("call_") and tc.type == "function"
                assert tc.function is not None and tc.function.arguments == ""
                calls[tc.index] = {"id": tc.id, "name": tc.function.name or "", "args": ""}
            else:
                assert tc.id is None and tc.function is not None and tc.function.name is None
                calls[tc.index]["args"] += tc.function.arguments or ""
    assert content == "Let me compute."
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[0]["args"], calls[1]["args"]] == [a1, a2]
    assert json.loads(calls[0]["args"])["expression"] == "1+2"
    assert calls[0]["name"] == calls[1]["name"] == "calculator"
    assert calls[0]["id"] != calls[1]["id"]


# -- concurrency -----------------------------------------------------------------


async def test_async_clients_concurrency_32(serve: Any) -> None:
    srv = serve(echo_responder(), record_requests=False)
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)

    async def ask(i: int) -> str:
        stream = await client.chat.completions.create(
            model="test-model",
            messages=[{"role": "user", "content": f"prompt number {i} " * 5}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    try:
        answers = await asyncio.gather(*(ask(i) for i in range(32)))
    finally:
        await client.close()
    assert answers == [f"prompt number {i} " * 5 for i in range(32)]
    assert srv.requests == []  # record_requests=False keeps nothing


async def test_async_responder_and_delay(serve: Any) -> None:
    async def respond(request: ChatRequest) -> Reply:
        await asyncio.sleep(0)
        return Reply(content=f"{len(request.messages)} messages")

    srv = serve(respond, delay_s=0.2)
    client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)
    start = time.perf_counter()
    try:
        resp = await client.chat.completions.create(model="test-model", messages=USER)
    finally:
        await client.close()
    assert time.perf_counter() - start >= 0.2
    assert resp.choices[0].message.content == "1 messages"


# -- langchain-openai --------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False])
def test_langchain_tool_call_and_usage(serve: Any, streaming: bool) -> None:
    reply = Reply(
        tool_calls=[ToolCallReply("calculator", '{"expression": "1+2"}')],
        prompt_tokens=42,
        completion_tokens=9,
    )
    srv = serve(scripted_responder([reply]))
    msg = chat_model(srv, streaming=streaming).bind_tools([calculator]).invoke("what is 1+2?")
    assert isinstance(msg, AIMessage)
    assert [(tc["name"], tc["args"]) for tc in msg.tool_calls] == [
        ("calculator", {"expression": "1+2"})
    ]
    assert msg.tool_calls[0]["id"] and msg.tool_calls[0]["id"].startswith("call_")
    assert msg.invalid_tool_calls == []
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["input_tokens"] == 42
    assert msg.usage_metadata["output_tokens"] == 9
    assert msg.usage_metadata["total_tokens"] == 51
    (req,) = srv.requests
    assert req.stream is streaming
    assert req.include_usage is streaming
    assert req.tools is not None and req.tools[0]["function"]["name"] == "calculator"
    assert req.body["temperature"] == 0 and req.body["seed"] == 0


@pytest.mark.parametrize(
    ("streaming", "bad"),
    [
        (False, '{"expression": "1+'),
        (False, '{"expression": 1+}'),
        (True, '{"expression": 1+}'),
    ],
)
def test_langchain_invalid_tool_call_arguments(serve: Any, streaming: bool, bad: str) -> None:
    srv = serve(scripted_responder([Reply(tool_calls=[ToolCallReply("calculator", bad)])]))
    msg = chat_model(srv, streaming=streaming).bind_tools([calculator]).invoke("what is 1+2?")
    assert isinstance(msg, AIMessage)
    assert msg.tool_calls == []
    (invalid,) = msg.invalid_tool_calls
    assert invalid["name"] == "calculator"
    assert invalid["args"] == bad


def test_langchain_streaming_repairs_truncated_arguments(serve: Any) -> None:
    """Pins a langchain-core behaviour the project must know about.

    When streaming, langchain merges tool-call chunks with a *partial* JSON parser, so
    truncated arguments come back as a valid call with the text cut short, not as an
    invalid_tool_call (non-streaming parses strictly; see the test above).
    """
    bad = '{"expression": "1+'
    srv = serve(scripted_responder([Reply(tool_calls=[ToolCallReply("calculator", bad)])]))
    msg = chat_model(srv, streaming=True).bind_tools([calculator]).invoke("what is 1+2?")
    assert isinstance(msg, AIMessage)
    assert msg.invalid_tool_calls == []
    assert [tc["args"] for tc in msg.tool_calls] == [{"expression": "1+"}]


def test_langchain_text_stream(serve: Any) -> None:
    srv = serve(echo_responder())
    chunks = list(chat_model(srv).stream("a fairly long prompt to be echoed back in pieces"))
    assert "".join(str(c.content) for c in chunks) == (
        "a fairly long prompt to be echoed back in pieces"
    )
    assert len(chunks) > 3
    usage = [c.usage_metadata for c in chunks if c.usage_metadata]
    assert usage and usage[-1]["input_tokens"] == 10 and usage[-1]["output_tokens"] == 10


# -- errors ----------------------------------------------------------------------


def test_reply_status_500_and_400(serve: Any) -> None:
    srv = serve(
        scripted_responder(
            [
                Reply(status=500, error_message="engine died"),
                Reply(status=400, error_message="context too long"),
            ]
        )
    )
    client = client_for(srv)
    with pytest.raises(openai.InternalServerError, match="engine died") as e500:
        client.chat.completions.create(model="test-model", messages=USER)
    assert e500.value.status_code == 500
    assert isinstance(e500.value.body, dict) and e500.value.body["message"] == "engine died"
    # Errors also come back as HTTP errors (not SSE) for streamed requests.
    with pytest.raises(openai.BadRequestError, match="context too long"):
        client.chat.completions.create(model="test-model", messages=USER, stream=True)


def test_script_exhausted_is_500(serve: Any) -> None:
    srv = serve(scripted_responder([Reply(content="only one")]))
    client = client_for(srv)
    client.chat.completions.create(model="test-model", messages=USER)
    with pytest.raises(openai.InternalServerError, match="script exhausted"):
        client.chat.completions.create(model="test-model", messages=USER)


def test_responder_exception_is_500_with_text(serve: Any) -> None:
    def broken(_request: ChatRequest) -> Reply:
        raise KeyError("no scripted answer for scenario s9")

    srv = serve(broken)
    with pytest.raises(openai.InternalServerError, match="no scripted answer for scenario s9"):
        client_for(srv).chat.completions.create(model="test-model", messages=USER)


def test_unknown_model_is_404(serve: Any) -> None:
    srv = serve(echo_responder(), model_names=["qwen3-8b"])
    with pytest.raises(openai.NotFoundError, match=re.escape("The model `gpt-x` does not exist.")):
        client_for(srv).chat.completions.create(model="gpt-x", messages=USER)
    assert srv.requests == []
    models = client_for(srv).models.list()
    assert [m.id for m in models.data] == ["qwen3-8b"]


def test_malformed_bodies_are_400(serve: Any) -> None:
    srv = serve(echo_responder())

    def post(data: bytes) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(srv.base_url + "/chat/completions", data=data)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    status, body = post(b"{not json")
    assert status == 400 and body["error"]["type"] == "BadRequestError"
    assert body["error"]["code"] == 400
    status, body = post(json.dumps({"model": "test-model"}).encode())
    assert status == 400 and "messages" in body["error"]["message"]
    # Like vLLM: stream_options without stream=True is rejected.
    bad = {"model": "test-model", "messages": USER, "stream_options": {"include_usage": True}}
    status, body = post(json.dumps(bad).encode())
    assert status == 400 and "stream" in body["error"]["message"]


def test_health(serve: Any) -> None:
    srv = serve(echo_responder())
    root = srv.base_url.removesuffix("/v1")
    with urllib.request.urlopen(root + "/health", timeout=10) as resp:
        assert resp.status == 200


def test_stop_then_request_is_connection_error() -> None:
    srv = OpenAITestServer(echo_responder()).start()
    client = client_for(srv)
    assert client.chat.completions.create(model="test-model", messages=USER).choices
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="test-model", messages=USER)


def test_context_manager_and_port() -> None:
    with OpenAITestServer(echo_responder()) as srv:
        assert srv.port > 0
        assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
    with pytest.raises(RuntimeError):
        _ = OpenAITestServer(echo_responder()).port


# -- what was recorded ------------------------------------------------------------


def test_request_recorded(serve: Any) -> None:
    srv = serve(echo_responder())
    client = client_for(srv, default_headers={"X-Agentbench-Scenario": "s1"})
    messages: Any = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]},
    ]
    resp = client.chat.completions.create(
        model="test-model",
        messages=messages,
        tools=[CALC_TOOL],
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in resp if c.choices) == "hello there"
    (req,) = srv.requests
    assert req.model == "test-model"
    assert req.messages == messages
    assert req.tools == [CALC_TOOL]
    assert req.stream is True
    assert req.headers["x-agentbench-scenario"] == "s1"
    assert req.headers["authorization"] == "Bearer x"
    assert req.body["messages"] == messages


# -- the module CLI ------------------------------------------------------------------


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agentbench.testing.openai_server",
            "--port",
            "0",
            "--model-name",
            "m1",
            "--model-name",
            "m2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is ready (or exits)
        assert line.startswith("listening on http://127.0.0.1:"), (line, proc.stderr)
        base_url = line.split("listening on ", 1)[1].strip()
        assert base_url.endswith("/v1") and not base_url.endswith(":0/v1")
        client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0)
        resp = client.chat.completions.create(
            model="m2",
            messages=[{"role": "user", "content": "echo me"}],
        )
        assert resp.choices[0].message.content == "echo me"
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
