"""The load client against the local OpenAI-compatible test server (real HTTP, real SSE)."""

from __future__ import annotations

import asyncio

import pytest

from agentbench.bench.client import BenchRequest, SSEParser, arrival_delays, run_load
from agentbench.bench.dataset import random_requests
from agentbench.bench.metrics import compute_metrics
from agentbench.testing.openai_server import OpenAITestServer, Reply


def test_sse_parser_splits_messages_across_reads() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a": 1}\n\ndata: {"b"') == ['data: {"a": 1}']
    assert p.feed(b': 2}\n\ndata: [DONE]') == ['data: {"b": 2}', "data: [DONE]"]


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
    assert all(o.generated_text == "x" * 40 and len(o.itl) >= 5 for o in load.outputs)
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


def test_text_fallback_pins_output_length() -> None:
    reqs = random_requests(3, 20, 7, seed=0)
    assert [r.prompt_len for r in reqs] == [20, 20, 20]
    assert all(r.extra_body == {"min_tokens": 7} and r.output_len == 7 for r in reqs)
    assert len({r.prompt for r in reqs}) == 3
