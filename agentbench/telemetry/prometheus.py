"""vLLM's ``/metrics`` endpoint: parse the Prometheus text format and pick the serving gauges
and counters agentbench records (running/waiting requests, KV-cache usage, preemptions, tokens)."""

from __future__ import annotations

import math
import re
import urllib.request
from collections.abc import Mapping

__all__ = ["VLLM_METRICS", "parse_prometheus", "scrape_vllm", "vllm_snapshot"]

# Our name -> vLLM metric family (gauges read as is; counters are the `_total` samples).
VLLM_METRICS: Mapping[str, str] = {
    "running": "vllm:num_requests_running",
    "waiting": "vllm:num_requests_waiting",
    "kv_cache_usage": "vllm:kv_cache_usage_perc",  # 0..1 despite the name
    "preemptions": "vllm:num_preemptions_total",
    "prompt_tokens": "vllm:prompt_tokens_total",
    "generation_tokens": "vllm:generation_tokens_total",
    "prefix_cache_queries": "vllm:prefix_cache_queries_total",
    "prefix_cache_hits": "vllm:prefix_cache_hits_total",
}

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?$")


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum every sample of each metric name over its labels (one server, so labels only split
    by model or engine). Comments and malformed lines are skipped; ``NaN`` samples are ignored."""
    totals: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        if math.isnan(value):
            continue
        totals[match.group(1)] = totals.get(match.group(1), 0.0) + value
    return totals


def vllm_snapshot(text: str) -> dict[str, float]:
    """The metrics of :data:`VLLM_METRICS` present in a ``/metrics`` body."""
    parsed = parse_prometheus(text)
    return {ours: parsed[theirs] for ours, theirs in VLLM_METRICS.items() if theirs in parsed}


def scrape_vllm(base_url: str, timeout_s: float = 2.0) -> dict[str, float]:
    """GET ``<server>/metrics`` (``base_url`` with or without ``/v1``) and return :func:`vllm_snapshot`.
    Raises ``OSError`` when the server cannot be reached."""
    root = base_url.rstrip("/").removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/metrics", timeout=timeout_s) as resp:
        return vllm_snapshot(resp.read().decode("utf-8", "replace"))
