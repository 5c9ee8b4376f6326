"""Minimal NVML access (nvidia-ml-py, ``import pynvml``): a device, its memory, per-process memory.

Optional at every level: without the package, the driver library or a GPU, :func:`open_device`
returns ``None`` and :func:`nvml_status` says why; nothing here raises for a missing GPU.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["GpuDevice", "NvmlStatus", "nvml_module", "nvml_status", "open_device"]

_lock = threading.Lock()
_state: dict[str, Any] = {"module": None, "reason": None}


@dataclass(frozen=True)
class NvmlStatus:
    """Whether NVML can be used here, and if not, why (``reason``)."""

    available: bool
    reason: str = ""
    device_count: int = 0


def _nvml() -> Any:
    """The initialised ``pynvml`` module, or ``None`` (the reason is kept in ``_state``)."""
    with _lock:
        if _state["module"] is not None or _state["reason"] is not None:
            return _state["module"]
        try:
            import pynvml
        except ImportError:
            _state["reason"] = "nvidia-ml-py is not installed (pip install 'agentbench[gpu]')"
            return None
        try:
            pynvml.nvmlInit()  # idempotent in the driver; done once per process here
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            _state["reason"] = f"NVML unavailable: {exc}"
            return None
        _state["module"] = pynvml
        return pynvml


def nvml_module() -> Any:
    """The initialised ``pynvml`` module (initialised once per process, shared by the server's
    memory checks and the telemetry sampler), or ``None``: :func:`nvml_status` says why."""
    return _nvml()


def nvml_status() -> NvmlStatus:
    """Whether NVML works on this machine (and how many GPUs it sees)."""
    nvml = _nvml()
    if nvml is None:
        return NvmlStatus(False, str(_state["reason"]))
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except Exception as exc:
        return NvmlStatus(False, f"NVML cannot count devices: {exc}")
    if count == 0:
        return NvmlStatus(False, "NVML sees no GPU")
    return NvmlStatus(True, "", count)


class GpuDevice:
    """One GPU through NVML. Reads return ``None`` when NVML fails mid-way (never raise)."""

    def __init__(self, nvml: Any, handle: Any, index: int) -> None:
        self._nvml = nvml
        self.handle = handle
        self.index = index

    @property
    def name(self) -> str:
        """The product name, e.g. ``NVIDIA H200``."""
        try:
            name = self._nvml.nvmlDeviceGetName(self.handle)
        except Exception:
            return "unknown"
        return name.decode() if isinstance(name, bytes) else str(name)

    def query(self, function: str, *args: Any) -> Any:
        """``pynvml.<function>(handle, *args)``, or ``None`` when NVML fails (one counter unsupported on
        this GPU must not lose the others). Every NVML reading of a device goes through here."""
        try:
            return getattr(self._nvml, function)(self.handle, *args)
        except Exception:
            return None

    def memory(self) -> tuple[int, int] | None:
        """``(used, total)`` bytes of device memory."""
        info = self.query("nvmlDeviceGetMemoryInfo")
        return None if info is None else (int(info.used), int(info.total))

    def memory_used(self) -> int | None:
        """Bytes of device memory in use (all processes, plus the driver's reservation)."""
        memory = self.memory()
        return None if memory is None else memory[0]

    def process_memory(self) -> dict[int, int] | None:
        """Bytes used per process id by compute processes (0 when the driver does not say)."""
        procs = self.query("nvmlDeviceGetComputeRunningProcesses")
        if procs is None:
            return None
        # usedGpuMemory is None when the driver withholds it (e.g. in some containers).
        return {int(p.pid): int(p.usedGpuMemory or 0) for p in procs}


def open_device(index: int = 0) -> GpuDevice | None:
    """GPU ``index``, or ``None`` without NVML or such a GPU (see :func:`nvml_status`)."""
    nvml = _nvml()
    if nvml is None:
        return None
    try:
        return GpuDevice(nvml, nvml.nvmlDeviceGetHandleByIndex(index), index)
    except Exception:
        return None
