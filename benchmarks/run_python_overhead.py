"""Overhead of one ``run_python`` call: wall time of ``print(1)`` through the real tool.

Measures the whole path a model's call takes (argument model, sandbox start, the launcher, the
interpreter, output capture, ownership hand-back) after a warm-up, and the stages on their own
for the analysis: a bare interpreter, the interpreter under bubblewrap alone, and the full tool.

    python benchmarks/run_python_overhead.py [--calls 50] [--out FILE]

Prints a table and writes JSON (default ``agentbench-results/benchmarks/run_python_overhead.json``).
Target (issue 3): p50 <= 200 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentbench.tools.code  # noqa: F401  (registers run_python)
from agentbench.tools import ToolContext, sandbox, tool_spec

TARGET_P50_S = 0.200


def measure(fn: Callable[[], object], calls: int, warmup: int = 3) -> dict[str, float]:
    """p50/p90/mean/min wall time of ``fn`` in seconds, after ``warmup`` unmeasured calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "p50": statistics.median(times), "p90": times[int(0.9 * (len(times) - 1))],
        "mean": statistics.fmean(times), "min": times[0], "calls": calls,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("agentbench-results/benchmarks/run_python_overhead.json"))
    args = parser.parse_args()
    ok, reason = sandbox.sandbox_status()
    if not ok:
        print(f"sandbox unavailable: {reason}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        tool = tool_spec("run_python").bind(ToolContext(workspace=workspace))
        rows: dict[str, dict[str, float]] = {
            "python -c 'print(1)' (no sandbox)": measure(
                lambda: subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, check=True),
                args.calls),
            "python -I -S -c pass (bare interpreter)": measure(
                lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True), args.calls),
            "run_python('print(1)') (the tool)": measure(lambda: tool.invoke({"code": "print(1)"}), args.calls),
        }
    result: dict[str, Any] = {
        "rows": rows, "target_p50_s": TARGET_P50_S,
        "meets_target": rows["run_python('print(1)') (the tool)"]["p50"] <= TARGET_P50_S,
        "python": sys.version.split()[0], "sandbox": reason,
    }
    print(f"{'what':45} {'p50 ms':>8} {'p90 ms':>8} {'min ms':>8}")
    for name, row in rows.items():
        print(f"{name:45} {row['p50'] * 1e3:8.1f} {row['p90'] * 1e3:8.1f} {row['min'] * 1e3:8.1f}")
    print(f"target p50 <= {TARGET_P50_S * 1e3:.0f} ms: {'met' if result['meets_target'] else 'NOT met'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
