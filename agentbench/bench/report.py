"""Bench results as tables, and every stored bench result as a report (Markdown, HTML, PNG plots).

``write_bench_report`` draws throughput/latency vs concurrency and memory/TTFT vs context length with
:mod:`agentbench.report.plots` when matplotlib (the ``plots`` extra) is installed; without it the
report says how to get plots. The seed's performance criteria (:mod:`agentbench.bench.criteria`) are
shown per model.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentbench.bench.agent import agent_table
from agentbench.bench.criteria import perf_criteria
from agentbench.report.tables import Table

__all__ = ["bench_tables", "context_table", "load_table", "perf_table", "sweep_table", "write_bench_report"]


def load_table(points: list[dict[str, Any]]) -> Table:
    """The load sweep as a table (one row per point)."""
    table = Table("Load sweep (vllm bench serve definitions; ms)",
                  ["conc.", "rate", "ok/fail", "req/s", "out tok/s", "goodput", "TTFT mean", "TTFT p99",
                   "TPOT mean", "TPOT p99", "ITL mean", "E2EL p99", "device GB", "J/tok"])
    for p in points:
        if "metrics" not in p:  # a point that failed: its error instead of figures
            table.rows.append([str(p.get("concurrency") or "-"), str(p.get("request_rate") or "inf"),
                               f"error: {str(p.get('error', ''))[:80]}"] + ["-"] * 11)
            continue
        m = p["metrics"]
        tel = (p.get("telemetry") or {}).get("summary", {})
        table.rows.append([
            str(p["concurrency"] or "-"), str(p["request_rate"] or "inf"), f"{m['completed']}/{m['failed']}",
            f"{m['request_throughput']:.2f}", f"{m['output_throughput']:.1f}",
            "-" if m["request_goodput"] is None else f"{m['request_goodput']:.2f}",
            f"{m['ttft_ms']['mean']:.1f}", f"{m['ttft_ms']['percentiles'].get('p99', 0):.1f}",
            f"{m['tpot_ms']['mean']:.2f}", f"{m['tpot_ms']['percentiles'].get('p99', 0):.2f}",
            f"{m['itl_ms']['mean']:.2f}", f"{m['e2el_ms']['percentiles'].get('p99', 0):.1f}",
            "-" if tel.get("peak_memory_gb") is None else f"{tel['peak_memory_gb']:.1f}",
            "-" if tel.get("joules_per_output_token") is None else f"{tel['joules_per_output_token']:.2f}",
        ])
    return table


def context_table(rows: list[dict[str, Any]]) -> Table:
    """Memory vs context length as a table."""
    table = Table("Memory vs context length", ["context", "TTFT ms", "TPOT ms", "device GB", "peak KV %", "failed"])
    for r in rows:
        if "error" in r:
            table.rows.append([str(r["context_len"]), f"error: {str(r['error'])[:80]}", "-", "-", "-", "-"])
            continue
        kv = r.get("peak_kv_cache_usage")
        table.rows.append([str(r["context_len"]), f"{r['mean_ttft_ms']:.1f}", f"{r['mean_tpot_ms']:.2f}",
                           "-" if r.get("peak_memory_gb") is None else f"{r['peak_memory_gb']:.1f}",
                           "-" if kv is None else f"{100 * kv:.1f}", str(r["failed"])])
    return table


def sweep_table(rows: list[dict[str, Any]]) -> Table:
    """The settings sweep as a table (one row per setting)."""
    table = Table("Serving settings sweep", ["settings", "ready s", "KV tokens", "ok/fail", "goodput", "out tok/s",
                                             "TTFT mean", "TPOT mean", "error"])
    for r in rows:
        m = r.get("metrics") or {}
        startup = (r.get("server") or {}).get("startup") or {}
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items())
        if not m:
            table.rows.append([settings, "-", "-", "-", "-", "-", "-", "-", str(r.get("error", ""))[:60]])
            continue
        table.rows.append([
            settings, _num(startup.get("ready_s"), ".1f"), _num(startup.get("kv_cache_tokens"), ",d"),
            f"{m['completed']}/{m['failed']}", _num(m.get("request_goodput"), ".2f"),
            f"{m['output_throughput']:.1f}", f"{m['ttft_ms']['mean']:.1f}", f"{m['tpot_ms']['mean']:.2f}", ""])
    return table


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def perf_table(results_root: Path, models: Sequence[str]) -> Table:
    """The seed's performance criteria per model, from the stored bench results."""
    table = Table("Performance criteria (the seed's)", ["model", "criterion", "measured", "verdict", "measured as"])
    for model in models:
        for c in perf_criteria(results_root, model):
            measured = "-" if c["measured"] is None else f"{c['measured']:.1f} {c['unit']}"
            verdict = "not measured" if c["passed"] is None else "PASS" if c["passed"] else "FAIL"
            table.rows.append([model, str(c["criterion"]), measured, verdict, str(c.get("detail", ""))])
    table.note = ("model memory = weights + CUDA graphs + peak KV-cache usage x KV-cache size (startup log and "
                  "/metrics), not the device's memory in use, which vLLM reserves up front")
    return table


def bench_tables(record: dict[str, Any]) -> list[Table]:
    """The tables of one stored bench result, titled with its id, model and kind."""
    tables: list[Table] = []
    if record.get("kind") == "sweep":
        tables.append(sweep_table(record["rows"]))
        tables[-1].note = f"recommended: {record.get('recommended') or record.get('recommend_note', 'none')}"
    if record.get("kind") == "agent":
        tables.append(agent_table(record))
    if record.get("points"):
        tables.append(load_table(record["points"]))
    if record.get("context"):
        tables.append(context_table(record["context"]))
    label = f"{record.get('model')} ({record.get('kind')}, {record.get('bench_id', 'unsaved')})"
    if record.get("incomplete"):
        label += f" [incomplete: {record['incomplete']}]"
    for table in tables:
        table.title = f"{label}: {table.title}"
    return tables


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def write_bench_report(records: Sequence[dict[str, Any]], out_dir: Path,
                       results_root: Path | None = None) -> dict[str, Any]:
    """Write ``bench-report.md`` and ``bench-report.html`` (and PNG plots when matplotlib is there)
    for ``records`` into ``out_dir``. Returns ``{"files": [paths], "note": why there are no plots, or ""}``."""
    from agentbench.report.plots import PlotsUnavailable, context_plot, load_plot
    from agentbench.report.render import render_html, render_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    tables: list[Table] = []
    images: list[tuple[str, Path]] = []
    note = ""
    for record in records:
        tables += bench_tables(record)
        stem = _safe(f"{record.get('model')}-{record.get('bench_id', 'unsaved')}")
        jobs: list[tuple[Callable[[Any, Path, str], Path], Any, Path, str]] = []
        points = [p for p in record.get("points", []) if "metrics" in p]  # failed points have nothing to plot
        rows = [r for r in record.get("context", []) if "error" not in r]
        if any(p.get("concurrency") for p in points):
            jobs.append((load_plot, points, out_dir / f"{stem}-load.png", "throughput and latency"))
        if rows:
            jobs.append((context_plot, rows, out_dir / f"{stem}-context.png", "memory and TTFT"))
        for draw, data, path, what in jobs:
            if note:
                break
            try:
                images.append((f"{record.get('model')}: {what} ({record.get('bench_id')})",
                               draw(data, path, f"{record.get('model')} {record.get('bench_id', '')}")))
            except PlotsUnavailable as exc:
                note = str(exc)
    if results_root is not None:
        tables.append(perf_table(results_root, sorted({str(r.get("model")) for r in records})))
    intro = [f"{len(records)} stored bench result(s); metric definitions as vllm bench serve's (docs/bench.md)."]
    if note:
        intro.append(f"No plots: {note}.")
    md = render_markdown("agentbench bench report", intro, tables)
    page = render_html("agentbench bench report", intro, tables)
    if images:
        md += "\n## Plots\n\n" + "\n\n".join(f"![{t}]({p.name})" for t, p in images) + "\n"
        figures = "".join(f"<h2>{html.escape(t)}</h2><img src=\"{html.escape(p.name)}\" alt=\"{html.escape(t)}\">"
                          for t, p in images)
        page = page.replace("</body></html>", figures + "</body></html>")
    md_path, html_path = out_dir / "bench-report.md", out_dir / "bench-report.html"
    md_path.write_text(md, encoding="utf-8")
    html_path.write_text(page, encoding="utf-8")
    return {"files": [md_path, html_path, *(p for _, p in images)], "note": note}
