"""Graders: each reads a finished trajectory (and the final workspace) and returns grades with
reasons. A grader is one function plus its ``@grader`` registration line.

A scenario run passes when every grade passes; its score is the mean of the grade scores.
"""

from __future__ import annotations

import ast
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentbench.errors import ScenarioError, ToolError
from agentbench.grading.coherence import check_coherence
from agentbench.grading.matchers import Call, check_answer, describe_matcher, match_argument, match_trajectory
from agentbench.runner.records import GradeRecord, Outcome, ToolCallRecord, TurnRecord
from agentbench.runner.workspace import copy_without_links, remove_tree, seed_workspace
from agentbench.scenario.schema import FileCheck, Scenario, StateCheck
from agentbench.tools.code import run_pytest


@dataclass(frozen=True)
class GradingInput:
    """A finished scenario run, as graders see it."""

    scenario: Scenario
    turns: list[TurnRecord]
    tool_calls: list[ToolCallRecord]
    outcome: Outcome
    workspace: Path
    services: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def calls_in(self, turn: int) -> list[Call]:
        """The tool calls the model attempted in a turn, malformed ones included."""
        return [Call(c.name, c.args) for c in self.tool_calls if c.turn == turn]

    def reached(self, turn: int) -> bool:
        """Whether the model finished handling this turn."""
        return turn < len(self.turns) and self.turns[turn].outcome == "completed"


Grader = Callable[[GradingInput], list[GradeRecord]]
GRADERS: dict[str, Grader] = {}


def grader(name: str) -> Callable[[Grader], Grader]:
    """Register a grader under ``name`` (its grades carry that name)."""

    def register(func: Grader) -> Grader:
        GRADERS[name] = func
        return func

    return register


def grade(run: GradingInput) -> list[GradeRecord]:
    """Every registered grader's grades for one run, in registration order."""
    return [g for func in GRADERS.values() for g in func(run)]


def _verdict(name: str, passed: bool, reason: str, turn: int | None = None,
             score: float | None = None) -> GradeRecord:
    return GradeRecord(grader=name, turn=turn, passed=passed,
                       score=(1.0 if passed else 0.0) if score is None else score, reason=reason)


def _not_reached(name: str, run: GradingInput, turn: int) -> GradeRecord:
    return _verdict(name, False, f"the turn was not completed (run outcome: {run.outcome})", turn)


@grader("outcome")
def outcome_grade(run: GradingInput) -> list[GradeRecord]:
    """The run must finish every turn (no step limit, endpoint failure or crash)."""
    reasons = {"completed": "every turn completed",
               "step_limit": f"the step limit ({run.scenario.max_steps} model calls per turn) was reached",
               "endpoint_error": "the model endpoint failed", "error": "the run crashed"}
    return [_verdict("outcome", run.outcome == "completed", reasons[run.outcome])]


@grader("tool_calls")
def tool_calls_grade(run: GradingInput) -> list[GradeRecord]:
    """Each turn's calls compared with its expectation (strict, unordered, subset, superset)."""
    grades = []
    for t, turn in enumerate(run.scenario.turns):
        expect = turn.expect.tool_calls
        if expect is None:
            continue
        if t >= len(run.turns):
            grades.append(_not_reached("tool_calls", run, t))
            continue
        verdict = match_trajectory(expect.mode, expect.calls, run.calls_in(t))
        grades.append(_verdict("tool_calls", verdict.passed, verdict.reason, t))
    return grades


@grader("no_tool_calls")
def no_tool_calls_grade(run: GradingInput) -> list[GradeRecord]:
    """Turns that must be answered without any tool (irrelevance)."""
    grades = []
    for t, turn in enumerate(run.scenario.turns):
        if not turn.expect.no_tool_calls:
            continue
        calls = run.calls_in(t)
        reason = "no tool was called" if not calls else f"called {', '.join(map(str, calls))}"
        grades.append(_verdict("no_tool_calls", not calls, reason, t))
    return grades


@grader("answer")
def answer_grade(run: GradingInput) -> list[GradeRecord]:
    """Each turn's final answer against its checks; the score is the share of checks passed."""
    grades = []
    for t, turn in enumerate(run.scenario.turns):
        checks = turn.expect.answer
        if not checks:
            continue
        if not run.reached(t):
            grades.append(_not_reached("answer", run, t))
            continue
        verdicts = [check_answer(c, run.turns[t].answer) for c in checks]
        failed = [v.reason for v in verdicts if not v.passed]
        reason = "; ".join(failed) if failed else f"all {len(checks)} answer checks passed"
        score = sum(v.passed for v in verdicts) / len(verdicts)
        grades.append(_verdict("answer", not failed, reason, t, score))
    return grades


@grader("coherence")
def coherence_grade(run: GradingInput) -> list[GradeRecord]:
    """Each turn's answer against its coherence block (facts used, preferences kept, no contradiction
    of earlier turns); the score is the share of checks passed."""
    grades = []
    for t, turn in enumerate(run.scenario.turns):
        spec = turn.expect.coherence
        if spec is None:
            continue
        if not run.reached(t):
            grades.append(_not_reached("coherence", run, t))
            continue
        verdicts = check_coherence(spec, run.turns[t].answer)
        failed = [v.reason for v in verdicts if not v.passed]
        reason = "; ".join(failed) if failed else f"all {len(verdicts)} coherence checks passed"
        grades.append(_verdict("coherence", not failed, reason, t, sum(v.passed for v in verdicts) / len(verdicts)))
    return grades


@grader("valid_tool_calls")
def valid_tool_calls_grade(run: GradingInput) -> list[GradeRecord]:
    """Every tool call must carry a JSON object of arguments."""
    bad = [c for c in run.tool_calls if c.status == "malformed"]
    if not bad:
        return [_verdict("valid_tool_calls", True, f"all {len(run.tool_calls)} tool calls well-formed")]
    listed = "; ".join(f"turn {c.turn + 1}: {c.name} {c.raw_args!r}" for c in bad[:3])
    return [_verdict("valid_tool_calls", False, f"{len(bad)} malformed tool call(s): {listed}")]


@grader("known_tools")
def known_tools_grade(run: GradingInput) -> list[GradeRecord]:
    """The model may only call the scenario's tools (no hallucinated tool names)."""
    declared = set(run.scenario.tools)
    unknown = sorted({c.name for c in run.tool_calls if c.name not in declared})
    if not unknown:
        return [_verdict("known_tools", True, "only the scenario's tools were called")]
    return [_verdict("known_tools", False, f"called unknown tool(s): {', '.join(unknown)}")]


@grader("files")
def files_grade(run: GradingInput) -> list[GradeRecord]:
    """Hidden checks on the workspace files the run left behind."""
    return [_check_file(run.workspace, check) for check in run.scenario.checks.files]


@grader("state")
def state_grade(run: GradingInput) -> list[GradeRecord]:
    """Hidden checks on the simulated services' final state (records matching field matchers)."""
    return [_check_state(run.services, check) for check in run.scenario.checks.state]


def _record_matches(record: dict[str, Any], where: dict[str, Any]) -> bool:
    """Every field matcher passes (an absent field counts as a missing argument)."""
    return all((match_argument(m, record[k]) if k in record else match_argument(m)).passed for k, m in where.items())


def _check_state(services: dict[str, dict[str, list[dict[str, Any]]]], check: StateCheck) -> GradeRecord:
    where = f"{check.service}.{check.collection}"
    records = services.get(check.service, {}).get(check.collection)
    if records is None:
        return _verdict("state", False, f"{where}: no such service state in this run")
    matching = [r for r in records if _record_matches(r, check.where)]
    wanted = "at least 1" if check.count is None else f"exactly {check.count}"
    ok = len(matching) >= 1 if check.count is None else len(matching) == check.count
    fields = ", ".join(f"{k} {describe_matcher(m)}" for k, m in check.where.items()) or "any record"
    return _verdict("state", ok, f"{where}: {len(matching)} of {len(records)} records match ({fields}); "
                                 f"wanted {wanted}")


@grader("tests")
def hidden_tests_grade(run: GradingInput) -> list[GradeRecord]:
    """The scenario's hidden tests, run in the sandbox on a copy of the final workspace."""
    spec = run.scenario.checks.tests
    if spec is None:
        return []
    folder = Path(tempfile.mkdtemp(prefix="agentbench-grade-"))
    try:
        copy = folder / "workspace"
        try:
            copy_without_links(run.workspace, copy)
            seed_workspace(copy, spec.files)  # hidden files replace the model's files of the same name
        except (OSError, RecursionError, ScenarioError) as exc:
            return [_verdict("tests", False, f"the final workspace could not be prepared for the hidden tests: {exc}")]
        try:
            report = run_pytest(copy, sorted(spec.files), timeout_s=spec.timeout_s, hardened=True,
                                allow_unsafe=bool(run.options.get("allow_unsafe_code")))
        except ToolError as exc:
            return [_verdict("tests", False, f"hidden tests could not run: {exc}")]
    finally:
        remove_tree(folder)
    return [_hidden_tests_verdict(report, expected_tests(spec.files))]


def expected_tests(files: dict[str, str]) -> int:
    """How many test functions the hidden files define (a floor: parametrisation adds cases)."""
    count = 0
    for text in files.values():
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                count += 1
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                count += sum(isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.name.startswith("test")
                             for f in node.body)
    return count


def _hidden_tests_verdict(report: Any, expected: int) -> GradeRecord:
    """Pass only on a clean exit with at least every hidden test passing: code under test runs in
    pytest's process and could rewrite its report, but then has to get the count and the exit
    status right as well (the residual risk is documented in docs/sandbox.md)."""
    summary = (f"hidden tests: {report.passed} passed, {report.failed} failed, {report.errors} errors"
               f"{', timed out' if report.timed_out else ''}, exit code {report.exit_code} ({report.sandbox})")
    problems = [f"failing: {', '.join(report.failing[:5])}"] if report.failing else []
    if report.passed < expected:
        problems.append(f"only {report.passed} of the {expected} hidden tests passed")
    if report.exit_code != 0:
        problems.append("pytest did not exit cleanly")
    total = max(report.passed + report.failed + report.errors, expected)
    ok = report.all_passed and report.exit_code == 0 and report.passed >= expected
    score = min(report.passed, total) / total if total else 0.0
    return _verdict("tests", ok, "; ".join([summary, *problems]), score=score)


def _read_inside(workspace: Path, relative: str) -> str | None:
    """A workspace file's text, or None if absent; never follows a path out of the workspace."""
    root = os.path.realpath(workspace)
    target = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, target]) != root or not os.path.isfile(target):
        return None
    with open(target, encoding="utf-8", errors="replace") as handle:
        return handle.read()


def _check_file(workspace: Path, check: FileCheck) -> GradeRecord:
    text = _read_inside(workspace, check.path)
    name = "files"
    if text is None:
        return _verdict(name, not check.exists, f"{check.path}: does not exist")
    if not check.exists:
        return _verdict(name, False, f"{check.path}: exists but should not")
    problems = []
    if check.equals is not None and text != check.equals:
        problems.append("content differs from the expected text")
    problems += [f"lacks {c!r}" for c in check.contains if c not in text]
    problems += [f"still contains {c!r}" for c in check.not_contains if c in text]
    problems += [f"does not match /{r}/" for r in check.regex if not re.search(r, text, re.MULTILINE)]
    if check.python_syntax:
        try:
            ast.parse(text)
        except SyntaxError as exc:
            problems.append(f"is not valid Python (line {exc.lineno}: {exc.msg})")
    reason = "; ".join(problems) if problems else "all checks passed"
    return _verdict(name, not problems, f"{check.path}: {reason}")
