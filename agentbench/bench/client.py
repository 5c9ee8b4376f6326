"""The load client: streaming OpenAI requests timed exactly as ``vllm bench serve`` times them
(vLLM 0.24.0 ``benchmarks/lib/endpoint_request_func.py`` and ``benchmarks/serve.py::benchmark``).

- The clock of a request starts (``time.perf_counter``) just before the POST, *inside* the
  concurrency semaphore, so time spent waiting for a slot is not TTFT.
- The first SSE message that carries ``choices`` is the first token, even with empty text.
- ``usage.completion_tokens`` (``stream_options.include_usage``) is the output token count.
- The run's duration is from just before the first request is scheduled to the end of the last.
- Arrival times: all at once (``rate=inf``) or gamma-distributed gaps with shape ``burstiness``
  and mean ``1/rate`` (Poisson at burstiness 1), rescaled so the last arrival is at ``n/rate``;
  drawn from numpy's legacy generator seeded with ``seed`` when numpy is installed (vLLM's exact
  sequence), from Python's ``random`` otherwise.
- One untimed test request goes first, as vLLM's "initial single prompt test run".
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import math
import os
import random
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agentbench.bench.metrics import RequestOutput

__all__ = ["BenchRequest", "LoadResult", "SSEParser", "arrival_delays", "run_load", "send_request"]

ENDPOINTS = ("/v1/completions", "/v1/chat/completions")


@dataclass
class BenchRequest:
    """One synthetic request: the prompt, its length in tokens and the output length to ask for."""

    prompt: str
    prompt_len: int
    output_len: int
    extra_body: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadResult:
    """What one load run returned: every request's outcome and the run's wall duration."""

    outputs: list[RequestOutput]
    duration_s: float


class SSEParser:
    """Splits a byte stream into server-sent-event messages (vLLM's ``StreamedResponseHandler``)."""

    def __init__(self) -> None:
        self.buffer = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return every complete message (``data: ...`` text, stripped)."""
        self.buffer += self._decoder.decode(data)
        messages = []
        while "\n\n" in self.buffer:
            message, self.buffer = self.buffer.split("\n\n", 1)
            message = message.strip()
            if message:
                messages.append(message)
        # A trailing message without its blank line is complete when it parses (as vLLM does).
        if self.buffer.startswith("data: "):
            content = self.buffer.removeprefix("data: ").strip()
            if content == "[DONE]":
                messages.append(self.buffer.strip())
                self.buffer = ""
            elif content:
                try:
                    json.loads(content)
                except json.JSONDecodeError:
                    pass
                else:
                    messages.append(self.buffer.strip())
                    self.buffer = ""
        return messages


def _payload(endpoint: str, model: str, req: BenchRequest, ignore_eos: bool) -> dict[str, Any]:
    body: dict[str, Any]
    if endpoint.endswith("chat/completions"):
        body = {"model": model, "messages": [{"role": "user", "content": [{"type": "text", "text": req.prompt}]}],
                "max_completion_tokens": req.output_len}
    else:
        body = {"model": model, "prompt": req.prompt, "repetition_penalty": 1.0, "max_tokens": req.output_len,
                "logprobs": None}
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    if ignore_eos:
        body["ignore_eos"] = True
    body.update(req.extra_body)
    return body


def _headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return headers


async def send_request(session: aiohttp.ClientSession, url: str, model: str, req: BenchRequest, *,
                       ignore_eos: bool = False) -> RequestOutput:
    """Send one streaming request to ``url`` (``.../v1/completions`` or ``.../v1/chat/completions``)
    and time it like vLLM's request function for that endpoint."""
    chat = url.endswith("chat/completions")
    if not chat and not url.endswith("completions"):
        raise ValueError(f"bench URL must end with /v1/completions or /v1/chat/completions, got {url}")
    out = RequestOutput(prompt_len=req.prompt_len)
    text: list[str] = []
    first = False
    st = time.perf_counter()
    out.start_time = last = st
    try:
        async with session.post(url, json=_payload(url, model, req, ignore_eos), headers=_headers()) as resp:
            if resp.status != 200:
                out.error = f"HTTP {resp.status} {resp.reason or ''}: {(await resp.text())[:300]}"
                return out
            parser = SSEParser()
            async for data in resp.content.iter_any():
                data = data.strip()
                if not data:
                    continue
                for message in parser.feed(data):
                    if message.startswith(":"):  # SSE comment (keep-alive ping)
                        continue
                    chunk = message.removeprefix("data: ")
                    if chunk == "[DONE]":
                        continue
                    now = time.perf_counter()
                    event = json.loads(chunk)
                    if choices := event.get("choices"):
                        if not first:
                            first = True
                            out.ttft = now - st
                        else:
                            out.itl.append(now - last)
                        piece = choices[0].get("delta", {}).get("content") if chat else choices[0].get("text")
                        text.append(piece or "")
                        last = now
                    elif usage := event.get("usage"):
                        out.output_tokens = usage.get("completion_tokens") or 0
                        if usage.get("prompt_tokens") is not None:
                            out.prompt_len = usage["prompt_tokens"]
                        if chat:  # vLLM's chat client moves its end mark on every message, usage included
                            last = now
        out.generated_text = "".join(text)
        out.latency = last - st
        # vLLM's chat client calls any 200 a success; its completions client needs a first token.
        out.success = first or chat
        if not out.success:
            out.error = "no message with choices arrived (no first token)"
    except Exception:
        out.success = False
        out.error = traceback.format_exc(limit=5)
    return out


def arrival_delays(n: int, rate: float, burstiness: float = 1.0, seed: int = 0) -> list[float]:
    """Cumulative send offsets (seconds from the start) for ``n`` requests at ``rate`` per second
    with gamma(``burstiness``) gaps, rescaled to end at ``n / rate`` (vLLM's ``get_request``)."""
    if n < 1:
        raise ValueError(f"need at least one request, got {n}")
    if rate <= 0 or burstiness <= 0:
        raise ValueError(f"request rate and burstiness must be positive, got {rate} and {burstiness}")
    if math.isinf(rate):
        return [0.0] * n
    if math.isinf(burstiness):
        gaps = [1.0 / rate] * n
    else:
        theta = 1.0 / (rate * burstiness)
        try:
            import numpy as np

            gaps = [float(g) for g in np.random.RandomState(seed).gamma(burstiness, theta, size=n)]
        except ImportError:
            rng = random.Random(seed)
            gaps = [rng.gammavariate(burstiness, theta) for _ in range(n)]
    delays, total = [], 0.0
    for g in gaps:
        total += g
        delays.append(total)
    if delays[-1] != 0:
        factor = (n / rate) / delays[-1]
        delays = [d * factor for d in delays]
    return delays


async def _arrivals(requests: Sequence[BenchRequest], delays: Sequence[float]) -> AsyncIterator[BenchRequest]:
    start = time.time()
    for req, delay in zip(requests, delays):
        if delay > 0:
            wait = start + delay - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        yield req


def make_session(max_concurrency: int | None) -> aiohttp.ClientSession:
    """An aiohttp session set up as vLLM's benchmark sets up its own (pooled keep-alive connections)."""
    connector = aiohttp.TCPConnector(limit=max_concurrency or 0, limit_per_host=max_concurrency or 0,
                                     ttl_dns_cache=300, use_dns_cache=True, keepalive_timeout=60,
                                     enable_cleanup_closed=True, force_close=False)
    return aiohttp.ClientSession(connector=connector, trust_env=True,
                                 timeout=aiohttp.ClientTimeout(total=6 * 60 * 60))


async def run_load(url: str, model: str, requests: Sequence[BenchRequest], *, max_concurrency: int | None = None,
                   request_rate: float = float("inf"), burstiness: float = 1.0, seed: int = 0,
                   ignore_eos: bool = False, test_request: bool = True) -> LoadResult:
    """Send ``requests`` to ``url`` with at most ``max_concurrency`` in flight (None: no limit) at
    ``request_rate`` arrivals per second; return every outcome and the run's duration."""
    if not requests:
        raise ValueError("no requests to send")
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    delays = arrival_delays(len(requests), request_rate, burstiness, seed)
    async with make_session(max_concurrency) as session:
        if test_request:
            probe = await send_request(session, url, model, requests[0], ignore_eos=ignore_eos)
            if not probe.success:
                raise RuntimeError(f"the test request to {url} failed: {probe.error}")
        gate: Any = asyncio.Semaphore(max_concurrency) if max_concurrency else contextlib.nullcontext()

        async def limited(req: BenchRequest) -> RequestOutput:
            async with gate:
                return await send_request(session, url, model, req, ignore_eos=ignore_eos)

        start = time.perf_counter()
        tasks = [asyncio.create_task(limited(req)) async for req in _arrivals(requests, delays)]
        outputs = list(await asyncio.gather(*tasks))
        duration = time.perf_counter() - start
    return LoadResult(outputs=outputs, duration_s=duration)
