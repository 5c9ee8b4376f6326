"""Shared by the model tests: one scenario run through a backend's whole lifecycle."""

from __future__ import annotations

import asyncio

from agentbench.models.backends import Backend
from agentbench.runner.execute import run_scenario
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.schema import Scenario


def run_once(backend: Backend, scenario: Scenario, run_id: str = "r") -> ScenarioResult:
    """Start ``backend``, run ``scenario`` once, stop the backend (also when the run raises)."""

    async def go() -> ScenarioResult:
        await backend.start()
        try:
            return await run_scenario(scenario, backend, run_id=run_id)
        finally:
            await backend.stop()

    return asyncio.run(go())
