"""The agent workload bench over the wire-format test server (real HTTP, the runner, the store),
stored results shown with --show and written as a report with plots; the seed's perf criteria."""

from __future__ import annotations

import asyncio
import builtins
import json
from pathlib import Path

import pytest

import agentbench.telemetry.sampler as sampler_mod
from agentbench.bench.agent import agent_bench, agent_metrics
from agentbench.bench.criteria import perf_criteria
from agentbench.bench.report import write_bench_report
from agentbench.bench.results import list_bench_results, save_bench_result
from agentbench.cli.app import main
from agentbench.models.registry import load_registry
from agentbench.runner.records import ModelCallRecord, ScenarioResult
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore
from agentbench.testing import OpenAITestServer, reference_responder

SCENARIOS = "api_weather_forecast_compare,api_tickets_triage"  # in-process tools only: no sandbox timing


def test_agent_bench_runs_the_suite_through_the_runner_and_stores_kind_agent(library: ScenarioLibrary,
                                                                             tmp_path: Path, capsys) -> None:
    with OpenAITestServer(reference_responder(library), model_names=["ref"], delay_s=0.05) as server:
        code = main(["bench", "--agent", "--base-url", server.base_url, "--model-name", "ref", "--scenarios",
                     SCENARIOS, "--concurrency", "1,2", "--results-dir", str(tmp_path), "--json"])
    assert code == 0, capsys.readouterr().err
    printed = json.loads(capsys.readouterr().out)
    stored = list_bench_results(tmp_path, "ref")
    assert [r["kind"] for r in stored] == ["agent", "agent"] and len(printed) == 2
    assert [r["config"]["concurrency"] for r in stored] == [1, 2]
    for r in stored:
        a = r["agent"]
        assert a["scenario_runs"] == 2 and a["passed"] == 2 and a["errors"] == 0
        assert a["model_calls"] >= 2 and a["output_tokens"] > 0
        assert a["output_tokens_per_s"] == pytest.approx(a["output_tokens"] / a["duration_s"])
        assert a["scenario_latency_ms"]["percentiles"]["p50"] >= 50  # each model call waits 50 ms
        assert r["telemetry"]["available"] is False and r["gpu_available"] is False
    # the scenario runs are an ordinary stored run
    assert (tmp_path / "runs" / stored[0]["run_id"]).is_dir()
    # the seed's agent criterion reads the latest agent bench
    agent_crit = perf_criteria(tmp_path, "ref")[1]
    assert agent_crit["measured"] == pytest.approx(stored[-1]["agent"]["output_tokens_per_s"])


def _result(wall: float, calls: list[tuple[float, int | None]]) -> ScenarioResult:
    return ScenarioResult(run_id="r", model="m", scenario_id=f"s{wall}", category="c", outcome="completed",
                          started_at="2026-11-26T00:00:00", wall_s=wall, passed=True, score=1.0,
                          model_calls=[ModelCallRecord(turn=0, step=i, latency_s=lat, output_tokens=out)
                                       for i, (lat, out) in enumerate(calls)])


def test_agent_metrics_percentiles_rates_and_unreported_usage() -> None:
    m = agent_metrics([_result(1.0, [(0.2, 10), (0.4, 30)]), _result(3.0, [(0.6, 20)])], 2.0)
    assert m["scenario_runs_per_s"] == 1.0 and m["model_calls_per_s"] == 1.5
    assert m["output_tokens"] == 60 and m["output_tokens_per_s"] == 30.0
    assert m["scenario_latency_ms"]["median"] == pytest.approx(2000.0)
    assert m["model_call_latency_ms"]["mean"] == pytest.approx(400.0)
    none = agent_metrics([_result(1.0, [(0.2, None)])], 1.0)
    assert none["output_tokens"] is None and none["output_tokens_per_s"] is None  # not measured, not zero
    with pytest.raises(ValueError, match="positive"):
        agent_metrics([], 0.0)


def _load_record(model: str = "m") -> dict:
    def point(c: int, tps: float) -> dict:
        lat = {"mean": 10.0 * c, "median": 10.0, "std": 1.0, "percentiles": {"p50": 10.0, "p90": 12.0, "p99": 15.0}}
        return {"concurrency": c, "request_rate": None, "num_prompts": 16,
                "telemetry": {"summary": {"peak_memory_gb": 130.5, "peak_kv_cache_usage": 0.05 * c}},
                "metrics": {"completed": 16, "failed": 0, "request_throughput": 1.0, "request_goodput": None,
                            "output_throughput": tps, "ttft_ms": lat, "tpot_ms": lat, "itl_ms": lat, "e2el_ms": lat}}

    startup = {"weights_gib": 15.0, "graph_capture_gib": 0.98, "available_kv_cache_gib": 102.73}
    return {"model": model, "kind": "load", "server": {"startup": startup},
            "points": [point(1, 200.0), point(8, 1300.0)],
            "context": [{"context_len": 1024, "input_len": 896, "mean_ttft_ms": 30.0, "mean_tpot_ms": 5.0,
                         "failed": 0, "peak_memory_gb": 60.0, "peak_kv_cache_usage": 0.01},
                        {"context_len": 4096, "input_len": 3968, "mean_ttft_ms": 90.0, "mean_tpot_ms": 5.2,
                         "failed": 0, "peak_memory_gb": None, "peak_kv_cache_usage": None}]}


def test_report_writes_tables_plots_and_perf_criteria(tmp_path: Path, capsys) -> None:
    pytest.importorskip("matplotlib")
    save_bench_result(tmp_path, _load_record())
    assert main(["bench", "--report", str(tmp_path / "rep"), "--results-dir", str(tmp_path)]) == 0
    md = (tmp_path / "rep" / "bench-report.md").read_text()
    assert "Load sweep" in md and "Memory vs context length" in md and "1300.0" in md
    # weights + graphs + the peak KV usage (0.40 at c=8) of 102.73 GiB: 57.07 GiB = 61.3 GB, not the device's 130.5
    assert "| m | model GPU memory under 70 GB | 61.3 GB | PASS |" in md
    assert "| m | agent workload over 50 output tokens/s | - | not measured |" in md
    pngs = sorted(p.name for p in (tmp_path / "rep").glob("*.png"))
    assert len(pngs) == 2 and all((tmp_path / "rep" / n).read_bytes()[:4] == b"\x89PNG" for n in pngs)
    assert all(f"]({n})" in md for n in pngs)
    assert "<img src=" in (tmp_path / "rep" / "bench-report.html").read_text()


def test_report_without_matplotlib_says_how_to_get_plots(tmp_path: Path, monkeypatch) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    written = write_bench_report([_load_record()], tmp_path)
    assert "pip install 'agentbench[plots]'" in written["note"]
    assert [p.suffix for p in written["files"]] == [".md", ".html"]
    assert "No plots: plots need matplotlib" in (tmp_path / "bench-report.md").read_text()


def test_show_prints_a_stored_result_and_names_unknown_ids(tmp_path: Path, capsys) -> None:
    path = save_bench_result(tmp_path, _load_record())
    bench_id = json.loads(path.read_text())["bench_id"]
    assert main(["bench", "--show", "latest", "--results-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bench_id"] == bench_id
    assert main(["bench", "--show", bench_id, "--results-dir", str(tmp_path)]) == 0
    assert "1300.0" in capsys.readouterr().out
    assert main(["bench", "--show", "nope", "--results-dir", str(tmp_path)]) == 2
    assert "no bench result 'nope'" in " ".join(capsys.readouterr().err.replace("│", " ").split())


class _Reader:
    """Stands in for NvmlReader (no GPU here): its documented per-GPU shape."""

    def __init__(self) -> None:
        self.n = 0

    def read(self) -> list[dict]:
        self.n += 1
        return [{"index": 0, "memory_used_mib": 1000.0 + self.n, "power_w": 300.0, "energy_j": 5.0 * self.n}]


def test_agent_bench_samples_the_gpu_once_for_the_suite_and_its_scenarios(library: ScenarioLibrary,
                                                                          tmp_path: Path, monkeypatch) -> None:
    """The scenario windows come from the agent bench's own sampler, not a second one (review 19)."""
    readers: list[_Reader] = []
    monkeypatch.setattr(sampler_mod, "open_nvml", lambda gpus=None: (readers.append(_Reader()) or readers[-1], ""))
    scenarios = [library.get(s) for s in SCENARIOS.split(",")]
    record = asyncio.run(agent_bench(load_registry()["reference"], scenarios, library, results_root=tmp_path,
                                     concurrency=2, telemetry_interval_s=0.01))
    assert len(readers) == 1
    assert record["telemetry"]["available"] is True and record["telemetry"]["summary"]["samples"] >= 1
    results = list(ResultStore(tmp_path).results(record["run_id"]))
    assert len(results) == 2
    assert all(r.telemetry and r.telemetry["available"] and r.telemetry["summary"]["samples"] >= 1 for r in results)
