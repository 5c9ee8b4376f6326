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
- One untimed test request goes first (vLLM's "initial single prompt test run", which vLLM 0.24.0
  sends only with ``--ready-check-timeout-sec`` above its default 0): a wrong model name or URL fails
  the point at once instead of as N failed requests.
- ``warmups`` untimed copies of the first request then run under the same concurrency cap (vLLM's
  ``--num-warmups``, default 0 there): the first batch at a new batch size can JIT-compile kernels
  in the server (on the H200, a c=8 point without warm-up read a mean TTFT of 1.26 s against 0.18 s
  after one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import re
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from agentbench.bench.metrics import RequestOutput

__all__ = ["BenchRequest", "LoadResult", "StreamTimer", "arrival_delays", "make_session", "proxy_env_configured",
           "resolve_trust_env", "run_load", "send_request"]

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
    """What one load run returned: every request's outcome, the run's wall duration and when its timed
    part began (``time.perf_counter``; the test request and warm-ups come before it)."""

    outputs: list[RequestOutput]
    duration_s: float
    started_at: float = 0.0


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


_CHOICES = re.compile(rb'"choices"\s*:\s*\[\s*[^\]\s]')  # a non-empty top-level "choices" list


def proxy_env_configured() -> bool:
    """Whether aiohttp's ``trust_env`` would change anything: a proxy variable or a netrc file.

    ``trust_env`` costs two thread-pool round trips per request (netrc and proxy lookups), which
    on a small CPU is a measurable share of the client's time, so it is only turned on when needed.
    """
    names = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")
    if any(os.environ.get(n) or os.environ.get(n.upper()) for n in names) or os.environ.get("NETRC"):
        return True
    return os.path.isfile(os.path.expanduser("~/.netrc"))


class StreamTimer:
    """Times one streamed response as vLLM's request functions do, without parsing every message.

    Every ``data:`` message (SSE comments and ``[DONE]`` skipped) gets one clock reading, as in
    vLLM. Whether a message carries a non-empty ``choices`` list (a token, for TTFT and ITL) is
    decided on the raw bytes (``"choices"`` as a key cannot occur inside a JSON string, where quotes
    are escaped); only the other messages (normally just the final usage message) are JSON-parsed.
    The messages with choices are kept as raw bytes and decoded into ``generated_text`` only when the
    server sent no usage (the only case where the text is needed: vLLM then counts its tokens).
    ``full_parse=True`` parses every message the way vLLM does; it is the reference the fast path is
    tested against.
    """

    __slots__ = ("buf", "chat", "clock", "first", "full_parse", "last", "out", "pieces", "st", "usage_seen")

    def __init__(self, out: RequestOutput, st: float, *, chat: bool, clock: Callable[[], float] = time.perf_counter,
                 full_parse: bool = False) -> None:
        self.out, self.st, self.chat, self.clock, self.full_parse = out, st, chat, clock, full_parse
        self.first = False
        self.last = st
        self.buf = b""
        self.pieces: list[bytes] = []
        self.usage_seen = False

    def feed(self, data: bytes) -> None:
        """Add the bytes of one network read."""
        parts = (self.buf + data if self.buf else data).split(b"\n\n")
        rest = parts.pop()
        if parts:
            if self.full_parse:
                for message in parts:
                    self._message(message.strip())
            else:
                self._fast(parts)
        # A trailing message without its blank line is complete when it parses (as vLLM does);
        # a JSON object can only be complete when it ends with "}".
        tail = rest.strip()
        if tail == b"data: [DONE]" or (tail.startswith(b"data: ") and tail.endswith(b"}") and self._parses(tail[6:])):
            self._message(tail)
            rest = b""
        self.buf = rest

    def _fast(self, parts: list[bytes]) -> None:
        """The hot loop: one clock reading and a substring test per message (see the class docstring)."""
        clock, out, pieces = self.clock, self.out, self.pieces
        for message in parts:
            message = message.strip()
            if not message or message[0] == 58 or message in (b"data: [DONE]", b"[DONE]"):  # 58 = ":", an SSE comment
                continue
            now = clock()
            if b'"choices":[{' in message or (b'"choices"' in message and _CHOICES.search(message)):
                if self.first:
                    out.itl.append(now - self.last)
                else:
                    self.first = True
                    out.ttft = now - self.st
                pieces.append(message)
                self.last = now
            else:
                self._other(message[6:] if message.startswith(b"data: ") else message, json.loads, now)

    @staticmethod
    def _parses(body: bytes) -> bool:
        try:
            json.loads(body)
        except ValueError:
            return False
        return True

    def _message(self, message: bytes) -> None:
        """One message, the reference way: every message JSON-parsed, as vLLM does (``full_parse``)
        -- or, on the fast path, only a trailing message completed without its blank line."""
        if not message or message.startswith(b":"):  # blank, or an SSE comment (keep-alive ping)
            return
        body = message[6:] if message.startswith(b"data: ") else message
        if body == b"[DONE]":
            return
        if not self.full_parse:
            self._fast([message])
            return
        now = self.clock()
        event = json.loads(body)
        if event.get("choices"):
            if not self.first:
                self.first = True
                self.out.ttft = now - self.st
            else:
                self.out.itl.append(now - self.last)
            self.pieces.append(message)
            self.last = now
        else:
            self._other(event, None, now)

    def _other(self, body: Any, parse: Callable[[bytes], Any] | None, now: float) -> None:
        """A message without choices: the usage message (or, rarely, something else)."""
        event = parse(body) if parse is not None else body
        if usage := event.get("usage"):
            self.usage_seen = True
            self.out.output_tokens = usage.get("completion_tokens") or 0
            if usage.get("prompt_tokens") is not None:
                self.out.prompt_len = usage["prompt_tokens"]
        if self.chat:  # vLLM's chat client moves its end mark on every message, usage included
            self.last = now

    def finish(self) -> None:
        """Close the request: latency, success, and the text when it is needed (no usage)."""
        out = self.out  # an incomplete message left in the buffer is dropped, as vLLM drops it
        if self.full_parse or not self.usage_seen:
            field_name = "content" if self.chat else "text"
            text = []
            for message in self.pieces:
                choice = json.loads(message[6:] if message.startswith(b"data: ") else message)["choices"][0]
                piece = (choice.get("delta") or {}).get(field_name) if self.chat else choice.get(field_name)
                text.append(piece or "")
            out.generated_text = "".join(text)
        out.latency = self.last - self.st
        # vLLM's chat client calls any 200 a success; its completions client needs a first token.
        out.success = self.first or self.chat
        if not out.success:
            out.error = "no message with choices arrived (no first token)"


async def send_request(session: aiohttp.ClientSession, url: str, model: str, req: BenchRequest, *,
                       ignore_eos: bool = False, full_parse: bool = False) -> RequestOutput:
    """Send one streaming request to ``url`` (``.../v1/completions`` or ``.../v1/chat/completions``)
    and time it like vLLM's request function for that endpoint (see :class:`StreamTimer`)."""
    chat = url.endswith("chat/completions")
    if not chat and not url.endswith("completions"):
        raise ValueError(f"bench URL must end with /v1/completions or /v1/chat/completions, got {url}")
    out = RequestOutput(prompt_len=req.prompt_len)
    body = _payload(url, model, req, ignore_eos)
    headers = _headers()
    st = time.perf_counter()
    out.start_time = st
    timer = StreamTimer(out, st, chat=chat, full_parse=full_parse)
    try:
        async with session.post(url, json=body, headers=headers) as resp:
            if resp.status != 200:
                out.error = f"HTTP {resp.status} {resp.reason or ''}: {(await resp.text())[:300]}"
                return out
            feed = timer.feed
            async for data in resp.content.iter_any():
                feed(data)
        timer.finish()
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


def resolve_trust_env(trust_env: bool | None) -> bool:
    """The ``trust_env`` a session gets: as given, or (None) only when a proxy or netrc is configured."""
    return proxy_env_configured() if trust_env is None else trust_env


def make_session(max_concurrency: int | None, trust_env: bool | None = None) -> aiohttp.ClientSession:
    """An aiohttp session set up as vLLM's benchmark sets up its own (pooled keep-alive connections).

    ``trust_env``: None (the default) turns aiohttp's proxy and netrc lookups on only when a proxy
    variable or a netrc file exists; True always, as ``vllm bench serve`` does. With it on, aiohttp
    makes two thread-pool round trips per request after the request's clock has started, so they
    are part of every TTFT and latency; False never."""
    connector = aiohttp.TCPConnector(limit=max_concurrency or 0, limit_per_host=max_concurrency or 0,
                                     ttl_dns_cache=300, use_dns_cache=True, keepalive_timeout=60,
                                     enable_cleanup_closed=True, force_close=False)
    return aiohttp.ClientSession(connector=connector, trust_env=resolve_trust_env(trust_env),
                                 timeout=aiohttp.ClientTimeout(total=6 * 60 * 60))


async def run_load(url: str, model: str, requests: Sequence[BenchRequest], *, max_concurrency: int | None = None,
                   request_rate: float = float("inf"), burstiness: float = 1.0, seed: int = 0,
                   ignore_eos: bool = False, test_request: bool = True, warmups: int = 0,
                   full_parse: bool = False, trust_env: bool | None = None) -> LoadResult:
    """Send ``requests`` to ``url`` with at most ``max_concurrency`` in flight (None: no limit) at
    ``request_rate`` arrivals per second; return every outcome and the run's duration.
    ``warmups`` untimed copies of the first request go first, under the same cap (a failed one
    raises). ``full_parse`` JSON-parses every message (vLLM's way; slower, same metrics).
    ``trust_env``: see :func:`make_session`."""
    if not requests:
        raise ValueError("no requests to send")
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
    if warmups < 0:
        raise ValueError(f"warmups must be 0 or more, got {warmups}")
    delays = arrival_delays(len(requests), request_rate, burstiness, seed)
    async with make_session(max_concurrency, trust_env) as session:
        if test_request:
            probe = await send_request(session, url, model, requests[0], ignore_eos=ignore_eos)
            if not probe.success:
                raise RuntimeError(f"the test request to {url} failed: {probe.error}")
        gate: Any = asyncio.Semaphore(max_concurrency) if max_concurrency else contextlib.nullcontext()

        async def limited(req: BenchRequest) -> RequestOutput:
            async with gate:
                return await send_request(session, url, model, req, ignore_eos=ignore_eos, full_parse=full_parse)

        if warmups:
            warm = await asyncio.gather(*(limited(requests[0]) for _ in range(warmups)))
            if failed := [w for w in warm if not w.success]:
                raise RuntimeError(f"{len(failed)} of {warmups} warm-up requests to {url} failed: {failed[0].error}")
        start = time.perf_counter()
        tasks = [asyncio.create_task(limited(req)) async for req in _arrivals(requests, delays)]
        outputs = list(await asyncio.gather(*tasks))
        duration = time.perf_counter() - start
    return LoadResult(outputs=outputs, duration_s=duration, started_at=start)
