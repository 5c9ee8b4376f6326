"""The load client against the local OpenAI-compatible test server (real HTTP, real SSE)."""

from __future__ import annotations

import asyncio
import codecs
import json
import time

import pytest

from agentbench.bench.client import BenchRequest, StreamTimer, arrival_delays, run_load
from agentbench.bench.dataset import random_requests
from agentbench.bench.metrics import RequestOutput, compute_metrics
from agentbench.bench.run import LoadConfig, bench_point
from agentbench.testing.openai_server import OpenAITestServer, Reply


def test_arrivals_inf_poisson_and_rescaled() -> None:
    assert arrival_delays(4, float("inf")) == [0.0] * 4
    d = arrival_delays(50, 10.0, 1.0, seed=1)
    assert d == sorted(d) and d[-1] == pytest.approx(5.0)
    assert arrival_delays(50, 10.0, 1.0, seed=1) == d and arrival_delays(50, 10.0, 1.0, seed=2) != d
    assert arrival_delays(3, 2.0, float("inf")) == pytest.approx([0.5, 1.0, 1.5])
    with pytest.raises(ValueError, match="positive"):
        arrival_delays(3, -1.0)


def test_run_load_counts_usage_tokens_and_respects_concurrency() -> None:
    in_flight, peak = 0, 0

    async def respond(_request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        # 40 chars in 8-char chunks = 5 SSE messages, but 17 tokens by usage
        return Reply(content="x" * 40, completion_tokens=17, prompt_tokens=12)

    reqs = random_requests(8, 16, 17, seed=3)
    with OpenAITestServer(respond, model_names=["m"]) as server:
        url = server.base_url.removesuffix("/v1") + "/v1/chat/completions"
        load = asyncio.run(run_load(url, "m", reqs, max_concurrency=2))
    assert all(o.success for o in load.outputs)
    assert peak == 2
    m = compute_metrics(load.outputs, load.duration_s)
    assert m.total_output == 8 * 17 and m.total_input == 8 * 12
    # every message with choices (role, 5 content pieces, finish) after the first adds a gap
    assert all(len(o.itl) >= 5 for o in load.outputs)
    # the text is only decoded when it is needed (no usage); the reference parse always keeps it
    assert all(o.generated_text == "" for o in load.outputs)
    assert m.tpot_ms.mean > 0 and m.ttft_ms.mean >= 50


def test_http_errors_are_failed_requests_not_crashes() -> None:
    calls = 0

    def respond(_request):
        nonlocal calls
        calls += 1
        return Reply(content="ok") if calls == 1 else Reply(status=500, error_message="overloaded")

    with OpenAITestServer(respond, model_names=["m"]) as server:
        url = server.base_url.removesuffix("/v1") + "/v1/chat/completions"
        load = asyncio.run(run_load(url, "m", [BenchRequest("hi", 1, 4)] * 2, max_concurrency=1))
    assert [o.success for o in load.outputs] == [False, False]
    assert "HTTP 500" in load.outputs[0].error


def test_warmups_are_untimed_copies_of_the_first_request_under_the_cap() -> None:
    seen: list[str] = []
    in_flight, peak = 0, 0

    async def respond(request):
        nonlocal in_flight, peak
        seen.append(request.messages[-1]["content"][0]["text"])
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return Reply(content="x" * 8, completion_tokens=3)

    reqs = [BenchRequest(f"prompt {i}", 2, 3) for i in range(5)]
    with OpenAITestServer(respond, model_names=["m"]) as server:
        url = server.base_url.removesuffix("/v1") + "/v1/chat/completions"
        called = time.perf_counter()
        load = asyncio.run(run_load(url, "m", reqs, max_concurrency=2, warmups=3))
    # the test request, three warm-ups of the first prompt, then the five timed requests
    assert seen[:4] == ["prompt 0"] * 4 and sorted(seen[4:]) == [f"prompt {i}" for i in range(5)]
    assert len(load.outputs) == 5 and peak == 2
    # the timed part starts after the test request and two waves of warm-ups (3 under a cap of 2)
    assert load.started_at - called >= 3 * 0.05
    assert min(o.start_time for o in load.outputs) >= load.started_at


def test_a_failed_warmup_fails_the_point_and_bad_counts_are_refused() -> None:
    calls = 0

    def respond(_request):
        nonlocal calls
        calls += 1
        return Reply(content="ok") if calls != 3 else Reply(status=500, error_message="compile failed")

    with OpenAITestServer(respond, model_names=["m"]) as server:
        url = server.base_url.removesuffix("/v1") + "/v1/chat/completions"
        with pytest.raises(RuntimeError, match=r"1 of 2 warm-up requests .* failed: HTTP 500"):
            asyncio.run(run_load(url, "m", [BenchRequest("hi", 1, 4)] * 2, max_concurrency=1, warmups=2))
        with pytest.raises(ValueError, match="warmups must be 0 or more"):
            asyncio.run(run_load(url, "m", [BenchRequest("hi", 1, 4)], warmups=-1))


def test_text_fallback_pins_output_length() -> None:
    reqs = random_requests(3, 20, 7, seed=0)
    assert [r.prompt_len for r in reqs] == [20, 20, 20]
    assert all(r.extra_body == {"min_tokens": 7} and r.output_len == 7 for r in reqs)
    assert len({r.prompt for r in reqs}) == 3


def _chunk(content: str | None, *, role: bool = False, finish: str | None = None, spaced: bool = False) -> bytes:
    delta: dict = {"role": "assistant", "content": ""} if role else {"content": content}
    event = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], "usage": None}
    sep = (", ", ": ") if spaced else (",", ":")
    return b"data: " + json.dumps(event, separators=sep).encode() + b"\n\n"


def _usage(completion: int, prompt: int = 11, spaced: bool = False) -> bytes:
    event = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": [],
             "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}
    sep = (", ", ": ") if spaced else (",", ":")
    return b"data: " + json.dumps(event, separators=sep).encode() + b"\n\n"


def _completion(text: str) -> bytes:
    event = {"id": "cmpl-1", "object": "text_completion", "choices": [{"index": 0, "text": text}], "usage": None}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


def _timed(reads: list[bytes], *, chat: bool, full_parse: bool) -> RequestOutput:
    ticks = iter(range(1, 10_000))  # a deterministic clock: both paths must read it at the same messages
    out = RequestOutput(prompt_len=5)
    timer = StreamTimer(out, 0.0, chat=chat, clock=lambda: float(next(ticks)), full_parse=full_parse)
    for data in reads:
        timer.feed(data)
    timer.finish()
    return out


def _split(stream: bytes, sizes: list[int]) -> list[bytes]:
    reads, pos, i = [], 0, 0
    while pos < len(stream):
        step = sizes[i % len(sizes)]
        reads.append(stream[pos:pos + step])
        pos, i = pos + step, i + 1
    return reads


CHAT_STREAM = (_chunk(None, role=True) + b": ping\n\n" + _chunk("h\u00e9llo") + _chunk(' "choices":[{ x')
               + _chunk("!", finish="stop") + _usage(4) + b"data: [DONE]\n\n")


@pytest.mark.parametrize("sizes", [[len(CHAT_STREAM)], [1], [7, 13], [50, 3, 200], [len(CHAT_STREAM) - 2, 2]])
def test_fast_path_times_exactly_like_the_full_parse(sizes: list[int]) -> None:
    reads = _split(CHAT_STREAM, sizes)
    fast, full = _timed(reads, chat=True, full_parse=False), _timed(reads, chat=True, full_parse=True)
    for out in (fast, full):
        assert out.success and out.output_tokens == 4 and out.prompt_len == 11
    assert (fast.ttft, fast.itl, fast.latency) == (full.ttft, full.itl, full.latency)
    assert len(full.itl) == 3  # role, three content messages with choices: three gaps; the ping is no message
    assert full.generated_text == 'h\u00e9llo "choices":[{ x!'
    m_fast, m_full = compute_metrics([fast], 10.0), compute_metrics([full], 10.0)
    assert m_fast.to_dict() == m_full.to_dict()


@pytest.mark.parametrize("spaced", [False, True])
def test_fast_path_without_usage_decodes_the_text_and_handles_spaced_json(spaced: bool) -> None:
    stream = _chunk(None, role=True, spaced=spaced) + _chunk("ab", spaced=spaced) + _chunk("c", spaced=spaced)
    stream += b"data: [DONE]\n\n"
    fast = _timed(_split(stream, [9]), chat=True, full_parse=False)
    full = _timed(_split(stream, [9]), chat=True, full_parse=True)
    assert fast.generated_text == full.generated_text == "abc" and fast.output_tokens == 0
    assert (fast.ttft, fast.itl, fast.latency) == (full.ttft, full.itl, full.latency) == (1.0, [1.0, 1.0], 3.0)
    count = lambda text: len(text)  # noqa: E731 - a stand-in tokenizer
    assert compute_metrics([fast], 1.0, count_tokens=count).total_output == 3


def test_completions_stream_ends_at_the_last_choice_not_the_usage() -> None:
    stream = _completion("a") + _completion("") + _completion("b") + _usage(3, spaced=True) + b"data: [DONE]\n\n"
    fast = _timed(_split(stream, [40]), chat=False, full_parse=False)
    full = _timed(_split(stream, [40]), chat=False, full_parse=True)
    assert (fast.ttft, fast.itl, fast.latency, fast.output_tokens) == (1.0, [1.0, 1.0], 3.0, 3)
    assert (full.ttft, full.itl, full.latency, full.output_tokens) == (1.0, [1.0, 1.0], 3.0, 3)
    empty = _timed([_usage(0) + b"data: [DONE]\n\n"], chat=False, full_parse=False)
    assert not empty.success and "no first token" in empty.error


def test_fast_and_full_parse_agree_over_http() -> None:
    reqs = random_requests(6, 16, 9, seed=4)
    with OpenAITestServer(lambda _r: Reply(content="z" * 30, completion_tokens=9), model_names=["m"]) as server:
        url = server.base_url.removesuffix("/v1") + "/v1/chat/completions"
        fast = asyncio.run(run_load(url, "m", reqs, max_concurrency=3))
        full = asyncio.run(run_load(url, "m", reqs, max_concurrency=3, full_parse=True))
    for load in (fast, full):
        m = compute_metrics(load.outputs, load.duration_s)
        assert m.completed == 6 and m.total_output == 54
    assert [len(o.itl) for o in fast.outputs] == [len(o.itl) for o in full.outputs]
    assert all(o.generated_text == "z" * 30 for o in full.outputs)


class VllmStreamedResponseHandler:
    """vLLM 0.24.0's ``StreamedResponseHandler`` (``vllm/benchmarks/lib/endpoint_request_func.py``), verbatim
    but for names: the reference :class:`StreamTimer` is checked against."""

    def __init__(self) -> None:
        self.buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def add_chunk(self, chunk_bytes: bytes) -> list[str]:
        chunk_str = self._decoder.decode(chunk_bytes)
        self.buffer += chunk_str
        messages = []
        while "\n\n" in self.buffer:
            message, self.buffer = self.buffer.split("\n\n", 1)
            message = message.strip()
            if message:
                messages.append(message)
        if self.buffer.startswith("data: "):
            message_content = self.buffer.removeprefix("data: ").strip()
            if message_content == "[DONE]":
                messages.append(self.buffer.strip())
                self.buffer = ""
            elif message_content:
                try:
                    json.loads(message_content)
                    messages.append(self.buffer.strip())
                    self.buffer = ""
                except json.JSONDecodeError:
                    pass
        return messages


def _vllm_timed(reads: list[tuple[float, bytes]], *, chat: bool) -> RequestOutput:
    """The body of vLLM 0.24.0's ``async_request_openai_chat_completions`` / ``async_request_openai_completions``
    for a 200 response, line by line, with ``time.perf_counter()`` reading the arrival time of the network
    read being handled (the request starts at 0)."""
    output = RequestOutput(prompt_len=5)
    st = 0.0
    generated_text, ttft, most_recent_timestamp, first_chunk_received = "", 0.0, st, False
    handler = VllmStreamedResponseHandler()
    for now, chunk_bytes in reads:
        chunk_bytes = chunk_bytes.strip()
        if not chunk_bytes:
            continue
        for message in handler.add_chunk(chunk_bytes):
            if message.startswith(":"):
                continue
            chunk = message.removeprefix("data: ")
            if chunk == "[DONE]":
                continue
            if chat:
                timestamp = now
                data = json.loads(chunk)
                if choices := data.get("choices"):
                    content = choices[0]["delta"].get("content")
                    if ttft == 0.0:
                        ttft = timestamp - st
                        output.ttft = ttft
                    else:
                        output.itl.append(timestamp - most_recent_timestamp)
                    generated_text += content or ""
                elif usage := data.get("usage"):
                    output.output_tokens = usage.get("completion_tokens")
                    if (pt := usage.get("prompt_tokens")) is not None:
                        output.prompt_len = pt
                most_recent_timestamp = timestamp
            else:
                data = json.loads(chunk)
                if choices := data.get("choices"):
                    text = choices[0].get("text")
                    timestamp = now
                    if not first_chunk_received:
                        first_chunk_received = True
                        output.ttft = now - st
                    else:
                        output.itl.append(timestamp - most_recent_timestamp)
                    most_recent_timestamp = timestamp
                    generated_text += text or ""
                elif usage := data.get("usage"):
                    output.output_tokens = usage.get("completion_tokens")
                    if (pt := usage.get("prompt_tokens")) is not None:
                        output.prompt_len = pt
    output.success = True if chat else first_chunk_received
    output.generated_text = generated_text
    output.latency = most_recent_timestamp - st
    return output


def _ours(reads: list[tuple[float, bytes]], *, chat: bool, full_parse: bool) -> RequestOutput:
    now = [0.0]
    out = RequestOutput(prompt_len=5)
    timer = StreamTimer(out, 0.0, chat=chat, clock=lambda: now[0], full_parse=full_parse)
    for at, data in reads:
        now[0] = at
        timer.feed(data)
    timer.finish()
    return out


def _cuts(stream: bytes, sizes: list[int]) -> list[bytes]:
    """Network reads of about ``sizes`` bytes, never cut beside whitespace: vLLM's client strips every
    read before parsing (``chunk_bytes.strip()``), so a cut there changes what *it* parses (a cut after
    ``data:`` loses the message). Real reads end at message boundaries or inside the JSON."""
    reads, pos, i = [], 0, 0
    while pos < len(stream):
        end = min(pos + sizes[i % len(sizes)], len(stream))
        while end < len(stream) and (stream[end - 1:end].isspace() or stream[end:end + 1].isspace()):
            end += 1
        reads.append(stream[pos:end])
        pos, i = end, i + 1
    return reads


COMPLETION_STREAM = (_completion("a") + b": ping\n\n" + _completion("") + _completion('b "choices":[{')
                     + _usage(3, spaced=True) + b"data: [DONE]\n\n")


@pytest.mark.parametrize("chat", [True, False])
@pytest.mark.parametrize("sizes", [[10_000], [1], [7, 13], [50, 3, 200], [2, 1]])
def test_stream_timer_times_and_counts_exactly_as_vllms_own_client(chat: bool, sizes: list[int]) -> None:
    stream = CHAT_STREAM if chat else COMPLETION_STREAM
    reads = [(0.5 + i, data) for i, data in enumerate(_cuts(stream, sizes))]  # read i arrives at 0.5 + i s
    vllm = _vllm_timed(reads, chat=chat)
    assert vllm.ttft > 0 and vllm.success  # the reference saw the stream
    for full_parse in (False, True):
        ours = _ours(reads, chat=chat, full_parse=full_parse)
        assert (ours.ttft, ours.itl, ours.latency, ours.success) == (vllm.ttft, vllm.itl, vllm.latency, vllm.success)
        assert (ours.output_tokens, ours.prompt_len) == (vllm.output_tokens, vllm.prompt_len)
        if full_parse:  # the fast path decodes the text only when the server sent no usage
            assert ours.generated_text == vllm.generated_text


class _WindowRecorder:
    """Stands in for the telemetry sampler: records the window a point asks for."""

    def __init__(self) -> None:
        self.windows: list[tuple[float, float]] = []

    def record(self, t0: float, t1: float, **_kw: object) -> dict:
        self.windows.append((t0, t1))
        return {"summary": {}}


def test_a_points_telemetry_window_is_its_timed_part_only() -> None:
    async def respond(_request):
        await asyncio.sleep(0.05)
        return Reply(content="x" * 8, completion_tokens=3)

    recorder = _WindowRecorder()
    with OpenAITestServer(respond, model_names=["m"]) as server:
        cfg = LoadConfig(base_url=server.base_url, model="m", endpoint="/v1/chat/completions", warmups=4)
        called = time.perf_counter()
        point = asyncio.run(bench_point(cfg, [BenchRequest("hi", 1, 3)] * 2, concurrency=1,
                                        sampler=recorder))  # type: ignore[arg-type]
    [(t0, t1)] = recorder.windows
    assert t0 - called >= 5 * 0.05  # after the test request and four warm-ups at concurrency 1
    assert t1 - t0 == pytest.approx(point["metrics"]["duration_s"], abs=0.02)
    assert LoadConfig(base_url="u", model="m").warmups_for(8) == 8 and cfg.warmups_for(8) == 4
    assert LoadConfig(base_url="u", model="m").warmups_for(None) == 16
    assert LoadConfig(base_url="u", model="m", metrics=False).metrics_url is None
