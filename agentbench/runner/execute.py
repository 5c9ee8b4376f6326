"""Running one scenario once: fresh workspace, bound tools, the graph, the turns, the grades.

Failures are outcomes, not crashes: an endpoint failure becomes ``endpoint_error`` and any other
exception becomes ``error`` with its traceback, so one scenario never stops the others.
"""

from __future__ import annotations

import functools
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import openai
from langchain_core.messages import BaseMessage, HumanMessage

from agentbench.errors import EndpointError
from agentbench.grading.graders import GradingInput, grade
from agentbench.graphs import BINDING_KEY, LoopBinding, recursion_limit, tool_loop
from agentbench.models.backends import Backend
from agentbench.runner.records import (
    GradeRecord,
    ModelCallRecord,
    Outcome,
    ScenarioResult,
    ToolCallRecord,
    TurnRecord,
)
from agentbench.runner.transcript import (
    faults_in,
    final_answer,
    message_record,
    model_call_records,
    tool_call_records,
)
from agentbench.runner.workspace import seed_workspace
from agentbench.scenario.schema import Scenario
from agentbench.tools import ToolContext, build_tools, create_services, snapshots, tool_spec

#: Exceptions that mean the model server failed, not the harness.
ENDPOINT_ERRORS = (openai.APIError, EndpointError)


@dataclass
class _Progress:
    """What a run has produced so far (kept when a later turn fails)."""

    turns: list[TurnRecord] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    model_calls: list[ModelCallRecord] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome = "completed"
    error: str | None = None


def _services_for(scenario: Scenario) -> dict[str, Any]:
    """Fresh simulated services: every one the scenario seeds or one of its tools acts on."""
    needed = {tool_spec(name).service for name in scenario.tools} - {None}
    return dict(create_services(scenario.state, [n for n in needed if n]))


@functools.lru_cache(maxsize=256)
def _compiled_loop(system: str | None, max_steps: int) -> Any:
    """One compiled tool loop per (system prompt, step limit), shared by concurrent runs."""
    return tool_loop(None, system=system, max_steps=max_steps)


async def _play_turns(scenario: Scenario, binding: LoopBinding, progress: _Progress) -> None:
    graph = _compiled_loop(scenario.system, scenario.max_steps)
    history: list[BaseMessage] = []
    config: Any = {"recursion_limit": recursion_limit(scenario.max_steps), "configurable": {BINDING_KEY: binding}}
    for t, turn in enumerate(scenario.turns):
        start = time.perf_counter()
        state = await graph.ainvoke({"messages": [*history, HumanMessage(turn.user)]}, config)
        added = state["messages"][len(history):]
        history = state["messages"]
        outcome: Outcome = "step_limit" if state.get("outcome") == "step_limit" else "completed"
        progress.turns.append(TurnRecord(
            index=t, user=turn.user, answer=final_answer(added) if outcome == "completed" else "",
            outcome=outcome, steps=len(model_call_records(added, t)),
            wall_s=time.perf_counter() - start, messages=[message_record(m) for m in added],
        ))
        progress.tool_calls += tool_call_records(added, t)
        progress.model_calls += model_call_records(added, t)
        progress.faults += faults_in(added)
        if outcome == "step_limit":
            progress.outcome = "step_limit"
            return


def failed_result(scenario: Scenario, model: str, run_id: str, repeat: int, error: str) -> ScenarioResult:
    """The record of a run that could not produce its own (e.g. its worker process died)."""
    grades = [GradeRecord(grader="outcome", passed=False, score=0.0, reason=f"the run crashed: {error}")]
    return ScenarioResult(run_id=run_id, model=model, scenario_id=scenario.id, category=scenario.category,
                          difficulty=scenario.difficulty, tags=list(scenario.tags), repeat=repeat, outcome="error",
                          error=error, started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          wall_s=0.0, grades=grades, passed=False, score=0.0)


async def run_scenario(scenario: Scenario, backend: Backend, *, run_id: str, repeat: int = 0,
                       tool_options: dict[str, Any] | None = None) -> ScenarioResult:
    """Run ``scenario`` once against ``backend`` and grade it."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    clock = time.perf_counter()
    progress = _Progress()
    with tempfile.TemporaryDirectory(prefix="agentbench-ws-") as folder:
        workspace = Path(folder)
        seed_workspace(workspace, scenario.workspace)
        context = ToolContext(workspace=workspace, state=_services_for(scenario),
                              options={**(tool_options or {}), "search": scenario.search.model_dump()})
        try:
            binding = LoopBinding.of(backend.chat_model(scenario, repeat), build_tools(scenario.tools, context))
            await _play_turns(scenario, binding, progress)
        except ENDPOINT_ERRORS as exc:
            where = f" (endpoint {backend.spec.base_url})" if backend.spec.base_url else ""
            progress.outcome, progress.error = "endpoint_error", f"{type(exc).__name__}: {exc}{where}"
        except Exception:  # a bug somewhere: record it loudly, keep the suite going
            progress.outcome, progress.error = "error", traceback.format_exc(limit=20)
        grades = grade(GradingInput(scenario, progress.turns, progress.tool_calls, progress.outcome,
                                    workspace, snapshots(context.state), dict(tool_options or {})))
    return ScenarioResult(
        run_id=run_id, model=backend.spec.key, scenario_id=scenario.id, category=scenario.category,
        difficulty=scenario.difficulty, tags=list(scenario.tags), repeat=repeat,
        outcome=progress.outcome, error=progress.error, started_at=started,
        wall_s=time.perf_counter() - clock, turns=progress.turns, tool_calls=progress.tool_calls,
        model_calls=progress.model_calls, grades=grades, faults=progress.faults,
        passed=all(g.passed for g in grades),
        score=sum(g.score for g in grades) / len(grades) if grades else 0.0,
    )
