"""Harness overhead: agentbench's full path vs a raw AsyncOpenAI client, against the same server.

The server is agentbench's OpenAI-compatible test server in its own process, replaying gold
solutions (no model time), so what is measured is the client side: for agentbench, the LangGraph
tool loop, LangChain's ChatOpenAI, the real tools, grading and the results store; for the raw
client, one streamed chat completion per request and nothing else.

Workload: the built-in scenarios whose tools are all in-process (calculator and workspace files)
and that have no hidden tests: sandboxed code runs and the search index build are tool time, like
model time, and are measured by their own benchmarks (benchmarks/run_python_overhead.py).

Like for like: the raw client replays exactly the request bodies agentbench sends for the suite
(full history and tool schemas; captured in a first pass), so the ratio is the harness's own
cost. A minimal raw loop (one short user message, no tools) is printed beside it for scale.

    python benchmarks/harness_overhead.py [--repeats 24] [--out FILE]

Prints a table and writes JSON. Target (issue 2): at concurrency 32 agentbench reaches at least
half of the raw client's request rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from agentbench.models.registry import adhoc_openai_model
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary, load_library
from agentbench.scenario.schema import Scenario
from agentbench.store import ResultStore
from agentbench.testing import OpenAITestServer, reference_responder

RESPONDER = "agentbench.testing.reference:reference_responder"
IN_PROCESS_TOOLS = {"calculator", "read_file", "write_file", "edit_file", "list_files", "delete_file"}


def workload(library: ScenarioLibrary) -> list[Scenario]:
    """The scenarios measured (see the module docstring)."""
    return [s for s in library.scenarios.values() if set(s.tools) <= IN_PROCESS_TOOLS and s.checks.tests is None]


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The test server in a child process; returns it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentbench.testing.openai_server", "--port", "0", "--responder", RESPONDER,
         "--model-name", "reference"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, line.split("listening on", 1)[1].strip()


def reference_spec(base_url: str, stream: bool) -> Any:
    """The gold-replaying endpoint as a model entry, streaming or not."""
    return adhoc_openai_model(base_url, "reference").model_copy(update={"stream": stream})


async def agentbench_rate(base_url: str, concurrency: int, repeats: int, stream: bool) -> dict[str, Any]:
    """Run the built-in suite ``repeats`` times through agentbench; steps per second and latencies."""
    library = load_library()
    spec = reference_spec(base_url, stream)
    with tempfile.TemporaryDirectory() as folder:
        store = ResultStore(Path(folder))
        plan = make_plan([spec], workload(library), repeats=repeats, concurrency=concurrency)
        store.create_run(plan)
        arrivals: list[tuple[float, int]] = []
        start = time.perf_counter()
        results = await execute_plan(plan, library, store,
                                     on_result=lambda r: arrivals.append((time.perf_counter(), r.steps)))
        wall = time.perf_counter() - start
        store.close()
    calls = [c for r in results for c in r.model_calls]
    failed = [r.scenario_id for r in results if not r.passed]
    if failed:
        bad = [r for r in results if not r.passed][:3]
        details = [(r.scenario_id, r.error, [(g.label, g.reason) for g in r.failed_grades()]) for r in bad]
        raise RuntimeError(f"reference failed {len(failed)} runs, e.g. {details}: the benchmark would be wrong")
    per_step = [r.wall_s / r.steps for r in results if r.steps]
    # Steady state: the steps finished between the first and the last result, which leaves out
    # the fixed start-up (worker processes importing LangChain, the calculator's worker).
    window = arrivals[-1][0] - arrivals[0][0]
    steady = sum(steps for _, steps in arrivals[1:]) / window if window > 0 else len(calls) / wall
    return {"requests": len(calls), "wall_s": wall, "rate": steady, "rate_total": len(calls) / wall,
            "workers": plan.workers,
            "p50_ms_model_call": 1000 * statistics.median(c.latency_s for c in calls),
            "p50_ms_per_step": 1000 * statistics.median(per_step), "scenario_runs": len(results)}


Request = tuple[dict[str, Any], dict[str, str]]  # (JSON body, extra headers)


def minimal_request(stream: bool) -> Request:
    """One short user message, no tools: the cheapest request the SDK can make."""
    body: dict[str, Any] = {"model": "reference", "temperature": 0, "stream": stream,
                            "messages": [{"role": "user", "content": "Calculate 15% tip on $67.50"}]}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body, {"X-Agentbench-Scenario": "tip_calculation"}


async def capture_requests(stream: bool) -> list[Request]:
    """The request bodies agentbench sends for one pass over the suite (server in-process)."""
    library = load_library()
    with OpenAITestServer(reference_responder(library), model_names=["reference"]) as server, \
            tempfile.TemporaryDirectory() as folder:
        store = ResultStore(Path(folder))
        plan = make_plan([reference_spec(server.base_url, stream)], workload(library))
        store.create_run(plan)
        await execute_plan(plan, library, store)
        store.close()
        return [(r.body, {"X-Agentbench-Scenario": r.headers["x-agentbench-scenario"]}) for r in server.requests]


async def raw_rate(base_url: str, concurrency: int, total: int, requests: list[Request]) -> dict[str, Any]:
    """Replay ``requests`` round-robin with a bare AsyncOpenAI client, ``concurrency`` in flight."""
    client = AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            body, headers = requests[queue.get_nowait() % len(requests)]
            began = time.perf_counter()
            response = await client.chat.completions.create(**body, extra_headers=headers)
            if body.get("stream"):
                async for _ in response:
                    pass
            latencies.append(time.perf_counter() - began)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    await client.close()
    return {"requests": total, "wall_s": wall, "rate": total / wall,
            "p50_ms_model_call": 1000 * statistics.median(latencies)}


async def measure(base_url: str, repeats: int) -> list[dict[str, Any]]:
    rows = []
    for stream in (False, True):
        captured = await capture_requests(stream)
        for concurrency in (1, 32):
            await agentbench_rate(base_url, concurrency, 1, stream)  # warm-up: imports, worker, connections
            ours = await agentbench_rate(base_url, concurrency, repeats, stream)
            raw = await raw_rate(base_url, concurrency, ours["requests"], captured)
            minimal = await raw_rate(base_url, concurrency, ours["requests"], [minimal_request(stream)])
            rows.append({"stream": stream, "concurrency": concurrency, "agentbench": ours, "raw_openai": raw,
                         "raw_minimal": minimal, "ratio": ours["rate"] / raw["rate"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=24, help="suite repeats per measurement")
    parser.add_argument("--out", type=Path, default=Path("agentbench-results/benchmarks/harness_overhead.json"))
    args = parser.parse_args()
    proc, base_url = start_server()
    try:
        rows = asyncio.run(measure(base_url, args.repeats))
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{'stream':>6} {'conc':>4} {'workers':>7} {'steps/s':>8} {'(total)':>8} {'p50 ms/call':>12} "
          f"{'p50 ms/step':>12} {'raw req/s':>10} {'raw p50 ms':>11} {'ratio':>6} {'minimal raw req/s':>18}")
    for row in rows:
        ours, raw = row["agentbench"], row["raw_openai"]
        print(f"{row['stream']!s:>6} {row['concurrency']:>4} {ours['workers']:>7} {ours['rate']:>8.1f} "
              f"{ours['rate_total']:>8.1f} {ours['p50_ms_model_call']:>12.2f} {ours['p50_ms_per_step']:>12.2f} "
              f"{raw['rate']:>10.1f} {raw['p50_ms_model_call']:>11.2f} {row['ratio']:>6.2f} "
              f"{row['raw_minimal']['rate']:>18.1f}")
    print("steps/s: steady state (first to last result); (total): including start-up; "
          "ratio = steady steps/s / raw req/s")
    default = next(r for r in rows if not r["stream"] and r["concurrency"] == 32)
    verdict = default["ratio"] >= 0.5
    print(f"target: agentbench >= 0.5x raw rate at concurrency 32 (default, non-streaming) -> "
          f"{'met' if verdict else 'NOT met'} ({default['ratio']:.2f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "target_met": verdict}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
