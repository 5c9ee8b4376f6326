"""One NVML access layer: the sampler and the server's memory check get the same initialised module."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import agentbench.telemetry.nvml as nvml
from agentbench.telemetry.sampler import NvmlReader, TelemetrySampler, open_nvml


class FakePynvml:
    """The pynvml calls agentbench makes, answering with the shapes nvidia-ml-py returns (the
    figures of the H200 probe in tests/fixtures/vllm-0.24.0/nvml.json)."""

    NVML_CLOCK_SM = 1
    inits = 0

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"gpu{i}"

    def nvmlGpmQueryDeviceSupport(self, _h: Any) -> Any:
        raise RuntimeError("GPM not supported")  # the sampler must go on without it

    def nvmlDeviceGetMemoryInfo(self, _h: Any) -> Any:
        return SimpleNamespace(used=2 * 1024**3, total=141 * 1024**3)

    def nvmlDeviceGetComputeRunningProcesses(self, _h: Any) -> list[Any]:
        return [SimpleNamespace(pid=42, usedGpuMemory=1024**3)]

    def nvmlDeviceGetPowerUsage(self, _h: Any) -> int:
        return 78122

    def nvmlDeviceGetTotalEnergyConsumption(self, _h: Any) -> int:
        return 46738269

    def nvmlDeviceGetUtilizationRates(self, _h: Any) -> Any:
        return SimpleNamespace(gpu=0)

    def nvmlDeviceGetClockInfo(self, _h: Any, _clock: int) -> int:
        return 345

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, _h: Any) -> int:
        return 1


def test_sampler_and_device_share_one_initialised_module(monkeypatch) -> None:
    fake = FakePynvml()
    monkeypatch.setattr(nvml, "_state", {"module": fake, "reason": None})
    reader, reason = open_nvml()
    assert reader is not None and reason == "" and reader.nvml is fake
    device = nvml.open_device(0)
    assert device is not None and device.memory_used() == 2 * 1024**3 and device.process_memory() == {42: 1024**3}
    [gpu] = reader.read()
    assert gpu["power_w"] == 78.122 and gpu["energy_j"] == 46738.269 and gpu["processes"] == {"42": 1024.0}
    assert "gpm_sm_util_pct" not in gpu
    assert open_nvml([3]) == (None, "none of GPUs [3] exists (found 1)")


def test_without_nvml_both_say_why(monkeypatch) -> None:
    monkeypatch.setattr(nvml, "_state", {"module": None, "reason": "NVML unavailable: Driver Not Loaded"})
    assert open_nvml() == (None, "NVML unavailable: Driver Not Loaded")
    assert nvml.open_device() is None and nvml.nvml_status().reason == "NVML unavailable: Driver Not Loaded"


class GpmPynvml(FakePynvml):
    """FakePynvml with GPM (Hopper): samples are handles that must be freed exactly once and not while a
    metrics query uses them, as in NVML (either is a double free or a use after free in the driver
    library). Getting metrics takes a moment, as a real GPM query does, so two readers at once overlap."""

    NVML_GPM_METRICS_GET_VERSION = 1
    NVML_GPM_METRIC_SM_UTIL = 2
    NVML_GPM_METRIC_DRAM_BW_UTIL = 10

    def __init__(self) -> None:
        self.next_sample = 0
        self.live: set[int] = set()
        self.misuses = 0  # double frees, and samples freed while a query used them

    def nvmlGpmQueryDeviceSupport(self, _h: Any) -> Any:
        return SimpleNamespace(isSupportedDevice=1)

    def nvmlGpmSampleAlloc(self) -> int:
        self.next_sample += 1
        self.live.add(self.next_sample)
        return self.next_sample

    def nvmlGpmSampleGet(self, _h: Any, sample: int) -> int:
        return sample

    def nvmlGpmSampleFree(self, sample: int) -> None:
        if sample not in self.live:
            self.misuses += 1
        self.live.discard(sample)

    def c_nvmlGpmMetricsGet_t(self) -> Any:
        return SimpleNamespace(metrics=[SimpleNamespace(metricId=0, value=0.0) for _ in range(2)])

    def nvmlGpmMetricsGet(self, query: Any) -> None:
        time.sleep(0.002)
        if query.sample1 not in self.live or query.sample2 not in self.live:
            self.misuses += 1
        for m in query.metrics:
            m.value = 42.0


def test_gpm_samples_are_never_freed_twice_or_in_use_when_two_threads_sample() -> None:
    """The run's attach (event-loop thread) and the sampler thread used to read at once (review 3)."""
    fake = GpmPynvml()
    sampler = TelemetrySampler(interval_s=0.001, reader=NvmlReader(fake, [0]), scrape=lambda _u: {})
    with sampler:
        deadline = time.perf_counter() + 0.3
        while time.perf_counter() < deadline:
            sampler.sample_once()  # another thread than the sampler's own
    assert fake.misuses == 0
    assert len(fake.live) == 1  # only the latest sample is held
    assert sampler.samples[-1]["gpus"][0]["gpm_sm_util_pct"] == 42.0
