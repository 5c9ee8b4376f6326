"""Background telemetry: NVML GPU counters (nvidia-ml-py, ``import pynvml``, optional) and vLLM's
``/metrics``, sampled in two threads (10 Hz and 2 Hz by default) and summarised over any time window.

Without ``pynvml`` or an NVIDIA GPU the sampler still runs (vLLM metrics only, or nothing) and
its records say ``"available": false`` with the reason; that is never an error.

A GPU sample is ``{"t": perf_counter seconds, "gpus": [...]}``, a scrape ``{"t", "vllm": {...},
"vllm_scrape_ms": float}``; each GPU entry holds
``index, memory_used_mib, memory_total_mib, processes {pid: MiB}, util_pct, power_w, energy_j
(counter since driver load), sm_clock_mhz, throttle_reasons`` and, on Hopper and later,
``gpm_sm_util_pct`` and ``gpm_dram_bw_util_pct`` (GPM, between this sample and the previous one).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from agentbench.telemetry.nvml import GpuDevice, nvml_module, nvml_status
from agentbench.telemetry.prometheus import scrape_vllm

__all__ = ["NvmlReader", "TelemetrySampler", "open_nvml", "summarize"]

MIB = 1024 * 1024


class NvmlReader:
    """Reads one snapshot of every selected GPU through ``pynvml`` (already initialised).

    Every reading goes through :class:`agentbench.telemetry.nvml.GpuDevice` (the one NVML reader the
    server's memory checks use too); only the GPM samples, which need state between readings, live here.
    :meth:`read` is serialised by a lock: two readers at once would free the same GPM sample twice.
    """

    def __init__(self, nvml: Any, indices: Sequence[int]) -> None:
        self.nvml = nvml
        self.devices = [GpuDevice(nvml, nvml.nvmlDeviceGetHandleByIndex(i), i) for i in indices]
        self._lock = threading.Lock()
        self._gpm: dict[int, Any] = {}
        for device in self.devices:
            try:
                if nvml.nvmlGpmQueryDeviceSupport(device.handle).isSupportedDevice:
                    self._gpm[device.index] = nvml.nvmlGpmSampleGet(device.handle, nvml.nvmlGpmSampleAlloc())
            except Exception:  # GPM is Hopper+ and needs a recent driver: optional
                continue

    def read(self) -> list[dict[str, Any]]:
        """One entry per GPU (see the module docstring)."""
        with self._lock:
            return [self._read_one(device) for device in self.devices]

    def _read_one(self, device: GpuDevice) -> dict[str, Any]:
        mem = device.memory()
        procs = device.process_memory() or {}
        power = device.query("nvmlDeviceGetPowerUsage")
        energy = device.query("nvmlDeviceGetTotalEnergyConsumption")
        entry: dict[str, Any] = {
            "index": device.index,
            "memory_used_mib": mem[0] / MIB if mem is not None else None,
            "memory_total_mib": mem[1] / MIB if mem is not None else None,
            "processes": {str(pid): used / MIB for pid, used in procs.items()},
            "util_pct": getattr(device.query("nvmlDeviceGetUtilizationRates"), "gpu", None),
            "power_w": power / 1000 if power is not None else None,
            "energy_j": energy / 1000 if energy is not None else None,
            "sm_clock_mhz": device.query("nvmlDeviceGetClockInfo", self.nvml.NVML_CLOCK_SM),
            "throttle_reasons": device.query("nvmlDeviceGetCurrentClocksThrottleReasons"),
        }
        if device.index in self._gpm:
            entry.update(self._gpm_read(device.index, device.handle))
        return entry

    def _gpm_read(self, i: int, handle: Any) -> dict[str, Any]:
        nv = self.nvml
        try:
            fresh = nv.nvmlGpmSampleGet(handle, nv.nvmlGpmSampleAlloc())
            query = nv.c_nvmlGpmMetricsGet_t()
            query.version = nv.NVML_GPM_METRICS_GET_VERSION
            query.numMetrics = 2
            query.sample1, query.sample2 = self._gpm[i], fresh
            query.metrics[0].metricId = nv.NVML_GPM_METRIC_SM_UTIL
            query.metrics[1].metricId = nv.NVML_GPM_METRIC_DRAM_BW_UTIL
            nv.nvmlGpmMetricsGet(query)
            nv.nvmlGpmSampleFree(self._gpm[i])
            self._gpm[i] = fresh
            return {"gpm_sm_util_pct": query.metrics[0].value, "gpm_dram_bw_util_pct": query.metrics[1].value}
        except Exception:
            return {}


def open_nvml(indices: Sequence[int] | None = None) -> tuple[NvmlReader | None, str]:
    """An :class:`NvmlReader` for ``indices`` (default: every GPU), or None and why not. NVML is opened
    through :mod:`agentbench.telemetry.nvml`, the one access layer (initialised once per process)."""
    status = nvml_status()
    if not status.available:
        return None, status.reason
    chosen = list(range(status.device_count)) if indices is None else \
        [i for i in indices if 0 <= i < status.device_count]
    if not chosen:
        return None, f"none of GPUs {list(indices or [])} exists (found {status.device_count})"
    return NvmlReader(nvml_module(), chosen), ""


class TelemetrySampler:
    """Samples GPUs and a vLLM server's ``/metrics`` in two daemon threads.

    The GPU readings (every ``interval_s``) and the ``/metrics`` scrapes (every ``metrics_interval_s``)
    run in separate threads because a scrape waits on vLLM's API process: on the H200 at concurrency 64
    a scrape took 44-189 ms on average and up to 1 s, and in one thread those waits cut the NVML rate
    from 10 Hz to 6.8-8.8 Hz. A scrape is stored as a sample of its own (``vllm`` and ``vllm_scrape_ms``,
    no ``gpus``). Use as a context manager (or :meth:`start`/:meth:`stop`); :meth:`record` gives the
    summary and the samples of any window, so one sampler can serve many concurrent scenario runs.
    ``reader`` and ``scrape`` can be replaced (tests pass fakes that return the real shapes).
    """

    def __init__(self, *, interval_s: float = 0.1, metrics_url: str | None = None, metrics_interval_s: float = 0.5,
                 gpus: Sequence[int] | None = None, reader: NvmlReader | None = None,
                 scrape: Callable[[str], dict[str, float]] = scrape_vllm) -> None:
        if interval_s <= 0:
            raise ValueError(f"telemetry interval must be positive, got {interval_s}")
        if metrics_interval_s <= 0:
            raise ValueError(f"metrics interval must be positive, got {metrics_interval_s}")
        self.interval_s = interval_s
        self.metrics_url = metrics_url
        self.metrics_interval_s = metrics_interval_s
        self.reason = ""
        if reader is None:
            reader, self.reason = open_nvml(gpus)
        self.reader = reader
        self._scrape = scrape
        self.samples: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.metrics_error = ""
        self.sampler_error = ""

    @property
    def gpu_available(self) -> bool:
        """Whether NVML readings are being taken."""
        return self.reader is not None

    def _store(self, sample: dict[str, Any]) -> dict[str, Any]:
        # Kept in time order: a GPU reading is stamped before its NVML calls and a scrape after its GET,
        # so the two threads can finish out of order (windows, energy and durations read the ends).
        with self._lock:
            bisect.insort(self.samples, sample, key=_time)
        return sample

    def gpu_sample(self) -> dict[str, Any]:
        """Take one GPU reading now (and store it; without NVML only the time)."""
        sample: dict[str, Any] = {"t": time.perf_counter()}
        if self.reader is not None:
            sample["gpus"] = self.reader.read()
        return self._store(sample)

    def metrics_sample(self) -> dict[str, Any] | None:
        """Scrape ``/metrics`` now and store it, timed (None: no server set, or it did not answer)."""
        if not self.metrics_url:
            return None
        t0 = time.perf_counter()
        try:
            values = self._scrape(self.metrics_url)
        except Exception as exc:  # server not up yet or gone: keep sampling the GPU
            self.metrics_error = str(exc)
            return None
        now = time.perf_counter()
        # The scrape is served by vLLM's API process, the one that streams the tokens: its duration
        # under load says how busy that process is (and what a scrape costs it).
        return self._store({"t": now, "vllm": values, "vllm_scrape_ms": (now - t0) * 1000})

    def sample_once(self) -> dict[str, Any]:
        """Take one GPU reading and one scrape now (both stored); returns the GPU reading."""
        sample = self.gpu_sample()
        self.metrics_sample()
        return sample

    def _every(self, period: float, take: Callable[[], object]) -> None:
        while not self._stop.is_set():
            try:
                take()
            except Exception as exc:  # a reading that fails is recorded and the thread goes on
                self.sampler_error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(period)

    def start(self) -> TelemetrySampler:
        """Start sampling in the background (idempotent)."""
        if not self._threads:
            self._stop.clear()
            jobs: list[tuple[str, float, Callable[[], object]]] = [("gpu", self.interval_s, self.gpu_sample)]
            if self.metrics_url:
                jobs.append(("metrics", self.metrics_interval_s, self.metrics_sample))
            for name, period, take in jobs:
                thread = threading.Thread(target=self._every, args=(period, take), name=f"agentbench-telemetry-{name}",
                                          daemon=True)
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop sampling and take a final reading and scrape, so a short window still has an end."""
        if self._threads:
            self._stop.set()
            for thread in self._threads:
                thread.join()
            self._threads = []
            self.sample_once()

    def __enter__(self) -> TelemetrySampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def window(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """The samples taken within ``[t0, t1]`` (perf_counter seconds)."""
        with self._lock:
            return [s for s in self.samples if t0 <= s["t"] <= t1]

    def record(self, t0: float | None = None, t1: float | None = None, *, output_tokens: int | None = None,
               keep_samples: bool = True) -> dict[str, Any]:
        """The telemetry record of a window (default: everything): ``available``, ``reason``,
        ``summary`` and (unless ``keep_samples`` is false) ``samples`` with ``t`` relative to ``t0``."""
        if t0 is None:  # from the first sample on
            with self._lock:
                t0 = self.samples[0]["t"] if self.samples else 0.0
        chosen = self.window(t0, t1 if t1 is not None else float("inf"))
        rec: dict[str, Any] = {"available": self.gpu_available, "interval_s": self.interval_s,
                               "summary": summarize(chosen, output_tokens=output_tokens)}
        if not self.gpu_available:
            rec["reason"] = self.reason
        if self.metrics_error:
            rec["metrics_error"] = self.metrics_error
        if self.sampler_error:
            rec["sampler_error"] = self.sampler_error
        if keep_samples:
            rec["samples"] = [{**s, "t": round(s["t"] - t0, 4)} for s in chosen]
        return rec


def _time(sample: dict[str, Any]) -> float:
    return float(sample["t"])


def _values(samples: Sequence[dict[str, Any]], key: str) -> list[float]:
    """Per-sample totals of a GPU field over all sampled GPUs (None where no GPU reported it)."""
    out = []
    for s in samples:
        vals = [g[key] for g in s.get("gpus", []) if g.get(key) is not None]
        if vals:
            out.append(sum(vals))
    return out


def summarize(samples: Sequence[dict[str, Any]], *, output_tokens: int | None = None) -> dict[str, Any]:
    """Peak memory, mean and peak power, energy (counter difference, summed over GPUs), joules per
    output token, peak KV-cache usage and queue depths, preemptions over the window, and the mean and
    longest ``/metrics`` scrape. ``samples`` counts the GPU readings, ``scrapes`` the ``/metrics`` ones."""
    scrapes = sum(1 for s in samples if "vllm" in s)
    summary: dict[str, Any] = {"samples": len(samples) - scrapes}
    if scrapes:
        summary["scrapes"] = scrapes
    if len(samples) >= 2:
        summary["duration_s"] = samples[-1]["t"] - samples[0]["t"]
    mem = _values(samples, "memory_used_mib")
    power = _values(samples, "power_w")
    energy = _values(samples, "energy_j")
    if mem:
        summary["peak_memory_mib"] = max(mem)
        summary["peak_memory_gb"] = max(mem) * MIB / 1e9
    if power:
        summary["mean_power_w"] = sum(power) / len(power)
        summary["peak_power_w"] = max(power)
    if len(energy) >= 2:
        summary["energy_j"] = energy[-1] - energy[0]
        if output_tokens:
            summary["joules_per_output_token"] = summary["energy_j"] / output_tokens
    for key in ("util_pct", "gpm_sm_util_pct", "gpm_dram_bw_util_pct"):
        vals = _values(samples, key)
        if vals:
            summary[f"mean_{key}"] = sum(vals) / len(vals)
    vllm = [s["vllm"] for s in samples if s.get("vllm")]
    for key in ("kv_cache_usage", "running", "waiting"):
        vals = [v[key] for v in vllm if key in v]
        if vals:
            summary[f"peak_{key}"] = max(vals)
    scrape_ms = [s["vllm_scrape_ms"] for s in samples if "vllm_scrape_ms" in s]
    if scrape_ms:
        summary["mean_metrics_scrape_ms"] = sum(scrape_ms) / len(scrape_ms)
        summary["max_metrics_scrape_ms"] = max(scrape_ms)
    for key in ("preemptions", "generation_tokens", "prompt_tokens"):
        vals = [v[key] for v in vllm if key in v]
        if len(vals) >= 2:
            summary[f"{key}_delta"] = vals[-1] - vals[0]
    return summary
