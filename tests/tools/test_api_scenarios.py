"""The API scenarios end to end through the real runner: gold passes, faults and wrong work are caught.

Scenarios are loaded file by file (not the whole library) so that these tests depend only on the
API services being registered.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from agentbench.models.backends import Backend, make_backend
from agentbench.models.faults import apply_fault, fault_candidates
from agentbench.models.offline import ReferenceChatModel
from agentbench.models.registry import ModelSpec, load_registry
from agentbench.runner.execute import run_scenario
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.loader import builtin_dir, load_scenario_file
from agentbench.scenario.schema import Scenario
from agentbench.testing import ScriptedChatModel
from agentbench.tools.registry import services_needed

# The service scenarios (issue 3's family, by name) that act on a simulated service: each is graded by the
# service's final state. (Read-only service lookups elsewhere in the library are graded by their answers.)
_NAMED = {p.stem: load_scenario_file(p) for p in builtin_dir().glob("*.yaml")
          if p.stem.startswith(("api_", "weather_", "send_", "technical_support_"))}
IDS = sorted(i for i, s in _NAMED.items() if services_needed(s.tools))
SCENARIOS = {i: _NAMED[i] for i in IDS}
REGISTRY = load_registry()


class _Script(Backend):
    """A backend replaying fixed replies (a ScriptedChatModel) or a fault-injected gold script."""

    def __init__(self, replies: list[AIMessage] | None = None, script: list[Any] | None = None) -> None:
        super().__init__(ModelSpec(key="scripted", backend="reference"))
        self.replies, self.script = replies or [], script

    def chat_model(self, scenario: Scenario, repeat: int) -> Any:
        if self.script is not None:
            return ReferenceChatModel(script=self.script)
        return ScriptedChatModel(replies=self.replies)


def run(scenario: Scenario, backend: Backend) -> ScenarioResult:
    return asyncio.run(run_scenario(scenario, backend, run_id="test"))


_IDS = itertools.count(1)


def calls(*pairs: tuple[str, dict[str, Any]]) -> AIMessage:
    """One model step with these tool calls (ids unique in the process, as a server's would be)."""
    return AIMessage("", tool_calls=[{"name": n, "args": a, "id": f"call_{next(_IDS)}"} for n, a in pairs])


def test_there_are_enough_api_scenarios_over_the_categories() -> None:
    assert len(IDS) >= 7
    categories = {s.category for s in SCENARIOS.values()}
    assert {"function_calling", "tool_integration", "conversation", "error_recovery"} <= categories
    assert any("technical_support" in s.tags and len(s.turns) > 1 for s in SCENARIOS.values())
    # Every scenario acting on a simulated service is graded by that service's final state.
    assert all(s.checks.state for s in SCENARIOS.values())


@pytest.mark.parametrize("scenario_id", IDS)
def test_reference_passes_with_state_grades(scenario_id: str) -> None:
    result = run(SCENARIOS[scenario_id], make_backend(REGISTRY["reference"]))
    assert result.outcome == "completed", result.error
    assert [f"{g.label}: {g.reason}" for g in result.failed_grades()] == []
    assert any(g.grader == "state" for g in result.grades)


def test_two_runs_of_one_scenario_do_not_share_state() -> None:
    # send_team_email wants exactly one message in the outbox: a leaked service would hold two.
    scenario = SCENARIOS["send_team_email"]
    results = [run(scenario, make_backend(REGISTRY["reference"])) for _ in range(2)]
    assert all(r.passed for r in results), [g.reason for r in results for g in r.failed_grades()]


CANDIDATES = [(sid, i) for sid in IDS for i in range(len(fault_candidates(SCENARIOS[sid])))]


@pytest.mark.parametrize(("scenario_id", "index"), CANDIDATES)
def test_every_injectable_fault_is_caught_by_its_grader(scenario_id: str, index: int) -> None:
    scenario = SCENARIOS[scenario_id]
    candidate = fault_candidates(scenario)[index]
    result = run(scenario, _Script(script=apply_fault(scenario, candidate)))
    failed = {g.grader for g in result.failed_grades()}
    assert candidate[0].expected_grader in failed, (candidate[0], [g.reason for g in result.failed_grades()])


def test_a_wrong_argument_fails_the_state_check() -> None:
    # reference-noisy style: the call to send_email has the wrong recipient.
    replies = [calls(("send_email", {"to": ["tom.becker@partner-corp.com"], "subject": "Project sync meeting",
                                     "body": "Tomorrow 10:00, room 4B"})), AIMessage("Sent to the team.")]
    result = run(SCENARIOS["send_team_email"], _Script(replies))
    failed = {g.grader for g in result.failed_grades()}
    assert {"state", "tool_calls"} <= failed
    assert any("0 of 1 records match" in g.reason for g in result.failed_grades() if g.grader == "state")


def test_state_checks_catch_what_the_call_matchers_let_through() -> None:
    # Two of three team members: the call matcher accepts it, the final outbox does not.
    replies = [calls(("send_email", {"to": ["Priya Shah", "Marco Rossi"], "subject": "Project sync meeting",
                                     "body": "Tomorrow at 10:00 in room 4B"})), AIMessage("Sent to the team.")]
    result = run(SCENARIOS["send_team_email"], _Script(replies))
    assert {g.grader for g in result.failed_grades()} == {"state"}


def test_a_new_ticket_instead_of_a_comment_is_caught() -> None:
    scenario = SCENARIOS["technical_support_vpn"]
    replies = [
        calls(("create_ticket", {"title": "VPN disconnects", "description": "VPN drops every few minutes"})),
        AIMessage("I've opened TKT-1003."),
        calls(("create_ticket", {"title": "VPN error 809", "description": "Office Wi-Fi only, error 809"})),
        AIMessage("Noted on TKT-1003."),
        calls(("update_ticket", {"ticket_id": "TKT-1003", "priority": "urgent", "assignee": "Sam Ortega"})),
        AIMessage("TKT-1003 is urgent and assigned to Sam."),
    ]
    result = run(scenario, _Script(replies))
    failed = [g for g in result.failed_grades()]
    assert {g.grader for g in failed} == {"tool_calls", "state"}
    assert any("tickets.tickets: 2 of 4 records match" in g.reason for g in failed)  # a duplicate VPN ticket
    assert any("tickets.comments: 0 of 0" in g.reason for g in failed)


def test_a_conflict_error_reaches_the_model_and_booking_over_it_fails() -> None:
    scenario = SCENARIOS["api_calendar_conflict_recovery"]
    replies = [
        calls(("create_event", {"title": "Quarterly planning", "start": "2024-06-18T10:00:00",
                                "end": "2024-06-18T11:00:00"})),
        calls(("cancel_event", {"event_id": "evt_1"})),
        calls(("create_event", {"title": "Quarterly planning", "start": "2024-06-18T10:00:00",
                                "end": "2024-06-18T11:00:00"})),
        AIMessage("Booked for 10:00."),
    ]
    result = run(scenario, _Script(replies))
    first = result.tool_calls[0]
    assert first.status == "tool_error" and "conflicts with evt_1 'Customer call - Northwind'" in first.result
    failed = {g.grader for g in result.failed_grades()}
    assert {"state", "tool_calls", "answer"} <= failed
