"""State-based grading: hidden checks on simulated services' final state, and seed validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from agentbench.grading.graders import GradingInput, state_grade
from agentbench.scenario.loader import parse_scenario
from agentbench.scenario.schema import Scenario
from agentbench.tools import ServiceSpec, register_service, service_names


class ToySeed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    notes: list[str] = []


class ToyService:
    def __init__(self, seed: ToySeed) -> None:
        self.notes = [{"text": t} for t in seed.notes]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {"notes": list(self.notes)}


if "toy_notes" not in service_names():
    register_service(ServiceSpec("toy_notes", ToySeed, ToyService, "notes, for tests"))

BASE = """\
id: toy
title: Toy
category: irrelevance
description: d
state:
  toy_notes: {notes: [buy milk]}
turns:
  - user: hi
solution:
  - answer: hello
"""


def scenario_with(checks: str) -> Scenario:
    scenario, problems = parse_scenario(BASE + checks, "toy.yaml")
    assert scenario is not None, problems
    return scenario


def grade_state(scenario: Scenario, services: dict[str, Any]) -> list[tuple[bool, str]]:
    run = GradingInput(scenario, [], [], "completed", Path("."), services)
    return [(g.passed, g.reason) for g in state_grade(run)]


SNAPSHOT = {"toy_notes": {"notes": [{"text": "buy milk"}, {"text": "Call the Bank"}, {"text": "call mum"}]}}


@pytest.mark.parametrize(("where", "count", "ok", "matched"), [
    ("{text: {regex: '(?i)^call'}}", None, True, 2),
    ("{text: {regex: '(?i)^call'}}", 2, True, 2),
    ("{text: {regex: '(?i)^call'}}", 1, False, 2),
    ("{text: {normalized: 'call the bank'}}", 1, True, 1),
    ("{text: {regex: 'dentist'}}", 0, True, 0),
    ("{text: {regex: 'dentist'}}", None, False, 0),
    ("{missing_field: {any: true}}", None, False, 0),
    ("{missing_field: {any: true, optional: true}}", 3, True, 3),
])
def test_state_checks_count_matching_records(where: str, count: int | None, ok: bool, matched: int) -> None:
    count_line = f"\n      count: {count}" if count is not None else ""
    scenario = scenario_with(f"checks:\n  state:\n    - service: toy_notes\n      collection: notes\n"
                             f"      where: {where}{count_line}\n")
    [(passed, reason)] = grade_state(scenario, SNAPSHOT)
    assert passed is ok
    assert reason.startswith(f"toy_notes.notes: {matched} of 3 records match")


def test_missing_service_state_fails_with_a_reason() -> None:
    scenario = scenario_with("checks:\n  state:\n    - service: toy_notes\n      collection: notes\n")
    assert grade_state(scenario, {}) == [(False, "toy_notes.notes: no such service state in this run")]


@pytest.mark.parametrize(("text", "message"), [
    (BASE.replace("toy_notes: {notes: [buy milk]}", "toy_notez: {}"), "state.toy_notez: unknown service 'toy_notez'"),
    (BASE.replace("{notes: [buy milk]}", "{notes: [buy milk], color: red}"),
     "state.toy_notes.color: invalid seed for toy_notes"),
    (BASE + "checks:\n  state:\n    - service: toy_notes\n      collection: todo\n",
     "checks.state[0].collection: service 'toy_notes' has no collection 'todo'; it has: notes"),
])
def test_seed_and_check_problems_are_located(text: str, message: str) -> None:
    scenario, problems = parse_scenario(text, "toy.yaml")
    assert scenario is None
    assert any(message in str(p) for p in problems), [str(p) for p in problems]
