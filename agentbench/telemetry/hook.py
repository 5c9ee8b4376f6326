"""Telemetry for scenario runs: one sampler per model run (the runner's hook), and each scenario
result gets the summary of its own time window (concurrent scenarios share the GPU, so their
windows overlap: the summary says what the GPU did while that scenario ran, not what it cost).

What a scenario result keeps is the window's summary only (no samples: at 10 Hz, overlapping windows
would store the same samples many times), and no joules per output token (whole-GPU energy over a
window shared with other scenarios, divided by one scenario's tokens, is N times too high at
concurrency N; whole-suite figures are in ``agentbench bench --agent``).

The sampler is built once the model's backend has started (:meth:`RunTelemetry.for_backend`): only a
``vllm`` backend has a ``/metrics`` endpoint worth scraping (the address it started or attached to),
and a server agentbench launched names the one GPU to sample.

``AGENTBENCH_TELEMETRY=0`` turns it off; ``AGENTBENCH_TELEMETRY_INTERVAL_S`` sets the period (0.1 s).
Without an NVIDIA GPU or nvidia-ml-py a result's telemetry is ``{"available": false, "reason": ...}``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from agentbench.models.backends import Backend
from agentbench.runner.records import ScenarioResult
from agentbench.telemetry.sampler import TelemetrySampler

__all__ = ["RunTelemetry", "safe_attach"]

log = logging.getLogger(__name__)


class RunTelemetry:
    """Samples while a model's scenarios run; :meth:`attach` fills ``ScenarioResult.telemetry``.

    Args:
        metrics_url: the vLLM server whose ``/metrics`` to scrape (``None``: none).
        gpus: the GPU indices to sample (``None``: every GPU).
        sampler: a sampler someone else owns and runs (the agent bench's): it is used as is, never
            started or stopped here, so the GPU and ``/metrics`` are sampled once.
    """

    def __init__(self, *, metrics_url: str | None = None, gpus: Sequence[int] | None = None,
                 sampler: TelemetrySampler | None = None) -> None:
        self.enabled = os.environ.get("AGENTBENCH_TELEMETRY", "1") != "0"
        self.sampler: TelemetrySampler | None = None
        self._owned = sampler is None
        if not self.enabled:
            return
        if sampler is None:
            interval = float(os.environ.get("AGENTBENCH_TELEMETRY_INTERVAL_S", "0.1"))
            sampler = TelemetrySampler(interval_s=interval, metrics_url=metrics_url, gpus=gpus)
        self.sampler = sampler

    @classmethod
    def for_backend(cls, backend: Backend, *, sampler: TelemetrySampler | None = None) -> RunTelemetry:
        """The telemetry of a started ``backend``: ``/metrics`` of its vLLM server (the address
        ``start`` launched or attached to; other backends, e.g. hosted APIs, are not scraped) and,
        when agentbench launched that server, only its GPU."""
        if backend.spec.backend != "vllm":
            return cls(sampler=sampler)
        server = getattr(backend, "server", None)
        gpus = [server.gpu_index] if server is not None else None
        return cls(metrics_url=backend.spec.base_url, gpus=gpus, sampler=sampler)

    @property
    def sampling(self) -> bool:
        """Whether anything is sampled (a GPU, or a server's /metrics)."""
        return self.sampler is not None and (self.sampler.gpu_available or bool(self.sampler.metrics_url))

    def __enter__(self) -> RunTelemetry:
        if self.sampler is not None and self.sampling and self._owned:
            self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sampler is not None and self.sampling and self._owned:
            self.sampler.stop()

    def attach(self, result: ScenarioResult, t0: float, t1: float) -> None:
        """Set the result's telemetry to the summary of the window ``[t0, t1]`` (perf_counter seconds).

        Nothing is sampled here (this runs on the event loop while the sampler thread samples): the
        window starts one sampling period early instead, so a scenario shorter than the period
        still has the reading taken just before it started."""
        if self.sampler is None:
            return
        record: dict[str, Any]
        if self.sampling:
            record = self.sampler.record(t0 - self.sampler.interval_s, t1, keep_samples=False)
        else:
            record = {"available": False, "reason": self.sampler.reason}
        result.telemetry = record


def safe_attach(attach: Callable[[ScenarioResult, float, float], None], result: ScenarioResult,
                t0: float, t1: float) -> None:
    """``attach(result, t0, t1)``; a telemetry error is logged and recorded in the result's telemetry,
    never raised: a graded result must not be lost to its telemetry."""
    try:
        attach(result, t0, t1)
    except Exception as exc:
        log.warning("telemetry for %s (repeat %d) failed: %s", result.scenario_id, result.repeat, exc)
        result.telemetry = {"available": False, "reason": f"telemetry error: {type(exc).__name__}: {exc}"}
