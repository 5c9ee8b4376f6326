"""Running one scenario once: fresh workspace, bound tools, the graph, the turns, the grades.

Failures are outcomes, not crashes: an endpoint failure becomes ``endpoint_error`` and any other
exception becomes ``error`` with its traceback, so one scenario never stops the others.
"""

from __future__ import annotations

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
from agentbench.grading.judge import JUDGE_OPTION, judge_grades
from agentbench.graphs import recursion_limit
from agentbench.models.backends import Agent, Backend
from agentbench.runner.records import (
    GradeRecord,
    ModelCallRecord,
    Outcome,
    ScenarioResult,
    ToolCallRecord,
    TurnRecord,
)
from agentbench.runner.transcript import (
    delegation_events,
    faults_in,
    final_answer,
    message_record,
    model_call_records,
    tool_call_records,
)
from agentbench.runner.workspace import remove_tree, seed_workspace
from agentbench.scenario.schema import Scenario
from agentbench.tools import ToolContext, build_tools, create_services, services_needed, snapshots

#: Exceptions that mean the model server failed, not the harness.
ENDPOINT_ERRORS = (openai.APIError, EndpointError)


@dataclass
class _Progress:
    """What a run has produced so far (kept when a later turn fails)."""

    turns: list[TurnRecord] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    model_calls: list[ModelCallRecord] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome = "completed"
    error: str | None = None


def _services_for(scenario: Scenario) -> dict[str, Any]:
    """Fresh simulated services: every one the scenario seeds or one of its tools acts on."""
    return dict(create_services(scenario.state, services_needed(scenario.tools)))


async def _play_turns(scenario: Scenario, agent: Agent, progress: _Progress) -> None:
    history: list[BaseMessage] = []
    # An architecture nests tool loops (a router's specialist, a fallback's attempts): leave room.
    config: Any = {"recursion_limit": 4 * recursion_limit(scenario.max_steps), "configurable": agent.configurable}
    for t, turn in enumerate(scenario.turns):
        start = time.perf_counter()
        state = await agent.graph.ainvoke({"messages": [*history, HumanMessage(turn.user)]}, config)
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
        progress.events += [{**e, "turn": t} for e in state.get("events", [])] + delegation_events(added, t)
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
    workspace = Path(tempfile.mkdtemp(prefix="agentbench-ws-"))
    try:
        seed_workspace(workspace, scenario.workspace)
        context = ToolContext(workspace=workspace, state=_services_for(scenario),
                              options={**(tool_options or {}), "search": scenario.search.model_dump()})
        try:
            agent = backend.agent(build_tools(scenario.tools, context), system=scenario.system,
                                  max_steps=scenario.max_steps, scenario=scenario, repeat=repeat)
            await _play_turns(scenario, agent, progress)
        except ENDPOINT_ERRORS as exc:
            where = f" (endpoint {backend.spec.base_url})" if backend.spec.base_url else ""
            progress.outcome, progress.error = "endpoint_error", f"{type(exc).__name__}: {exc}{where}"
        except Exception:  # a bug somewhere: record it loudly, keep the suite going
            progress.outcome, progress.error = "error", traceback.format_exc(limit=20)
        try:
            grades = grade(GradingInput(scenario, progress.turns, progress.tool_calls, progress.outcome,
                                        workspace, snapshots(context.state), dict(tool_options or {})))
        except Exception:  # a grader bug: the run's result is still stored, marked as an error
            progress.outcome, progress.error = "error", traceback.format_exc(limit=20)
            grades = [GradeRecord(grader="outcome", passed=False, score=0.0, reason="grading crashed")]
    finally:
        remove_tree(workspace)  # whatever the model left there (links, deep trees)
    # The optional LLM judge (--judge): its failures are recorded in its grades, never raised.
    grades += await judge_grades(scenario, progress.turns, progress.tool_calls, progress.outcome,
                                 (tool_options or {}).get(JUDGE_OPTION))
    counted = [g for g in grades if not g.informational]
    return ScenarioResult(
        run_id=run_id, model=backend.spec.key, scenario_id=scenario.id, category=scenario.category,
        difficulty=scenario.difficulty, tags=list(scenario.tags), repeat=repeat,
        outcome=progress.outcome, error=progress.error, started_at=started,
        wall_s=time.perf_counter() - clock, turns=progress.turns, tool_calls=progress.tool_calls,
        model_calls=progress.model_calls, grades=grades, faults=progress.faults, events=progress.events,
        passed=all(g.passed for g in counted), score=sum(g.score for g in counted) / len(counted) if counted else 0.0,
    )
