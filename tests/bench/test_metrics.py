"""The metric definitions of vllm bench serve, checked on hand-computed cases."""

from __future__ import annotations

import pytest

from agentbench.bench.metrics import BenchMetrics, RequestOutput, compute_metrics, percentile


def _out(start: float, ttft: float, itl: list[float], tokens: int, *, prompt: int = 10,
         tail: float = 0.0) -> RequestOutput:
    return RequestOutput(success=True, start_time=start, ttft=ttft, itl=itl, output_tokens=tokens, prompt_len=prompt,
                         latency=ttft + sum(itl) + tail)


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4], 90) == pytest.approx(3.7)
    assert percentile([5], 99) == 5
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


def test_tpot_uses_usage_tokens_not_chunks_and_itl_pools_gaps() -> None:
    # one request, 3 SSE messages carrying 9 tokens (vLLM packs tokens under load)
    a = _out(0.0, 0.1, [0.2, 0.2], 9)
    b = _out(0.0, 0.3, [0.1], 1)  # one output token: no TPOT sample, TPOT 0 for goodput
    m = compute_metrics([a, b], 1.0)
    assert m.total_output == 10 and m.total_input == 20 and m.completed == 2
    assert m.tpot_ms.mean == pytest.approx((0.5 - 0.1) / 8 * 1000)  # only request a
    assert m.itl_ms.mean == pytest.approx((0.2 + 0.2 + 0.1) / 3 * 1000)  # token-weighted pool
    assert m.ttft_ms.mean == pytest.approx(200.0)
    assert m.e2el_ms.percentiles["p50"] == pytest.approx(450.0)
    assert m.output_throughput == 10 and m.total_token_throughput == 30 and m.request_throughput == 2
    assert m.request_goodput is None


def test_goodput_counts_requests_meeting_every_slo_and_failures_count_zero_tokens() -> None:
    fast = _out(0.0, 0.05, [0.01] * 9, 10)
    slow_first = _out(0.0, 0.5, [0.01] * 9, 10)
    failed = RequestOutput(success=False, error="boom")
    m = compute_metrics([fast, slow_first, failed], 2.0, slos_ms={"ttft": 100, "tpot": 20})
    assert m.request_goodput == 0.5 and m.failed == 1 and m.errors == ["boom"]
    assert m.total_output == 20
    with pytest.raises(ValueError, match="unknown SLO"):
        compute_metrics([fast], 1.0, slos_ms={"itl": 5})


def test_missing_usage_counts_one_token_or_the_given_counter() -> None:
    out = RequestOutput(success=True, ttft=0.1, latency=0.2, generated_text="a b c")
    assert compute_metrics([out], 1.0).total_output == 1
    assert compute_metrics([out], 1.0, count_tokens=lambda t: len(t.split())).total_output == 3


def test_peak_bucket_and_round_trip() -> None:
    reqs = [_out(0.0, 0.1, [0.1] * 4, 5), _out(0.2, 0.1, [0.1] * 4, 5), _out(2.5, 0.1, [0.1], 2)]
    m = compute_metrics(reqs, 3.0)
    assert m.max_output_tokens_per_s == 10 and m.max_concurrent_requests == 2
    assert BenchMetrics.from_dict(m.to_dict()) == m
