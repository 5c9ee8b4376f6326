"""Helper processes import the installed agentbench, whatever the current directory holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentbench.models.registry import load_registry
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.store import ResultStore
from agentbench.tools import ToolContext, tool_spec


@pytest.fixture
def decoy_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A current directory holding a decoy `agentbench` package (like a source checkout does)."""
    decoy = tmp_path / "checkout"
    (decoy / "agentbench").mkdir(parents=True)
    (decoy / "agentbench" / "__init__.py").write_text("raise ImportError('the decoy was imported')\n")
    monkeypatch.chdir(decoy)
    return decoy


def test_scenario_workers_ignore_the_current_directory(decoy_cwd: Path, library, tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "results")
    plan = make_plan([load_registry()["reference"]], [library.get("tip_calculation"), library.get("file_inventory")],
                     repeats=2, concurrency=4, workers=2)
    store.create_run(plan)
    asyncio.run(execute_plan(plan, library, store))
    results = list(store.results(plan.run_id))
    assert len(results) == 4 and all(r.passed for r in results), [r.error for r in results]


def test_calculator_worker_ignores_the_current_directory(decoy_cwd: Path, tmp_path: Path) -> None:
    from agentbench.tools import calculator

    calculator.shutdown_worker()  # start a fresh worker from the decoy directory
    tool = tool_spec("calculator").bind(ToolContext(workspace=tmp_path))
    assert '"value": 10.125' in tool.invoke({"expression": "67.50 * 0.15"})
