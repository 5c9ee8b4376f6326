"""Plots of bench results (PNG, matplotlib from the ``plots`` extra, imported only when a plot is drawn).

Without matplotlib every function raises :class:`PlotsUnavailable`, whose message says how to get
plots; callers write their tables anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["PLOTS_HINT", "PlotsUnavailable", "context_plot", "load_plot"]

PLOTS_HINT = "plots need matplotlib: pip install 'agentbench[plots]'"


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise PlotsUnavailable(PLOTS_HINT) from None
    matplotlib.use("Agg")  # files only: no display is needed (or wanted) on a server
    import matplotlib.pyplot as plt

    return plt


def load_plot(points: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Throughput and latency vs concurrency for a load sweep's points (those with a concurrency):
    output tokens/s on the left, mean TTFT and TPOT (ms) on the right. Returns ``path``."""
    rows = sorted((p for p in points if p.get("concurrency")), key=lambda p: p["concurrency"])
    if not rows:
        raise ValueError("no concurrency points to plot")
    plt = _pyplot()
    conc = [p["concurrency"] for p in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(conc, [p["metrics"]["output_throughput"] for p in rows], marker="o")
    left.set(xscale="log", xlabel="concurrency", ylabel="output tokens/s", title="throughput")
    right.plot(conc, [p["metrics"]["ttft_ms"]["mean"] for p in rows], marker="o", label="mean TTFT")
    right.plot(conc, [p["metrics"]["tpot_ms"]["mean"] for p in rows], marker="s", label="mean TPOT")
    right.set(xscale="log", yscale="log", xlabel="concurrency", ylabel="ms", title="latency")
    right.legend()
    return _save(plt, fig, (left, right), (conc, [str(c) for c in conc]), title, path)


def context_plot(rows: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    """Peak GPU memory (GB, where measured) and mean TTFT (ms) vs context length. Returns ``path``."""
    rows = sorted(rows, key=lambda r: r["context_len"])
    if not rows:
        raise ValueError("no context lengths to plot")
    plt = _pyplot()
    lengths = [r["context_len"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    memory = [(r["context_len"], r["peak_memory_gb"]) for r in rows if r.get("peak_memory_gb") is not None]
    if memory:
        left.plot([m[0] for m in memory], [m[1] for m in memory], marker="o")
    else:
        left.text(0.5, 0.5, "no GPU memory measured", ha="center", va="center", transform=left.transAxes)
    left.set(xscale="log", xlabel="context length (tokens)", ylabel="peak GPU memory (GB)", title="memory")
    right.plot(lengths, [r["mean_ttft_ms"] for r in rows], marker="o")
    right.set(xscale="log", xlabel="context length (tokens)", ylabel="mean TTFT (ms)", title="time to first token")
    ticks = (lengths, [f"{n // 1024}K" if n >= 1024 else str(n) for n in lengths])
    return _save(plt, fig, (left, right), ticks, title, path)


def _save(plt: Any, fig: Any, axes: Sequence[Any], ticks: tuple[list[int], list[str]], title: str,
          path: Path) -> Path:
    """Label the shared x ticks, add a grid and the title, write the PNG and free the figure."""
    for ax in axes:
        ax.set_xticks(*ticks)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
