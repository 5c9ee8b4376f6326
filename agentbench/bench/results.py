"""Stored bench results: one JSON file per bench run under ``<results dir>/bench/<bench_id>.json``
(beside the scenario runs of :mod:`agentbench.store`). The file holds ``bench_id``, ``created_at``,
``model``, ``kind`` (``load``, ``context``, ``agent`` or ``sweep``), ``config`` and the rows."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from agentbench.store import new_run_id, now_iso

__all__ = ["BENCH_SCHEMA_VERSION", "bench_dir", "list_bench_results", "load_bench_result", "save_bench_result"]

BENCH_SCHEMA_VERSION = 1

log = logging.getLogger(__name__)


def bench_dir(results_root: Path) -> Path:
    """Where bench results live under a results directory."""
    return Path(results_root) / "bench"


def save_bench_result(results_root: Path, result: dict[str, Any]) -> Path:
    """Write ``result`` (adding ``bench_id``, ``created_at`` and the schema version when missing)
    atomically; return its path."""
    if "model" not in result or "kind" not in result:
        raise ValueError("a bench result needs 'model' and 'kind'")
    # now_iso is to the microsecond: results saved within one second (the agent bench's levels) must sort
    # in order, since "latest" picks what the criteria read
    record = {"schema_version": BENCH_SCHEMA_VERSION, "bench_id": new_run_id(), "created_at": now_iso(), **result}
    folder = bench_dir(results_root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['bench_id']}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_bench_result(path: Path) -> dict[str, Any]:
    """Read one bench result; a file of another schema version or without a kind is an error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read bench result {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema_version") != BENCH_SCHEMA_VERSION or "kind" not in data:
        raise ValueError(f"{path} is not an agentbench bench result (schema {BENCH_SCHEMA_VERSION})")
    return data


def list_bench_results(results_root: Path, model: str | None = None) -> list[dict[str, Any]]:
    """Every stored bench result (oldest first), optionally of one model. A file that cannot be read or
    is not a bench result is skipped with a warning: one stray file must not hide all the others."""
    folder = bench_dir(results_root)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append(load_bench_result(path))
        except ValueError as exc:
            log.warning("skipped: %s", exc)
    found.sort(key=lambda r: r.get("created_at", ""))
    return [r for r in found if model is None or r.get("model") == model]
