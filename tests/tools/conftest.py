"""Fixtures shared by the tool tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentbench.tools import sandbox


@pytest.fixture
def sandbox_workspace(tmp_path: Path) -> Path:
    """A fresh workspace for sandboxed code; the test is skipped where the sandbox does not work
    (in CI, tests/tools/test_sandbox_attacks.py fails instead: the sandbox must be in use there)."""
    ok, reason = sandbox.sandbox_status()
    if not ok:
        pytest.skip(f"sandbox unavailable: {reason}")
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws
