"""Telemetry: Prometheus parsing, the sampler's summaries (fake NVML readings of the real shapes),
and the no-GPU path that must never be an error."""

from __future__ import annotations

import time
from typing import Any

from agentbench.telemetry.prometheus import parse_prometheus, vllm_snapshot
from agentbench.telemetry.sampler import TelemetrySampler, summarize

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_waiting{engine="0",model_name="m"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:num_preemptions_total{engine="0",model_name="m"} 2.0
vllm:generation_tokens_total{engine="0",model_name="m"} 100.0
vllm:time_to_first_token_seconds_bucket{le="0.1",model_name="m"} 4.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} NaN
garbage line
"""


def test_prometheus_text_is_parsed_and_mapped() -> None:
    parsed = parse_prometheus(METRICS)
    assert parsed["vllm:num_requests_running"] == 3.0
    assert parsed["vllm:time_to_first_token_seconds_bucket"] == 4.0  # NaN skipped
    assert vllm_snapshot(METRICS) == {"running": 3.0, "waiting": 1.0, "kv_cache_usage": 0.25, "preemptions": 2.0,
                                      "generation_tokens": 100.0}


class FakeReader:
    """Stands in for NvmlReader (no GPU here): returns its documented per-GPU shape."""

    def __init__(self) -> None:
        self.n = 0

    def read(self) -> list[dict[str, Any]]:
        self.n += 1
        return [{"index": 0, "memory_used_mib": 1000.0 + 10 * self.n, "power_w": 100.0 + self.n,
                 "energy_j": 50.0 * self.n, "util_pct": 90}]


def test_summary_energy_peaks_and_joules_per_token() -> None:
    samples = [{"t": i * 0.1, "gpus": [{"memory_used_mib": m, "power_w": p, "energy_j": e}],
                "vllm": {"kv_cache_usage": kv, "preemptions": pre}}
               for i, (m, p, e, kv, pre) in enumerate([(100, 200, 1000, 0.1, 0), (300, 400, 1060, 0.5, 1),
                                                       (200, 300, 1100, 0.2, 3)])]
    s = summarize(samples, output_tokens=50)
    assert s["peak_memory_mib"] == 300 and s["peak_power_w"] == 400 and s["mean_power_w"] == 300
    assert s["energy_j"] == 100 and s["joules_per_output_token"] == 2.0
    assert s["peak_kv_cache_usage"] == 0.5 and s["preemptions_delta"] == 3


def _sample_for(sampler: TelemetrySampler, seconds: float) -> tuple[float, float]:
    """Run ``sampler`` for ``seconds``; the window (perf_counter) inside its run."""
    with sampler:
        t0 = time.perf_counter()
        time.sleep(seconds)
        t1 = time.perf_counter()
    return t0, t1


def test_sampler_thread_windows_and_metrics_scrape() -> None:
    scrapes: list[str] = []

    def scrape(url: str) -> dict[str, float]:
        scrapes.append(url)
        time.sleep(0.004)  # a scrape takes time on the server: the sampler times it
        return vllm_snapshot(METRICS)

    sampler = TelemetrySampler(interval_s=0.01, metrics_url="http://srv/v1", metrics_interval_s=0.01,
                               reader=FakeReader(), scrape=scrape)  # type: ignore[arg-type]
    t0, t1 = _sample_for(sampler, 0.15)
    rec = sampler.record(t0, t1, output_tokens=10)
    assert rec["available"] and len(rec["samples"]) >= 3 and scrapes[0] == "http://srv/v1"
    assert rec["summary"]["energy_j"] > 0 and rec["summary"]["peak_running"] == 3.0
    assert all(0 <= s["t"] <= t1 - t0 for s in rec["samples"])
    scraped = [s for s in rec["samples"] if "vllm" in s]
    assert scraped and all(s["vllm_scrape_ms"] >= 4.0 for s in scraped)
    assert 4.0 <= rec["summary"]["mean_metrics_scrape_ms"] <= rec["summary"]["max_metrics_scrape_ms"]


def test_without_nvml_it_is_recorded_unavailable(monkeypatch) -> None:
    import agentbench.telemetry.sampler as mod

    monkeypatch.setattr(mod, "open_nvml", lambda gpus=None: (None, "no NVIDIA GPU"))
    sampler = TelemetrySampler()
    with sampler:
        pass
    rec = sampler.record()
    assert rec["available"] is False and rec["reason"] == "no NVIDIA GPU"


def test_a_slow_metrics_scrape_does_not_slow_the_gpu_readings() -> None:
    # Under load vLLM's API process answered /metrics in up to 1 s on the H200; the GPU readings must
    # keep their rate meanwhile (in one thread they fell from 10 Hz to about 7).
    def slow_scrape(_url: str) -> dict[str, float]:
        time.sleep(0.1)
        return vllm_snapshot(METRICS)

    sampler = TelemetrySampler(interval_s=0.01, metrics_url="http://srv/v1", metrics_interval_s=0.01,
                               reader=FakeReader(), scrape=slow_scrape)  # type: ignore[arg-type]
    summary = sampler.record(*_sample_for(sampler, 0.6))["summary"]
    assert summary["samples"] >= 25, summary  # ~60 possible at 100 Hz; in one thread it managed 5
    assert 3 <= summary["scrapes"] <= 7 and summary["mean_metrics_scrape_ms"] >= 100.0


class SlowFlakyReader(FakeReader):
    """An NVML read that takes 30 ms (so scrapes finish in the middle of it) and fails once."""

    def read(self) -> list[dict[str, Any]]:
        time.sleep(0.03)
        if self.n == 2:
            self.n += 1
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return super().read()


def test_readings_of_both_threads_stay_in_time_order_and_a_failed_read_is_recorded() -> None:
    sampler = TelemetrySampler(interval_s=0.001, metrics_url="http://srv/v1", metrics_interval_s=0.001,
                               reader=SlowFlakyReader(), scrape=lambda _u: vllm_snapshot(METRICS))  # type: ignore[arg-type]
    _sample_for(sampler, 0.4)
    times = [s["t"] for s in sampler.samples]
    assert times == sorted(times) and sum(1 for s in sampler.samples if "gpus" in s) >= 5
    rec = sampler.record()
    assert rec["sampler_error"] == "RuntimeError: NVML_ERROR_GPU_IS_LOST"
    gpu = [s for s in rec["samples"] if "gpus" in s]
    assert rec["summary"]["samples"] == len(gpu) and rec["summary"]["energy_j"] == gpu[-1]["gpus"][0]["energy_j"] - 50.0
