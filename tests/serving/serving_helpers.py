"""Shared by the serving tests: a toy vllm entry and launch options that run the fake vLLM server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from agentbench.models.registry import ModelSpec
from agentbench.serving.launch import LaunchOptions
from agentbench.testing.fake_vllm import command

TOY_SERVE: dict[str, Any] = {"hf_id": "org/toy-8b", "params_b": 8.0, "native_context": 131072, "config": "toy",
                             "max_model_len": 8192, "tool_parser": "hermes", "gpu_memory_utilization": 0.9}


def toy_spec(key: str = "toy", **serve: Any) -> ModelSpec:
    """A ``backend: vllm`` entry (nothing is downloaded: the fake server serves it)."""
    return ModelSpec.model_validate({"key": key, "backend": "vllm", "serve": {**TOY_SERVE, **serve}})


def fake_options(*env: str, **overrides: Any) -> LaunchOptions:
    """Options that start the fake vLLM (``env``: FAKE_VLLM_* settings as KEY=VALUE)."""
    return LaunchOptions(vllm_command=command(), vllm_env=tuple(env), **overrides)


def models_file(path: Path, *keys: str) -> Path:
    """A user models file with toy vllm entries ``keys``."""
    path.write_text(yaml.safe_dump({k: {"backend": "vllm", "serve": TOY_SERVE} for k in keys}), encoding="utf-8")
    return path


def alive(pids: set[int]) -> set[int]:
    """Which of ``pids`` still exist (zombies count as gone)."""
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            left.add(pid)
    return left if os.path.isdir("/proc") else set()
