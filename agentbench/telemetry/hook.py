"""Telemetry for scenario runs: one sampler per model run (the runner's hook), and each scenario
result gets the record of its own time window (concurrent scenarios share the GPU, so their
windows overlap: the record says what the GPU did while that scenario ran).

``AGENTBENCH_TELEMETRY=0`` turns it off; ``AGENTBENCH_TELEMETRY_INTERVAL_S`` sets the period (0.1 s).
Without an NVIDIA GPU or nvidia-ml-py a result's telemetry is ``{"available": false, "reason": ...}``.
"""

from __future__ import annotations

import os
from typing import Any

from agentbench.models.registry import ModelSpec
from agentbench.runner.records import ScenarioResult
from agentbench.telemetry.sampler import TelemetrySampler

__all__ = ["RunTelemetry"]


class RunTelemetry:
    """Samples while a model's scenarios run; :meth:`attach` fills ``ScenarioResult.telemetry``."""

    def __init__(self, spec: ModelSpec, *, sampler: TelemetrySampler | None = None) -> None:
        self.enabled = os.environ.get("AGENTBENCH_TELEMETRY", "1") != "0"
        self.sampler: TelemetrySampler | None = None
        if not self.enabled:
            return
        if sampler is None:
            interval = float(os.environ.get("AGENTBENCH_TELEMETRY_INTERVAL_S", "0.1"))
            metrics_url = spec.base_url if spec.backend in ("vllm", "openai") else None
            sampler = TelemetrySampler(interval_s=interval, metrics_url=metrics_url)
        self.sampler = sampler

    @property
    def sampling(self) -> bool:
        """Whether anything is sampled (a GPU, or a server's /metrics)."""
        return self.sampler is not None and (self.sampler.gpu_available or bool(self.sampler.metrics_url))

    def __enter__(self) -> RunTelemetry:
        if self.sampler is not None and self.sampling:
            self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sampler is not None and self.sampling:
            self.sampler.stop()

    def attach(self, result: ScenarioResult, t0: float, t1: float) -> None:
        """Set the result's telemetry to the window ``[t0, t1]`` (perf_counter seconds)."""
        if self.sampler is None:
            return
        record: dict[str, Any]
        if self.sampling:
            self.sampler.sample_once()  # an end reading even for a run shorter than the period
            record = self.sampler.record(t0, t1 + self.sampler.interval_s, output_tokens=result.tokens("output"))
        else:
            record = {"available": False, "reason": self.sampler.reason}
        result.telemetry = record
