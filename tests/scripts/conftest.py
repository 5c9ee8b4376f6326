"""A stand-in for the two vLLM modules the GPU scripts import (vLLM is GPU-only here)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def vllm_stub(tmp_path: Path) -> Callable[[str], Path]:
    """``vllm_stub(serve_source)``: a site folder with ``vllm.benchmarks.serve`` (``serve_source``: its
    ``add_cli_args`` and ``main``) and ``vllm.utils.argparse_utils.FlexibleArgumentParser`` (argparse's
    parser); put it on PYTHONPATH."""

    def make(serve_source: str) -> Path:
        root = tmp_path / "site"
        for pkg in ("vllm", "vllm/benchmarks", "vllm/utils"):
            (root / pkg).mkdir(parents=True, exist_ok=True)
            (root / pkg / "__init__.py").write_text("")
        (root / "vllm/benchmarks/serve.py").write_text(serve_source)
        (root / "vllm/utils/argparse_utils.py").write_text(
            "from argparse import ArgumentParser as FlexibleArgumentParser\n")
        return root

    return make
