"""Shared fixtures: the built-in library, scenario files written on the fly, a results dir."""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from agentbench.scenario.loader import ScenarioLibrary, load_library


def pytest_configure(config: pytest.Config) -> None:
    """Synthetic models go to one folder per test session, not the user's ~/.cache (the GPU tests then reuse
    vLLM's compile cache between their servers, as the folder path stays the same)."""
    os.environ.setdefault("AGENTBENCH_SYNTHETIC_DIR", tempfile.mkdtemp(prefix="agentbench-synthetic-"))




@pytest.fixture(scope="session")
def library() -> ScenarioLibrary:
    """The built-in scenario library (loaded once)."""
    return load_library()


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write YAML text (dedented) to ``tmp_path/scenarios/NAME`` and return the path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        folder = tmp_path / "scenarios"
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private results directory, also set as AGENTBENCH_RESULTS_DIR."""
    folder = tmp_path / "results"
    monkeypatch.setenv("AGENTBENCH_RESULTS_DIR", str(folder))
    return folder


def _why_no_gpu() -> str | None:
    """Why GPU tests cannot run here (None: an NVIDIA GPU and vLLM are both present)."""
    import importlib.util
    import shutil

    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU (nvidia-smi not found)"
    if importlib.util.find_spec("vllm") is None:
        return "vLLM is not installed"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``gpu`` are skipped, not failed, without a GPU and vLLM (``pytest -m gpu`` on one)."""
    reason = _why_no_gpu()
    if reason is None:
        return
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))
