"""Fidelity check: ``agentbench bench`` beside ``vllm bench serve`` on the same server and workload.

Reads vLLM's ``--save-result`` JSON files (keys ``max_concurrency``, ``output_throughput``,
``mean_ttft_ms``, ``mean_tpot_ms``) and agentbench bench result files (``kind: load``), pairs them by
concurrency, and writes a JSON and a markdown table with the ratios (ours / vLLM); a metric passes
when the ratio is within ``tolerance`` of 1. Several runs per concurrency on a side (repeats) are
compared by their means, with every run's value kept beside them.

Command line (used by ``scripts/gpu/bench_fidelity.sh``)::

    python -m agentbench.bench.fidelity --vllm-dir DIR --ours-dir DIR --out DIR [--tolerance 0.05]
"""

from __future__ import annotations

import argparse
import json
import re
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


def vllm_by_concurrency(paths: Sequence[Path]) -> dict[int, list[dict[str, Any]]]:
    """vLLM result files grouped by their ``max_concurrency`` (repeats in the order of ``paths``)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if "output_throughput" not in data or data.get("max_concurrency") is None:
            raise ValueError(f"{path} is not a vllm bench serve result with --max-concurrency")
        out.setdefault(int(data["max_concurrency"]), []).append(data)
    return out


def ours_by_concurrency(paths: Sequence[Path]) -> dict[int, list[dict[str, Any]]]:
    """The metrics of our load points (from bench result files) grouped by concurrency, repeats in file
    and point order (``agentbench bench --concurrency 64,64`` measures c=64 twice in one run)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for point in data.get("points", []):
            if point.get("concurrency") is not None and "metrics" in point:  # a failed point measured nothing
                out.setdefault(int(point["concurrency"]), []).append(point["metrics"])
    return out


def _dig(data: Mapping[str, Any], path: Sequence[str]) -> float:
    value: Any = data
    for key in path:
        value = value[key]
    return float(value)


Runs = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def _runs(value: Runs) -> list[Mapping[str, Any]]:
    """One run (a mapping) or several (a list of them) as a list."""
    return [value] if isinstance(value, Mapping) else list(value)


def compare_fidelity(vllm: Mapping[int, Runs], ours: Mapping[int, Runs], *, tolerance: float = 0.05,
                     balanced: bool = True) -> dict[str, Any]:
    """Rows per (concurrency, metric) with both values, the ratio and pass/fail; ``passed`` overall.

    Each side may hold several runs per concurrency (repeats, ideally interleaved: vLLM, ours, vLLM,
    ours): a row then compares the means over the runs, and lists every run's value in ``vllm_runs``
    and ``agentbench_runs`` so the run-to-run spread sits beside the ratio. A concurrency measured by
    only one side is listed under ``missing`` and fails the check; so does one where the two sides
    hold different numbers of runs (``unbalanced``: a run failed or was cut, so the repeats no longer
    interleave), unless ``balanced`` is False."""
    rows = []
    unbalanced = []
    for c in sorted(set(vllm) & set(ours)):
        vruns, oruns = _runs(vllm[c]), _runs(ours[c])
        if len(vruns) != len(oruns):
            unbalanced.append({"concurrency": c, "vllm_runs": len(vruns), "agentbench_runs": len(oruns)})
        for label, (vkey, opath) in FIDELITY_METRICS.items():
            vvals = [float(r[vkey]) for r in vruns]
            ovals = [_dig(r, opath) for r in oruns]
            v, o = sum(vvals) / len(vvals), sum(ovals) / len(ovals)
            ratio = o / v if v else float("inf")
            rows.append({"concurrency": c, "metric": label, "vllm": v, "agentbench": o, "ratio": ratio,
                         "passed": abs(ratio - 1) <= tolerance, "vllm_runs": vvals, "agentbench_runs": ovals})
    missing = sorted(set(vllm) ^ set(ours))
    return {"tolerance": tolerance, "rows": rows, "missing": missing, "unbalanced": unbalanced,
            "passed": bool(rows) and not missing and not (balanced and unbalanced) and all(r["passed"] for r in rows)}


def _cell(mean: float, runs: Sequence[float]) -> str:
    """A mean, with the runs' range and count when there were several."""
    if len(runs) < 2:
        return f"{mean:.2f}"
    return f"{mean:.2f} ({min(runs):.2f}-{max(runs):.2f}, n={len(runs)})"


def fidelity_markdown(result: Mapping[str, Any]) -> str:
    """The comparison as a markdown table (a side with repeats shows its mean, range and count)."""
    lines = [f"# agentbench bench vs vllm bench serve (pass: within {result['tolerance']:.0%})", "",
             "| concurrency | metric | vllm bench serve | agentbench bench | ratio | pass |",
             "| ---: | --- | ---: | ---: | ---: | --- |"]
    for r in result["rows"]:
        vcell = _cell(r["vllm"], r.get("vllm_runs", []))
        ocell = _cell(r["agentbench"], r.get("agentbench_runs", []))
        lines.append(f"| {r['concurrency']} | {r['metric']} | {vcell} | {ocell} | "
                     f"{r['ratio']:.3f} | {'yes' if r['passed'] else 'NO'} |")
    if result["missing"]:
        lines.append(f"\nMeasured by one side only (fails): concurrency {result['missing']}")
    for u in result.get("unbalanced", []):
        lines.append(f"\nUnequal repeats at concurrency {u['concurrency']}: vLLM {u['vllm_runs']} runs, agentbench "
                     f"{u['agentbench_runs']}")
    if result.get("unreadable"):
        lines.append(f"\nUnreadable result files (a failed or cut run; fails): {', '.join(result['unreadable'])}")
    lines.append(f"\nOverall: {'PASS' if result['passed'] else 'FAIL'}")
    return "\n".join(lines) + "\n"


def _natural(path: Path) -> list[Any]:
    """Sort key: numbers in the name compare as numbers (``b2-c64-1`` before ``b10-c64-1``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def _readable(folder: Path) -> tuple[list[Path], list[Path]]:
    """The folder's JSON files that parse, and those that do not, in natural name order."""
    good, bad = [], []
    for path in sorted(folder.glob("*.json"), key=_natural):
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
    parser.add_argument("--ignore-vllm-only", action="store_true",
                        help="compare only at the concurrencies agentbench measured (a variant run at some of them)")
    parser.add_argument("--allow-unbalanced", action="store_true",
                        help="do not fail when the sides hold different numbers of runs at a concurrency")
    args = parser.parse_args(argv)
    vllm_files, bad = _readable(args.vllm_dir)
    ours_files, bad_ours = _readable(args.ours_dir)
    vllm, ours = vllm_by_concurrency(vllm_files), ours_by_concurrency(ours_files)
    if args.ignore_vllm_only:
        vllm = {c: runs for c, runs in vllm.items() if c in ours}
    result = compare_fidelity(vllm, ours, tolerance=args.tolerance, balanced=not args.allow_unbalanced)
    # A run that failed or was cut by its time limit leaves an empty or broken file: the check fails.
    result["unreadable"] = [str(p) for p in bad + bad_ours]
    if result["unreadable"]:
        result["passed"] = False
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fidelity.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (args.out / "fidelity.md").write_text(fidelity_markdown(result), encoding="utf-8")
    print(fidelity_markdown(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
