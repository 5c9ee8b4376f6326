"""Serving metrics with the exact definitions of vLLM's ``vllm bench serve`` (vLLM 0.24.0,
``vllm/benchmarks/serve.py::calculate_metrics``).

Per request (see :class:`RequestOutput`): TTFT is send -> first SSE message carrying ``choices``;
E2EL (``latency``) is send -> the last message that counted (for the completions endpoint the last
``choices`` message; vLLM's chat client also advances it on the usage message, and so do we there);
ITL is every gap between consecutive ``choices`` messages. Output tokens come from
``usage.completion_tokens``, never from counting chunks.

Over a run: TPOT per request is ``(E2EL - TTFT) / (output_tokens - 1)`` for requests with more
than one output token, averaged per request; ITL gaps are pooled over all requests; throughputs
divide by the wall duration of the whole run; goodput counts requests that meet every given SLO
(a request with one output token has TPOT 0 for this purpose). Percentiles interpolate linearly
like ``numpy.percentile``; standard deviations are population ones like ``numpy.std``; an empty
list reads 0, as in vLLM.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "SLO_METRICS",
    "BenchMetrics",
    "LatencyStats",
    "RequestOutput",
    "compute_metrics",
    "percentile",
]

SLO_METRICS = ("ttft", "tpot", "e2el")


@dataclass
class RequestOutput:
    """One request's outcome, as vLLM's ``RequestFuncOutput`` records it (times in seconds,
    ``start_time`` on the ``time.perf_counter`` clock)."""

    success: bool = False
    latency: float = 0.0
    output_tokens: int = 0
    ttft: float = 0.0
    itl: list[float] = field(default_factory=list)
    prompt_len: int = 0
    error: str = ""
    start_time: float = 0.0
    generated_text: str = ""


@dataclass
class LatencyStats:
    """Mean, median, standard deviation and percentiles of one latency, in milliseconds."""

    mean: float
    median: float
    std: float
    percentiles: dict[str, float]

    @classmethod
    def of(cls, values_s: Sequence[float], percentiles: Sequence[float]) -> LatencyStats:
        """Stats of ``values_s`` (seconds) in milliseconds; an empty list gives zeros (as vLLM)."""
        vals = list(values_s) or [0.0]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        return cls(mean=mean * 1000, median=percentile(vals, 50) * 1000, std=std * 1000,
                   percentiles={_pkey(p): percentile(vals, p) * 1000 for p in percentiles})


def _pkey(p: float) -> str:
    return f"p{int(p) if float(p).is_integer() else p}"


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) with linear interpolation, as ``numpy.percentile``."""
    if not values:
        raise ValueError("percentile of an empty list")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class BenchMetrics:
    """A run's metrics; field names follow ``vllm bench serve``'s result JSON where they exist."""

    completed: int
    failed: int
    total_input: int
    total_output: int
    duration_s: float
    request_throughput: float
    request_goodput: float | None  # None when no SLO was given
    output_throughput: float
    total_token_throughput: float
    ttft_ms: LatencyStats
    tpot_ms: LatencyStats
    itl_ms: LatencyStats
    e2el_ms: LatencyStats
    max_output_tokens_per_s: float
    max_concurrent_requests: int
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchMetrics:
        """Inverse of :meth:`to_dict`."""
        values = dict(data)
        for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
            values[key] = LatencyStats(**values[key])
        return cls(**values)


def compute_metrics(outputs: Sequence[RequestOutput], duration_s: float, *,
                    percentiles: Sequence[float] = (50, 90, 99), slos_ms: Mapping[str, float] | None = None,
                    count_tokens: Callable[[str], int] | None = None) -> BenchMetrics:
    """Metrics of a run of ``outputs`` that took ``duration_s`` (first send -> last finish).

    ``slos_ms`` maps ``ttft``/``tpot``/``e2el`` to a limit in milliseconds (goodput);
    ``count_tokens`` counts a response's tokens when the server reported no usage (vLLM uses the
    tokenizer there, and 1 without one).
    """
    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    slos = dict(slos_ms or {})
    unknown = set(slos) - set(SLO_METRICS)
    if unknown:
        raise ValueError(f"unknown SLO metric(s) {sorted(unknown)}; use {', '.join(SLO_METRICS)}")
    output_lens: list[int] = []
    total_input = completed = good = 0
    itls: list[float] = []
    tpots: list[float] = []
    ttfts: list[float] = []
    e2els: list[float] = []
    for out in outputs:
        if not out.success:
            output_lens.append(0)
            continue
        n = out.output_tokens
        if not n:
            n = count_tokens(out.generated_text) if count_tokens is not None else 1
        output_lens.append(n)
        total_input += out.prompt_len
        tpot = 0.0  # vLLM: a one-token answer has TPOT 0 for goodput and no TPOT sample
        if n > 1:
            tpot = (out.latency - out.ttft) / (n - 1)
            tpots.append(tpot)
        itls += out.itl
        ttfts.append(out.ttft)
        e2els.append(out.latency)
        completed += 1
        measured = {"ttft": out.ttft, "tpot": tpot, "e2el": out.latency}
        if slos and all(limit / 1000 >= measured[name] for name, limit in slos.items()):
            good += 1
    peak_tokens, peak_concurrent = _peaks([o for o in outputs if o.success])
    total_output = sum(output_lens)
    return BenchMetrics(
        completed=completed, failed=len(outputs) - completed, total_input=total_input, total_output=total_output,
        duration_s=duration_s, request_throughput=completed / duration_s,
        request_goodput=good / duration_s if slos else None,
        output_throughput=total_output / duration_s,
        total_token_throughput=(total_input + total_output) / duration_s,
        ttft_ms=LatencyStats.of(ttfts, percentiles), tpot_ms=LatencyStats.of(tpots, percentiles),
        itl_ms=LatencyStats.of(itls, percentiles), e2el_ms=LatencyStats.of(e2els, percentiles),
        max_output_tokens_per_s=peak_tokens, max_concurrent_requests=peak_concurrent,
        errors=[o.error for o in outputs if not o.success][:10],
    )


def _peaks(done: Sequence[RequestOutput]) -> tuple[float, int]:
    """vLLM's busiest 1-second bucket: SSE messages (not tokens) per second, and the requests
    active in the busiest second."""
    if not done:
        return 0.0, 0
    t0 = min(o.start_time for o in done)
    end = max(o.start_time + o.latency for o in done)
    buckets = math.ceil(end - t0) + 1
    tokens = [0] * buckets
    active = [0] * buckets
    for o in done:
        t = o.start_time + o.ttft
        times = [t]
        for gap in o.itl:
            t += gap
            times.append(t)
        for moment in times:
            b = int(moment - t0)
            if 0 <= b < buckets:
                tokens[b] += 1
        for second in range(int(o.start_time - t0), int(o.start_time + o.latency - t0) + 1):
            active[second] += 1
    return float(max(tokens)), max(active)
