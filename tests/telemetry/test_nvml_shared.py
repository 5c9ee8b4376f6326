"""One NVML access layer: the sampler and the server's memory check get the same initialised module."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import agentbench.telemetry.nvml as nvml
from agentbench.telemetry.sampler import open_nvml


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
