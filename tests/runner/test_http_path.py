"""The OpenAI-compatible path scores exactly as the in-process reference; endpoint failures are outcomes."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from agentbench.models.registry import adhoc_openai_model, load_registry
from agentbench.runner.records import ScenarioResult
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore
from agentbench.testing import ChatRequest, OpenAITestServer, Reply, reference_responder


def run_all(library: ScenarioLibrary, spec, tmp_path: Path) -> dict[str, ScenarioResult]:
    store = ResultStore(tmp_path / spec.key)
    plan = make_plan([spec], list(library.scenarios.values()), concurrency=8)
    store.create_run(plan)
    asyncio.run(execute_plan(plan, library, store))
    return {r.scenario_id: r for r in store.results(plan.run_id)}


def grades(result: ScenarioResult) -> list[tuple]:
    return [(g.grader, g.turn, g.passed, g.score, g.reason) for g in result.grades]


def test_http_reference_scores_exactly_as_in_process(library: ScenarioLibrary, tmp_path: Path) -> None:
    local = run_all(library, load_registry()["reference"], tmp_path)
    with OpenAITestServer(reference_responder(library), model_names=["reference"]) as server:
        remote = run_all(library, adhoc_openai_model(server.base_url, "reference", key="reference-http"), tmp_path)
    assert set(local) == set(remote) == set(library.scenarios)
    for scenario_id in local:
        assert remote[scenario_id].outcome == "completed", remote[scenario_id].error
        assert grades(remote[scenario_id]) == grades(local[scenario_id]), scenario_id
        assert [c.args for c in remote[scenario_id].tool_calls] == [c.args for c in local[scenario_id].tool_calls]
        assert remote[scenario_id].tokens("output") is not None  # usage came over the wire


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_is_an_outcome_and_the_suite_goes_on(library: ScenarioLibrary, tmp_path: Path) -> None:
    spec = adhoc_openai_model(f"http://127.0.0.1:{free_port()}/v1", "ghost").model_copy(update={"max_retries": 0})
    results = run_all(library, spec, tmp_path)
    assert set(results) == set(library.scenarios)
    for r in results.values():
        assert r.outcome == "endpoint_error" and "ConnectionError" in (r.error or "")
        assert spec.base_url in (r.error or "")
        assert not r.passed
        assert any(g.grader == "outcome" and not g.passed for g in r.grades)


def test_one_failing_scenario_does_not_stop_the_others(library: ScenarioLibrary, tmp_path: Path) -> None:
    reference = reference_responder(library)

    def flaky(request: ChatRequest) -> Reply:
        if request.headers.get("x-agentbench-scenario") == "tip_calculation":
            return Reply(status=500, error_message="CUDA out of memory")
        return reference(request)

    with OpenAITestServer(flaky, model_names=["flaky"]) as server:
        spec = adhoc_openai_model(server.base_url, "flaky").model_copy(update={"max_retries": 0})
        results = run_all(library, spec, tmp_path)
    assert results["tip_calculation"].outcome == "endpoint_error"
    assert "CUDA out of memory" in (results["tip_calculation"].error or "")
    others = [r for sid, r in results.items() if sid != "tip_calculation"]
    assert others and all(r.outcome == "completed" and r.passed for r in others)
