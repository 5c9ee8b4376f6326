"""Is the bench client ever the bottleneck? Its request rate beside a bare aiohttp streaming loop.

Both drive the same local OpenAI-compatible test server (agentbench.testing.openai_server, streaming
with usage), run in a SEPARATE process so it does not share the client's GIL; the server may still be
the limit, which is why the two clients are compared in the same run, alternating, rather than
against an absolute figure. Target: the bench client reaches at least 90 % of the bare loop's rate.

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
    """A minimal streaming client: POST, read SSE lines, take usage; returns requests/s."""
    gate = asyncio.Semaphore(concurrency)
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hello " * 16}], "stream": True,
            "stream_options": {"include_usage": True}, "max_completion_tokens": 16}

    async def one(session: aiohttp.ClientSession) -> int:
        async with gate, session.post(url, json=body) as resp:
            tokens = 0
            async for line in resp.content:
                if line.startswith(b"data: {") and b'"usage": {' in line.replace(b'":{', b'": {'):
                    tokens = json.loads(line[6:])["usage"]["completion_tokens"]
            return tokens

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(n)))
        return n / (time.perf_counter() - start)


async def bench_client(url: str, n: int, concurrency: int) -> float:
    reqs = [BenchRequest(prompt="hello " * 16, prompt_len=16, output_len=16)] * n
    load = await run_load(url, "test-model", reqs, max_concurrency=concurrency, test_request=False)
    metrics = compute_metrics(load.outputs, load.duration_s)
    if metrics.failed:
        raise RuntimeError(f"{metrics.failed} requests failed: {metrics.errors[:1]}")
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
        bare, ours = [], []
        for _ in range(args.rounds):
            bare.append(asyncio.run(bare_loop(url, args.requests, args.concurrency)))
            ours.append(asyncio.run(bench_client(url, args.requests, args.concurrency)))
    finally:
        server.terminate()
        server.wait()
    b, o = max(bare), max(ours)
    print(f"concurrency {args.concurrency}, {args.requests} requests x {args.rounds} rounds (best round)")
    print(f"bare aiohttp loop: {b:.0f} req/s ({1000 / b:.3f} ms/request)")
    print(f"bench client:      {o:.0f} req/s ({1000 / o:.3f} ms/request)")
    print(f"ratio: {o / b:.3f} (target >= 0.90); extra client time per request: {1000 / o - 1000 / b:.3f} ms")
    return 0 if o / b >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
