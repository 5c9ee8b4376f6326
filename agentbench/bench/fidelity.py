"""Fidelity check: ``agentbench bench`` beside ``vllm bench serve`` on the same server and workload.

Reads vLLM's ``--save-result`` JSON files (keys ``max_concurrency``, ``output_throughput``,
``mean_ttft_ms``, ``mean_tpot_ms``) and agentbench bench result files (``kind: load``), pairs them by
concurrency, and writes a JSON and a markdown table with the ratios (ours / vLLM); a metric passes
when the ratio is within ``tolerance`` of 1.

Command line (used by ``scripts/gpu/bench_fidelity.sh``)::

    python -m agentbench.bench.fidelity --vllm-dir DIR --ours-dir DIR --out DIR [--tolerance 0.05]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FIDELITY_METRICS", "compare_fidelity", "fidelity_markdown", "ours_by_concurrency", "vllm_by_concurrency"]

# metric label -> (key in vLLM's result JSON, path into our point's metrics)
FIDELITY_METRICS: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "output tok/s": ("output_throughput", ("output_throughput",)),
    "mean TTFT ms": ("mean_ttft_ms", ("ttft_ms", "mean")),
    "mean TPOT ms": ("mean_tpot_ms", ("tpot_ms", "mean")),
}


def vllm_by_concurrency(paths: Sequence[Path]) -> dict[int, dict[str, Any]]:
    """vLLM result files keyed by their ``max_concurrency``."""
    out: dict[int, dict[str, Any]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if "output_throughput" not in data or data.get("max_concurrency") is None:
            raise ValueError(f"{path} is not a vllm bench serve result with --max-concurrency")
        out[int(data["max_concurrency"])] = data
    return out


def ours_by_concurrency(paths: Sequence[Path]) -> dict[int, dict[str, Any]]:
    """Our load points (from bench result files) keyed by concurrency; a later file wins."""
    out: dict[int, dict[str, Any]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for point in data.get("points", []):
            if point.get("concurrency") is not None and "metrics" in point:  # a failed point measured nothing
                out[int(point["concurrency"])] = point["metrics"]
    return out


def _dig(data: Mapping[str, Any], path: Sequence[str]) -> float:
    value: Any = data
    for key in path:
        value = value[key]
    return float(value)


def compare_fidelity(vllm: Mapping[int, Mapping[str, Any]], ours: Mapping[int, Mapping[str, Any]], *,
                     tolerance: float = 0.05) -> dict[str, Any]:
    """Rows per (concurrency, metric) with both values, the ratio and pass/fail; ``passed`` overall.
    A concurrency measured by only one side is listed under ``missing`` and fails the check."""
    rows = []
    for c in sorted(set(vllm) & set(ours)):
        for label, (vkey, opath) in FIDELITY_METRICS.items():
            v, o = float(vllm[c][vkey]), _dig(ours[c], opath)
            ratio = o / v if v else float("inf")
            rows.append({"concurrency": c, "metric": label, "vllm": v, "agentbench": o, "ratio": ratio,
                         "passed": abs(ratio - 1) <= tolerance})
    missing = sorted(set(vllm) ^ set(ours))
    return {"tolerance": tolerance, "rows": rows, "missing": missing,
            "passed": bool(rows) and not missing and all(r["passed"] for r in rows)}


def fidelity_markdown(result: Mapping[str, Any]) -> str:
    """The comparison as a markdown table."""
    lines = [f"# agentbench bench vs vllm bench serve (pass: within {result['tolerance']:.0%})", "",
             "| concurrency | metric | vllm bench serve | agentbench bench | ratio | pass |",
             "| ---: | --- | ---: | ---: | ---: | --- |"]
    for r in result["rows"]:
        lines.append(f"| {r['concurrency']} | {r['metric']} | {r['vllm']:.2f} | {r['agentbench']:.2f} | "
                     f"{r['ratio']:.3f} | {'yes' if r['passed'] else 'NO'} |")
    if result["missing"]:
        lines.append(f"\nMeasured by one side only (fails): concurrency {result['missing']}")
    if result.get("unreadable"):
        lines.append(f"\nUnreadable result files (a failed run): {', '.join(result['unreadable'])}")
    lines.append(f"\nOverall: {'PASS' if result['passed'] else 'FAIL'}")
    return "\n".join(lines) + "\n"


def _readable(folder: Path) -> tuple[list[Path], list[Path]]:
    """The folder's JSON files that parse, and those that do not."""
    good, bad = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            bad.append(path)
        else:
            good.append(path)
    return good, bad


def main(argv: Sequence[str] | None = None) -> int:
    """Compare two folders of results; exit 0 on pass, 1 on fail."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-dir", type=Path, required=True, help="folder of vllm bench serve result JSONs")
    parser.add_argument("--ours-dir", type=Path, required=True, help="folder of agentbench bench result JSONs")
    parser.add_argument("--out", type=Path, required=True, help="where fidelity.json and fidelity.md go")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args(argv)
    vllm_files, bad = _readable(args.vllm_dir)
    ours_files, bad_ours = _readable(args.ours_dir)
    result = compare_fidelity(vllm_by_concurrency(vllm_files), ours_by_concurrency(ours_files),
                              tolerance=args.tolerance)
    # A run that failed leaves an empty or broken file: its concurrency shows up as missing (a fail).
    result["unreadable"] = [str(p) for p in bad + bad_ours]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fidelity.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (args.out / "fidelity.md").write_text(fidelity_markdown(result), encoding="utf-8")
    print(fidelity_markdown(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
