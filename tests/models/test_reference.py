"""The library checks itself: reference passes everything; every injectable fault is caught."""

from __future__ import annotations

import asyncio

import pytest

from agentbench.models.backends import Backend, make_backend
from agentbench.models.faults import FAULT_KINDS, apply_fault, fault_candidates, noisy_script
from agentbench.models.offline import ReferenceChatModel
from agentbench.models.registry import ModelSpec, load_registry
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


class _OneFault(Backend):
    def __init__(self, script: list) -> None:
        super().__init__(ModelSpec(key="one-fault", backend="reference"))
        self.script = script

    def chat_model(self, scenario: Scenario, repeat: int) -> ReferenceChatModel:
        return ReferenceChatModel(script=self.script)


CANDIDATES = [(sid, i) for sid in IDS for i in range(len(fault_candidates(LIBRARY.get(sid))))]


@pytest.mark.parametrize(("scenario_id", "index"), CANDIDATES)
def test_every_candidate_fault_is_caught_by_its_grader(scenario_id: str, index: int) -> None:
    scenario = LIBRARY.get(scenario_id)
    candidate = fault_candidates(scenario)[index]
    result = run(scenario, _OneFault(apply_fault(scenario, candidate)))
    failed = {g.grader for g in result.failed_grades()}
    assert candidate[0].expected_grader in failed, (candidate[0], [g.reason for g in result.failed_grades()])
    assert [f["kind"] for f in result.faults] == [candidate[0].kind]  # labelled in the transcript


def test_every_fault_kind_is_exercised_by_the_library() -> None:
    kinds = {c[0].kind for s in LIBRARY.scenarios.values() for c in fault_candidates(s)}
    assert kinds == set(FAULT_KINDS)
