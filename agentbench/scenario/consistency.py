"""Checks a scenario must pass beyond its schema: it names real tools, its gold solution uses only
declared tools with valid arguments, fits the step limit, and satisfies its own expectations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from pydantic import ValidationError

from agentbench.errors import ConfigError, Problem
from agentbench.grading.coherence import coherence_problems
from agentbench.grading.matchers import Call, check_answer, match_trajectory
from agentbench.scenario.schema import Scenario
from agentbench.scenario.yaml_source import DataPath, SourceDoc
from agentbench.tools import service_names, service_spec, tool_names, tool_spec

_Add = Callable[[DataPath, str], None]


def consistency_problems(scenario: Scenario, doc: SourceDoc) -> list[Problem]:
    """Every consistency problem of ``scenario``, located in ``doc``."""
    problems: list[Problem] = []

    def add(path: DataPath, message: str) -> None:
        problems.append(doc.problem(path, message))

    _check_tools(scenario, add)
    _check_workspace(scenario, add)
    _check_services(scenario, add)
    if len(scenario.solution) != len(scenario.turns):
        add(("solution",), f"has {len(scenario.solution)} turns but the scenario has "
                           f"{len(scenario.turns)}; give one solution turn per user turn")
        return problems
    for path, message in coherence_problems(scenario):
        add(path, message)
    for t, (turn, gold) in enumerate(zip(scenario.turns, scenario.solution)):
        _check_gold_turn(scenario, t, add)
        if gold.model_steps > scenario.max_steps:
            add(("solution", t), f"needs {gold.model_steps} model steps but max_steps is "
                                 f"{scenario.max_steps}")
        calls = [Call(c.name, c.args) for c in gold.tool_calls]
        expect = turn.expect
        if expect.no_tool_calls and calls:
            add(("solution", t, "tool_calls"), "the turn expects no tool calls but the solution makes some")
        if expect.tool_calls is not None:
            verdict = match_trajectory(expect.tool_calls.mode, expect.tool_calls.calls, calls)
            if not verdict.passed:
                add(("solution", t, "tool_calls"),
                    f"the solution fails the turn's own tool_calls expectation: {verdict.reason}")
        for c, check in enumerate(expect.answer):
            verdict = check_answer(check, gold.answer)
            if not verdict.passed:
                add(("solution", t, "answer"), f"the solution's answer fails "
                                               f"turns[{t}].expect.answer[{c}]: {verdict.reason}")
    return problems


def _check_tools(scenario: Scenario, add: _Add) -> None:
    known = set(tool_names())
    for i, name in enumerate(scenario.tools):
        if name not in known:
            add(("tools", i), f"unknown tool {name!r}; known tools: {', '.join(sorted(known))}")
    declared = set(scenario.tools)
    for t, turn in enumerate(scenario.turns):
        if turn.expect.tool_calls is None:
            continue
        for c, call in enumerate(turn.expect.tool_calls.calls):
            if call.name not in declared:
                add(("turns", t, "expect", "tool_calls", "calls", c, "name"),
                    f"expects a call to {call.name!r}, which the scenario does not declare in 'tools'")


def _check_gold_turn(scenario: Scenario, t: int, add: _Add) -> None:
    declared = set(scenario.tools)
    for c, call in enumerate(scenario.solution[t].tool_calls):
        path = ("solution", t, "tool_calls", c)
        if call.name not in declared:
            add((*path, "name"), f"calls {call.name!r}, which the scenario does not declare in 'tools'")
            continue
        try:
            tool_spec(call.name).args_schema.model_validate(call.args)
        except ConfigError:
            continue  # unknown tool: reported by _check_tools
        except ValidationError as exc:
            for err in exc.errors():
                add((*path, "args", *err["loc"]), f"invalid argument for {call.name}: {err['msg']}")


def _check_services(scenario: Scenario, add: _Add) -> None:
    """Seeds must fit their service's seed schema; state checks must name real collections."""
    known = set(service_names())
    for name, seed in scenario.state.items():
        if name not in known:
            add(("state", name), f"unknown service {name!r}; known services: {', '.join(sorted(known)) or 'none'}")
            continue
        try:
            service_spec(name).seed_model.model_validate(seed or {})
        except ValidationError as exc:
            for err in exc.errors():
                add(("state", name, *err["loc"]), f"invalid seed for {name}: {err['msg']}")
    for i, check in enumerate(scenario.checks.state):
        if check.service not in known:
            add(("checks", "state", i, "service"), f"unknown service {check.service!r}")
            continue
        spec = service_spec(check.service)
        collections = spec.create(spec.seed_model()).snapshot()
        if check.collection not in collections:
            add(("checks", "state", i, "collection"), f"service {check.service!r} has no collection "
                f"{check.collection!r}; it has: {', '.join(sorted(collections))}")


def _check_workspace(scenario: Scenario, add: _Add) -> None:
    paths = [*scenario.workspace, *(f.path for f in scenario.checks.files)]
    for name in paths:
        pure = PurePosixPath(name)
        if pure.is_absolute() or ".." in pure.parts or not name.strip():
            where = ("workspace", name) if name in scenario.workspace else ("checks", "files")
            add(where, f"workspace path {name!r} must be relative and stay inside the workspace")
