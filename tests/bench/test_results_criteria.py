"""Stored bench results and the seed's two performance criteria read from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbench.bench.criteria import model_memory, perf_criteria
from agentbench.bench.results import list_bench_results, load_bench_result, save_bench_result
from agentbench.serving.startup_log import StartupLog

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "vllm-0.24.0"


def _startup() -> dict:
    """The startup figures of the real H200 probe's llama31-8b server (0.85 of the GPU, 8192 tokens)."""
    log = StartupLog()
    for line in (FIXTURES / "llama-serve.log").read_text(encoding="utf-8").splitlines():
        log.feed(line)
    return log.figures.to_dict()


def _served_load(kv_usage: float | None, device_gb: float) -> dict:
    """A load result of `agentbench bench KEY`: the server's startup figures, a point's telemetry."""
    summary = {"peak_memory_gb": device_gb} | ({} if kv_usage is None else {"peak_kv_cache_usage": kv_usage})
    return {"model": "m", "kind": "load", "server": {"startup": _startup()},
            "points": [{"concurrency": 8, "metrics": {}, "telemetry": {"summary": summary}}]}


def test_results_round_trip_and_criteria(tmp_path: Path) -> None:
    assert [c["passed"] for c in perf_criteria(tmp_path, "m")] == [None, None]
    path = save_bench_result(tmp_path, {"model": "m", "kind": "load", "points": [
        {"concurrency": 1, "metrics": {}, "telemetry": {"summary": {"peak_memory_gb": 71.5}}}]})
    save_bench_result(tmp_path, {"model": "m", "kind": "agent", "agent": {"output_tokens_per_s": 64.0}})
    save_bench_result(tmp_path, {"model": "other", "kind": "load", "points": []})
    assert load_bench_result(path)["points"][0]["concurrency"] == 1
    assert len(list_bench_results(tmp_path)) == 3 and len(list_bench_results(tmp_path, "m")) == 2
    memory, rate = perf_criteria(tmp_path, "m")
    # device-wide memory (vLLM's reservation) is not the model's need: without startup figures, unmeasured
    assert (memory["measured"], memory["passed"]) == (None, None)
    assert (rate["measured"], rate["passed"]) == (64.0, True)


def test_memory_criterion_is_weights_graphs_and_the_kv_cache_used(tmp_path: Path) -> None:
    startup = _startup()
    assert (startup["weights_gib"], startup["graph_capture_gib"], startup["available_kv_cache_gib"]) == \
        (15.0, 0.98, 102.73)
    usage = 8 * (1024 + 128) / startup["kv_cache_tokens"]  # 8 requests of 1024 + 128 tokens resident at once
    # the H200 reading that started review 7: 137.1 GB in use on the device for an 8B model
    save_bench_result(tmp_path, _served_load(usage, device_gb=137.1))
    memory = perf_criteria(tmp_path, "m")[0]
    expected_gib = 15.0 + 0.98 + usage * 102.73
    assert memory["measured"] == pytest.approx(expected_gib * 2**30 / 1e9)
    assert 17.0 < memory["measured"] < 18.5 and memory["passed"] is True
    assert memory["criterion"] == "model GPU memory under 70 GB"
    assert memory["detail"] == "weights 15.00 GiB + CUDA graphs 0.98 GiB + KV used 1.1% of 102.73 GiB"
    assert model_memory(_served_load(None, 137.1)) is None  # no /metrics sampled: no KV usage, no figure
    assert model_memory({**_served_load(usage, 137.1), "kind": "sweep"}) is None


def test_both_criteria_read_the_latest_result_that_measured_them(tmp_path: Path) -> None:
    save_bench_result(tmp_path, {**_served_load(0.9, 130.0), "created_at": "2026-11-26T10:00:00"})
    save_bench_result(tmp_path, {"model": "m", "kind": "agent", "agent": {"output_tokens_per_s": 40.0},
                                 "created_at": "2026-11-26T11:00:00"})
    newest = save_bench_result(tmp_path, {**_served_load(0.1, 130.0), "created_at": "2026-11-26T12:00:00"})
    save_bench_result(tmp_path, {"model": "m", "kind": "load", "points": [], "created_at": "2026-11-26T13:00:00"})
    memory, rate = perf_criteria(tmp_path, "m")
    assert memory["bench_id"] == load_bench_result(newest)["bench_id"]
    assert memory["measured"] == pytest.approx((15.98 + 0.1 * 102.73) * 2**30 / 1e9)  # not the older 0.9
    assert (rate["measured"], rate["passed"]) == (40.0, False)


def test_bad_files_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"x\.json is not an agentbench bench result"):
        load_bench_result(bad)
    with pytest.raises(ValueError, match="needs 'model' and 'kind'"):
        save_bench_result(tmp_path, {"model": "m"})


def test_an_unreadable_or_foreign_file_is_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    save_bench_result(tmp_path, {"model": "m", "kind": "agent", "agent": {"output_tokens_per_s": 64.0}})
    (tmp_path / "bench" / "broken.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "bench" / "foreign.json").write_text('{"some": "other tool"}', encoding="utf-8")
    with caplog.at_level("WARNING"):
        found = list_bench_results(tmp_path)
    assert [r["model"] for r in found] == ["m"]
    assert "broken.json" in caplog.text and "foreign.json" in caplog.text and "skipped" in caplog.text
    assert perf_criteria(tmp_path, "m")[1]["measured"] == 64.0  # the criteria still read the good ones
