"""Is the bench client ever the bottleneck? Its request rate beside a bare aiohttp streaming loop.

Both drive the same local OpenAI-compatible test server (agentbench.testing.openai_server, streaming
with usage), run in a SEPARATE process so it does not share the client's GIL; the server may still be
the limit, which is why the two clients are compared in the same run, alternating, rather than
against an absolute figure. Target: the bench client reaches at least 90 % of the bare loop's rate.
Also shown: the client with full parsing (vLLM's way) and with ``--trust-env`` (aiohttp's proxy and
netrc lookups on every request, as ``vllm bench serve`` has them).

    python benchmarks/bench_client_overhead.py [--requests 2000] [--concurrency 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp

from agentbench.bench.client import BenchRequest, run_load
from agentbench.bench.metrics import compute_metrics


async def bare_loop(url: str, n: int, concurrency: int) -> float:
    """A minimal streaming client: POST, read every network chunk of the SSE stream (one
    perf_counter per read, the least any timing client does), parse the usage message at the end;
    returns requests/s. It reads the stream the cheapest way aiohttp offers (``iter_any``)."""
    gate = asyncio.Semaphore(concurrency)
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hello " * 16}], "stream": True,
            "stream_options": {"include_usage": True}, "max_completion_tokens": 16}
    clock = time.perf_counter

    async def one(session: aiohttp.ClientSession) -> int:
        async with gate, session.post(url, json=body) as resp:
            tail = b""
            stamps = []
            async for data in resp.content.iter_any():
                stamps.append(clock())
                tail = tail[-2048:] + data
            for message in reversed(tail.split(b"\n\n")):
                if b'"completion_tokens"' in message:
                    return int(json.loads(message.strip()[6:])["usage"]["completion_tokens"])
            raise RuntimeError("no usage message in the stream")

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        tokens = await asyncio.gather(*(one(session) for _ in range(n)))
        elapsed = time.perf_counter() - start
    if not all(tokens):
        raise RuntimeError("a response reported no output tokens")
    return n / elapsed


async def bench_client(url: str, n: int, concurrency: int, full_parse: bool = False,
                       trust_env: bool | None = None) -> float:
    """The bench client (``run_load``) on the same workload; returns requests/s."""
    reqs = [BenchRequest(prompt="hello " * 16, prompt_len=16, output_len=16)] * n
    load = await run_load(url, "test-model", reqs, max_concurrency=concurrency, test_request=False,
                          full_parse=full_parse, trust_env=trust_env)
    metrics = compute_metrics(load.outputs, load.duration_s)
    if metrics.failed or metrics.total_output != 16 * n:
        raise RuntimeError(f"{metrics.failed} requests failed ({metrics.errors[:1]}), "
                           f"{metrics.total_output} output tokens")
    return metrics.request_throughput


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "agentbench.testing.openai_server", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        asyncio.run(bare_loop(url, 64, args.concurrency))  # warm up the server
        bare, ours, full, trust = [], [], [], []
        cpu: dict[str, list[float]] = {"bare": [], "ours": [], "full": [], "trust": []}
        for _ in range(args.rounds):  # alternate, so drift in the shared CPU hits all four alike
            for name, runs, job in (("bare", bare, lambda: bare_loop(url, args.requests, args.concurrency)),
                                    ("ours", ours, lambda: bench_client(url, args.requests, args.concurrency)),
                                    ("full", full, lambda: bench_client(url, args.requests, args.concurrency,
                                                                        full_parse=True)),
                                    ("trust", trust, lambda: bench_client(url, args.requests, args.concurrency,
                                                                          trust_env=True))):
                c0 = time.process_time()
                runs.append(asyncio.run(job()))
                cpu[name].append((time.process_time() - c0) * 1000 / args.requests)
    finally:
        server.terminate()
        server.wait()
    print(f"concurrency {args.concurrency}, {args.requests} requests per client per round, {args.rounds} rounds")
    for i, (b, o, f, t) in enumerate(zip(bare, ours, full, trust), 1):
        print(f"round {i}: bare {b:.0f} req/s, bench client {o:.0f} req/s (ratio {o / b:.3f}), "
              f"full-parse client {f:.0f} req/s (ratio {f / b:.3f}), --trust-env client {t:.0f} req/s "
              f"(ratio {t / b:.3f})")
    ratios = sorted(o / b for o, b in zip(ours, bare))
    median = ratios[len(ratios) // 2]
    b, o = max(bare), max(ours)
    print(f"best rounds: bare {b:.0f} req/s ({1000 / b:.3f} ms/request), bench client {o:.0f} req/s "
          f"({1000 / o:.3f} ms/request)")
    med = {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}
    print(f"client CPU per request (median): bare {med['bare']:.3f} ms, bench client {med['ours']:.3f} ms, "
          f"full-parse client {med['full']:.3f} ms, --trust-env client {med['trust']:.3f} ms")
    trust_ratios = sorted(t / b for t, b in zip(trust, bare))
    print(f"median per-round ratio with --trust-env (vllm bench serve's aiohttp setting): "
          f"{trust_ratios[len(trust_ratios) // 2]:.3f}")
    print(f"median per-round ratio: {median:.3f} (target >= 0.90)")
    return 0 if median >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
