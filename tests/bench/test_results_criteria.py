"""Stored bench results and the seed's two performance criteria read from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbench.bench.criteria import perf_criteria
from agentbench.bench.results import list_bench_results, load_bench_result, save_bench_result


def test_results_round_trip_and_criteria(tmp_path: Path) -> None:
    assert [c["passed"] for c in perf_criteria(tmp_path, "m")] == [None, None]
    path = save_bench_result(tmp_path, {"model": "m", "kind": "load", "points": [
        {"concurrency": 1, "metrics": {}, "telemetry": {"summary": {"peak_memory_gb": 71.5}}}]})
    save_bench_result(tmp_path, {"model": "m", "kind": "agent", "agent": {"output_tokens_per_s": 64.0}})
    save_bench_result(tmp_path, {"model": "other", "kind": "load", "points": []})
    assert load_bench_result(path)["points"][0]["concurrency"] == 1
    assert len(list_bench_results(tmp_path)) == 3 and len(list_bench_results(tmp_path, "m")) == 2
    memory, rate = perf_criteria(tmp_path, "m")
    assert (memory["measured"], memory["passed"]) == (71.5, False)
    assert (rate["measured"], rate["passed"]) == (64.0, True)


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"x\.json is not an agentbench bench result"):
        load_bench_result(bad)
    with pytest.raises(ValueError, match="needs 'model' and 'kind'"):
        save_bench_result(tmp_path, {"model": "m"})
