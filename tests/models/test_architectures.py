"""Architectures run like models: routes, fallbacks and delegations happen and are recorded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agentbench.cli.app import main
from agentbench.errors import ConfigError
from agentbench.models.registry import load_registry, resolve_model
from agentbench.runner.records import ScenarioResult
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore
from agentbench.testing import ChatRequest, OpenAITestServer, Reply, ToolCallReply


def run(library: ScenarioLibrary, key: str, ids: list[str], folder: Path, registry=None,
        workers: int = 1) -> dict[str, ScenarioResult]:
    spec = resolve_model(key, registry or load_registry())
    store = ResultStore(folder)
    plan = make_plan([spec], [library.get(i) for i in ids], concurrency=2, workers=workers)
    store.create_run(plan)
    asyncio.run(execute_plan(plan, library, store))
    return {r.scenario_id: r for r in store.results(plan.run_id)}


def test_router_sends_each_task_to_its_specialist(library: ScenarioLibrary, tmp_path: Path) -> None:
    ids = ["tip_calculation", "code_debugging", "irrelevance_capital"]
    results = run(library, "arch:example-router", ids, tmp_path)
    assert all(r.passed for r in results.values()), {k: r.failed_grades() for k, r in results.items()}
    routes = {sid: [e["route"] for e in r.events if e["kind"] == "route"] for sid, r in results.items()}
    # Routing is per turn, on the latest user message: code_debugging's follow-up has no code words.
    assert routes == {"tip_calculation": ["math"], "code_debugging": ["code", "general"],
                      "irrelevance_capital": ["general"]}
    reason = next(e for e in results["tip_calculation"].events if e["kind"] == "route")["reason"]
    assert "tip" in reason.lower() or "percent" in reason.lower() or "calculat" in reason.lower()


def test_fallback_moves_on_when_the_primary_endpoint_is_down(library: ScenarioLibrary, tmp_path: Path) -> None:
    results = run(library, "arch:example-fallback", ["tip_calculation", "multi_turn_budget"], tmp_path)
    for result in results.values():
        assert result.passed, result.failed_grades()
        fallbacks = [e for e in result.events if e["kind"] == "fallback"]
        assert len(fallbacks) == len(result.turns)  # every turn fell back once
        assert all(e["from"] == "example-down" and e["to"] == "reference" for e in fallbacks)
        assert all("Connection" in e["reason"] for e in fallbacks)


def test_hierarchy_delegates_and_counts_the_workers_cost(library: ScenarioLibrary, tmp_path: Path) -> None:
    def served(request: ChatRequest) -> Reply:
        last = request.messages[-1]
        if request.model == "worker":  # the coder: one run_python call, then its answer
            if last["role"] == "tool":
                return Reply(content=f"East: {last['content']}", prompt_tokens=30, completion_tokens=5)
            return Reply(tool_calls=[ToolCallReply("run_python", json.dumps({"code": "print(345.10)"}))],
                         prompt_tokens=20, completion_tokens=10)
        if last["role"] == "tool":  # the primary, after the delegation
            return Reply(content="East has the highest total: 345.10.")
        return Reply(tool_calls=[ToolCallReply("delegate_to_coder", json.dumps({"task": "total sales.csv by region"}))])

    with OpenAITestServer(served, model_names=["primary", "worker"]) as server:
        registry = {**load_registry(), **_entries(server.base_url)}
        results = run(library, "arch:team", ["run_python_csv_totals"], tmp_path, registry)
    result = results["run_python_csv_totals"]
    delegations = [e for e in result.events if e["kind"] == "delegate"]
    assert len(delegations) == 1 and delegations[0]["worker"] == "coder"
    assert delegations[0]["usage"]["model_calls"] == 2 and delegations[0]["usage"]["output_tokens"] == 15
    assert result.steps == len(result.model_calls) + 2  # the worker's calls count in the run's cost
    assert "345.1" in result.turns[0].answer


def _entries(base_url: str) -> dict:
    from agentbench.models.registry import ModelSpec

    return {
        "primary": ModelSpec(key="primary", backend="openai", base_url=base_url, model_name="primary", max_retries=0),
        "worker": ModelSpec(key="worker", backend="openai", base_url=base_url, model_name="worker", max_retries=0),
        "team": ModelSpec.model_validate({"key": "team", "backend": "architecture", "architecture": {
            "kind": "hierarchical", "primary": "primary",
            "workers": {"coder": {"model": "worker", "description": "writes and runs Python",
                                  "tools": ["run_python", "read_file"]}}}}),
    }


def test_architectures_run_in_worker_processes(library: ScenarioLibrary, tmp_path: Path) -> None:
    ids = ["tip_calculation", "file_inventory", "irrelevance_capital", "multi_step_arithmetic"]
    results = run(library, "example-router", ids, tmp_path, workers=2)
    assert all(r.passed for r in results.values())
    assert all(any(e["kind"] == "route" for e in r.events) for r in results.values())


@pytest.mark.parametrize(("key", "message"), [
    ("arch:reference", "'reference' is a reference model, not an architecture"),
    ("arch:nope", "unknown model 'arch:nope'"),
])
def test_bad_architecture_keys(key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_model(key, load_registry())


def test_architecture_config_errors_are_located(tmp_path: Path, capsys) -> None:
    models = tmp_path / "models.yaml"
    models.write_text("bad:\n  backend: architecture\n  architecture:\n    kind: router\n    router: {kind: rules, "
                      "default: general}\n    specialists: {math: reference}\n")
    code = main(["models", "list", "--models-file", str(models)])
    assert code == 1
    assert "routes without a specialist: general" in capsys.readouterr().err


def test_architecture_gpu_memory_is_the_sum_of_its_members(library: ScenarioLibrary, tmp_path: Path) -> None:
    from agentbench.report.summary import summarize
    from agentbench.report.tables import architecture_table

    registry = load_registry()
    registry["reference"] = registry["reference"].model_copy(update={"gpu_memory_gib": 17.5})
    spec = resolve_model("example-router", registry)
    results = run(library, "example-router", ["tip_calculation"], tmp_path, registry)
    table = architecture_table(list(results.values()), summarize(results.values()), {spec.key: spec.model_dump()})
    assert table.rows[0][3] == "17.5 GiB"  # three routes, one member model: loaded once
    unknown = resolve_model("example-fallback", load_registry())
    assert architecture_table([], summarize([]), {}).rows == []
    assert "n/a" in architecture_table(
        [r.model_copy(update={"model": unknown.key}) for r in results.values()],
        summarize([r.model_copy(update={"model": unknown.key}) for r in results.values()]),
        {unknown.key: unknown.model_dump()}).rows[0][3]


def test_run_lists_the_architecture_beside_single_models(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AGENTBENCH_RESULTS_DIR", str(tmp_path))
    code = main(["run", "--models", "reference,arch:example-router", "--scenarios", "tip_calculation,file_inventory"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Architectures" in out and "router (rules)" in out  # the console wraps long cells
    report = next(tmp_path.glob("runs/*/report/report.md")).read_text()
    assert "## Architectures" in report and "example-router" in report and "route math x1" in report
