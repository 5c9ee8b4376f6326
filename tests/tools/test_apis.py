"""The simulated API services as a whole: registration, seeds, determinism, independence.

Per-service behaviour (happy paths and every error) is in ``test_api_<service>.py``; the
scenarios that use the services are run end to end in ``test_api_scenarios.py``. Every call goes
through the registry and the bound LangChain tool, as a model's call would.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from service_helpers import caller, make_ctx

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, all_tool_specs, create_services, service_spec, snapshots, tool_spec

SERVICES = ("weather", "email", "calendar", "tickets")
COLLECTIONS = {
    "weather": {"queries"},
    "email": {"inbox", "outbox", "contacts", "groups"},
    "calendar": {"events"},
    "tickets": {"tickets", "comments", "history"},
}
TOOLS = {
    "weather": {"get_current_weather", "get_forecast"},
    "email": {"list_emails", "read_email", "send_email", "reply_email", "search_contacts"},
    "calendar": {"list_events", "create_event", "move_event", "cancel_event"},
    "tickets": {"create_ticket", "update_ticket", "list_tickets", "get_ticket"},
}

#: One seed per service that exercises its state, and a script of calls (some failing) on it.
SEEDS: dict[str, dict[str, Any]] = {
    "weather": {"today": "2024-01-10", "cities": {"Atlantis": {"country": "Nowhere", "mean_c": 20}}},
    "email": {"contacts": [{"name": "Priya Shah", "email": "priya@example.com"}],
              "groups": {"team": ["Priya Shah", "lee@example.com"]},
              "inbox": [{"from": "priya@example.com", "subject": "Hi", "body": "Ping"}]},
    "calendar": {"events": [{"title": "Standup", "start": "2024-06-18T09:00", "end": "2024-06-18T09:30"}]},
    "tickets": {"tickets": [{"title": "Printer jams", "description": "Floor 3"}]},
}
SCRIPTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "weather": [("get_current_weather", {"city": "Atlantis"}), ("get_forecast", {"city": "Tokyo", "days": 5}),
                ("get_forecast", {"city": "Atlantys"})],
    "email": [("send_email", {"to": ["team"], "subject": "Sync", "body": "10:00"}),
              ("read_email", {"email_id": "msg_1"}), ("reply_email", {"email_id": "msg_1", "body": "Pong"}),
              ("send_email", {"to": ["nobody"], "subject": "x", "body": "y"})],
    "calendar": [("create_event", {"title": "Review", "start": "2024-06-18T10:00", "end": "2024-06-18T11:00"}),
                 ("move_event", {"event_id": "evt_2", "new_start": "2024-06-19T10:00"}),
                 ("create_event", {"title": "Clash", "start": "2024-06-18T09:15", "end": "2024-06-18T09:45"}),
                 ("cancel_event", {"event_id": "evt_1"})],
    "tickets": [("create_ticket", {"title": "VPN", "description": "Drops", "priority": "high"}),
                ("update_ticket", {"ticket_id": "TKT-1002", "status": "in_progress", "comment": "On it"}),
                ("update_ticket", {"ticket_id": "TKT-1001", "status": "closed"}),
                ("update_ticket", {"ticket_id": "TKT-1001", "status": "open"})],
}






def play(ctx: ToolContext, script: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Run a script of calls; each result text, or ``error: ...`` for a ToolError."""
    out = []
    for tool, args in script:
        try:
            out.append(tool_spec(tool).bind(ctx).invoke(args))
        except ToolError as exc:
            out.append(f"error: {exc}")
    return out


def test_every_service_registers_its_tools() -> None:
    by_service: dict[str, set[str]] = {}
    for spec in all_tool_specs():
        if spec.service in SERVICES:
            by_service.setdefault(spec.service, set()).add(spec.name)
            assert spec.blocking is False, spec.name  # pure in-memory work runs inline
            assert spec.group == spec.service
            assert spec.description and spec.openai_schema()["function"]["name"] == spec.name
    assert by_service == TOOLS


@pytest.mark.parametrize("name", SERVICES)
def test_an_empty_seed_works_and_the_snapshot_has_its_collections(name: str) -> None:
    spec = service_spec(name)
    snap = spec.create(spec.seed_model()).snapshot()
    assert set(snap) == COLLECTIONS[name]
    assert json.loads(json.dumps(snap)) == snap  # plain JSON records


@pytest.mark.parametrize("name", SERVICES)
def test_an_unknown_seed_key_is_an_error(name: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        create_services({name: {"colour": "blue"}})


@pytest.mark.parametrize(("name", "seed"), [
    ("weather", {"cities": {"Oslo": {"forecast": [{"high_c": 1, "low_c": 5, "condition": "Snow"}]}}}),
    ("weather", {"today": "not a date"}),
    ("email", {"contacts": [{"name": "X", "email": "not-an-address"}]}),
    ("email", {"groups": {"team": ["Nobody Known"]}}),
    ("email", {"inbox": [{"sender": "a@b.com"}]}),
    ("calendar", {"timezone": "Mars/Olympus"}),
    ("calendar", {"events": [{"title": "x", "start": "2024-06-18T10:00", "end": "2024-06-18T09:00"}]}),
    ("tickets", {"tickets": [{"title": "x", "status": "frozen"}]}),
    ("tickets", {"tickets": [{"title": "x", "assignee": "Stranger"}]}),
])
def test_invalid_seeds_are_refused(name: str, seed: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        create_services({name: seed})


@pytest.mark.parametrize("name", SERVICES)
def test_same_calls_on_fresh_instances_give_identical_results_and_snapshots(tmp_path: Path, name: str) -> None:
    first, second = make_ctx(tmp_path, {name: SEEDS[name]}), make_ctx(tmp_path, {name: SEEDS[name]})
    assert play(first, SCRIPTS[name]) == play(second, SCRIPTS[name])
    assert snapshots(first.state) == snapshots(second.state)
    assert any(r.startswith("error: ") for r in play(make_ctx(tmp_path, {name: SEEDS[name]}), SCRIPTS[name]))


@pytest.mark.parametrize("name", SERVICES)
def test_instances_from_one_seed_share_no_state(tmp_path: Path, name: str) -> None:
    seed = json.loads(json.dumps(SEEDS[name]))
    touched, untouched = make_ctx(tmp_path, {name: seed}), make_ctx(tmp_path, {name: seed})
    before = snapshots(untouched.state)
    play(touched, SCRIPTS[name])
    assert snapshots(touched.state) != before
    assert snapshots(untouched.state) == before
    assert seed == SEEDS[name]  # the seed itself is never mutated
    assert snapshots(make_ctx(tmp_path, {name: seed}).state) == before


def test_a_bare_context_gets_a_default_instance_that_keeps_its_state(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path)  # as a library user might build it
    call = caller(ctx)
    call("create_ticket", title="VPN", description="Drops every few minutes")
    assert call("get_ticket", ticket_id="TKT-1001")["title"] == "VPN"
    assert [t["id"] for t in snapshots(ctx.state)["tickets"]["tickets"]] == ["TKT-1001"]


def test_a_wrong_object_in_the_state_is_a_bug_not_a_tool_error(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path, state={"weather": object()})
    with pytest.raises(TypeError, match="not a WeatherService"):
        tool_spec("get_current_weather").bind(ctx).invoke({"city": "Paris"})


@pytest.mark.parametrize("name", SERVICES)
async def test_tools_run_inline_on_the_event_loop(tmp_path: Path, name: str) -> None:
    ctx = make_ctx(tmp_path, {name: SEEDS[name]})
    tool, args = SCRIPTS[name][0]
    assert json.loads(await tool_spec(tool).bind(ctx).ainvoke(args))
