"""GPU tests: they need an NVIDIA GPU and vLLM, and are skipped (not failed) without them.

Run them on a GPU machine with ``pytest -m gpu tests/gpu`` (see scripts/gpu/README.md).
"""

from __future__ import annotations

import importlib.util
import shutil

import pytest


def _gpu_and_vllm() -> str | None:
    """Why GPU tests cannot run here (None: they can)."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU (nvidia-smi not found)"
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _gpu_and_vllm()
    for item in items:
        if "gpu" in item.keywords and reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
