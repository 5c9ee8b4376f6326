"""The library checks itself: reference passes everything; reference-noisy fails where it injected a fault."""

from __future__ import annotations

import asyncio

import pytest

from agentbench.models.backends import Backend, make_backend
from agentbench.models.faults import FAULT_KINDS, fault_candidates, noisy_script
from agentbench.models.registry import load_registry
from agentbench.runner.execute import run_scenario
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.loader import load_library
from agentbench.scenario.schema import Scenario

LIBRARY = load_library()
IDS = sorted(LIBRARY.scenarios)
REGISTRY = load_registry()


def run(scenario: Scenario, backend: Backend, repeat: int = 0) -> ScenarioResult:
    return asyncio.run(run_scenario(scenario, backend, run_id="test", repeat=repeat))


@pytest.mark.parametrize("scenario_id", IDS)
def test_reference_passes_every_builtin_scenario(scenario_id: str) -> None:
    result = run(LIBRARY.get(scenario_id), make_backend(REGISTRY["reference"]))
    failed = [f"{g.label}: {g.reason}" for g in result.failed_grades()]
    assert result.outcome == "completed", result.error
    assert failed == []
    assert result.score == 1.0 and result.passed
    assert result.faults == []


@pytest.mark.parametrize("scenario_id", IDS)
def test_noisy_fails_exactly_where_it_injected_a_fault(scenario_id: str) -> None:
    result = run(LIBRARY.get(scenario_id), make_backend(REGISTRY["reference-noisy"]))
    failed = {g.grader for g in result.failed_grades()}
    if result.faults:
        assert not result.passed
        for fault in result.faults:
            assert fault["expected_grader"] in failed, (fault, failed)
    else:
        assert result.passed, failed


def test_noisy_injects_some_faults_but_not_everywhere() -> None:
    spec = REGISTRY["reference-noisy"].faults
    assert spec is not None
    injected = [noisy_script(s, spec.seed, spec.rate)[1] for s in LIBRARY.scenarios.values()]
    assert any(f is not None for f in injected) and any(f is None for f in injected)


def test_fault_plan_is_seeded() -> None:
    scenario = LIBRARY.get("tip_calculation")
    first = [noisy_script(scenario, 3, 1.0, r)[1] for r in range(8)]
    again = [noisy_script(scenario, 3, 1.0, r)[1] for r in range(8)]
    assert first == again
    assert len({f.kind for f in first if f}) > 1  # repeats draw different faults
    assert noisy_script(scenario, 3, 0.0)[1] is None


# Every candidate fault of every scenario being caught by its grader is checked once, by the
# meta-evaluation over the full library (tests/report/test_metaeval.py), which also covers the
# coherence faults and the gold runs' false failures: running each fault here too doubled CI time.


def test_every_fault_kind_is_exercised_by_the_library() -> None:
    kinds = {c[0].kind for s in LIBRARY.scenarios.values() for c in fault_candidates(s)}
    assert kinds == set(FAULT_KINDS)
