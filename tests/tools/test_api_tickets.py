"""The tickets service: creating, the status workflow, assignees, comments, lookups and every error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from service_helpers import caller

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, create_services, snapshots, tool_spec
from agentbench.tools.apis.tickets import STATUSES, TRANSITIONS

SEED: dict[str, Any] = {
    "now": "2024-06-17T09:00:00Z",
    "tickets": [
        {"title": "Printer jams", "description": "Floor 3", "priority": "low"},
        {"title": "Mobile mail", "description": "No sync", "priority": "High", "status": "in progress",
         "assignee": "Sam Ortega"},
        {"title": "Password reset", "description": "Link expired", "status": "resolved",
         "comments": [{"author": "customer", "body": "Works now"}]},
        {"id": "TKT-2000", "title": "Old laptop", "status": "closed"},
    ],
}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path, state=dict(create_services({"tickets": SEED})))




def snap(ctx: ToolContext) -> dict[str, list[dict[str, Any]]]:
    return snapshots(ctx.state)["tickets"]


def fails(ctx: ToolContext, tool: str, message: str, **args: Any) -> None:
    before = snap(ctx)
    with pytest.raises(ToolError, match=message):
        tool_spec(tool).bind(ctx).invoke(args)
    assert snap(ctx) == before  # all or nothing


def test_create_ticket(ctx: ToolContext) -> None:
    created = caller(ctx)("create_ticket", title=" VPN drops ", description="Every 5 minutes", priority="URGENT",
                          tags=["vpn", " "])
    assert created == {"result": "created", "ticket": {
        "id": "TKT-1004", "title": "VPN drops", "status": "open", "priority": "urgent", "assignee": None,
        "tags": ["vpn"], "created": "2024-06-17T09:01:00+00:00", "updated": "2024-06-17T09:01:00+00:00"}}
    record = snap(ctx)["tickets"][-1]
    assert (record["description"], record["origin"], record["tags_text"], record["comment_count"]) == (
        "Every 5 minutes", "agent", "vpn", 0)
    assert caller(ctx)("create_ticket", title="b", description="c")["ticket"]["priority"] == "medium"


@pytest.mark.parametrize(("args", "message"), [
    ({"title": " ", "description": "x"}, r"title must not be empty"),
    ({"title": "x", "description": ""}, r"description must not be empty"),
    ({"title": "x", "description": "y", "priority": "critical"},
     r"invalid priority 'critical'; use one of: low, medium, high, urgent"),
])
def test_create_ticket_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    fails(ctx, "create_ticket", message, **args)


def test_update_changes_fields_adds_a_comment_and_records_history(ctx: ToolContext) -> None:
    result = caller(ctx)("update_ticket", ticket_id="tkt-1001", status="In Progress", priority="high",
                         assignee="priya", comment="  Ordered a new fuser.  ")
    assert result["ticket"]["status"] == "in_progress" and result["ticket"]["assignee"] == "Priya Raman"
    assert result["changes"] == [{"field": "status", "old": "open", "new": "in_progress"},
                                 {"field": "priority", "old": "low", "new": "high"},
                                 {"field": "assignee", "old": None, "new": "Priya Raman"}]
    assert result["comment_id"] == "cmt_2"
    state = snap(ctx)
    assert state["comments"][-1] == {"id": "cmt_2", "ticket_id": "TKT-1001", "author": "Support Agent",
                                     "body": "Ordered a new fuser.", "created": "2024-06-17T09:01:00+00:00"}
    assert [h["field"] for h in state["history"]] == ["status", "priority", "assignee"]
    assert state["tickets"][0]["updated"] == "2024-06-17T09:01:00+00:00"


def test_a_comment_alone_and_unassigning(ctx: ToolContext) -> None:
    call = caller(ctx)
    assert call("update_ticket", ticket_id="#1002", comment="Asked for logs")["changes"] == []
    assert call("update_ticket", ticket_id="1002", assignee="unassigned")["ticket"]["assignee"] is None


def test_the_whole_workflow(ctx: ToolContext) -> None:
    call = caller(ctx)
    for status in ("waiting_on_customer", "in_progress", "resolved", "open", "resolved", "closed"):
        assert call("update_ticket", ticket_id="TKT-1001", status=status)["ticket"]["status"] == status
    assert [h["new"] for h in snap(ctx)["history"]] == ["waiting_on_customer", "in_progress", "resolved", "open",
                                                       "resolved", "closed"]


@pytest.mark.parametrize("old", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_every_transition_is_allowed_or_refused_by_the_table(tmp_path: Path, old: str, new: str) -> None:
    seed = {"tickets": [{"title": "t", "status": old}]}
    ctx = ToolContext(workspace=tmp_path, state=dict(create_services({"tickets": seed})))
    bound = tool_spec("update_ticket").bind(ctx)
    if old == "closed":
        with pytest.raises(ToolError, match="TKT-1001 is closed and cannot be changed; create a new ticket"):
            bound.invoke({"ticket_id": "TKT-1001", "status": new})
    elif old == new:
        with pytest.raises(ToolError, match=f"nothing changed: TKT-1001 already has status={new}"):
            bound.invoke({"ticket_id": "TKT-1001", "status": new})
    elif new in TRANSITIONS[old]:
        assert json.loads(bound.invoke({"ticket_id": "TKT-1001", "status": new}))["ticket"]["status"] == new
    else:
        with pytest.raises(ToolError, match=f"cannot change TKT-1001 from {old} to {new}; allowed from {old}: "):
            bound.invoke({"ticket_id": "TKT-1001", "status": new})


@pytest.mark.parametrize(("args", "message"), [
    ({"ticket_id": "TKT-2000", "comment": "hello?"}, r"TKT-2000 is closed and cannot be changed"),
    ({"ticket_id": "TKT-1003", "status": "in_progress"},
     r"cannot change TKT-1003 from resolved to in_progress; allowed from resolved: open, closed"),
    ({"ticket_id": "TKT-1001", "status": "done"}, r"invalid status 'done'; use one of: open, in_progress, "),
    ({"ticket_id": "TKT-1001", "priority": "p1"}, r"invalid priority 'p1'"),
    ({"ticket_id": "TKT-1001", "assignee": "Bob"}, r"unknown assignee 'Bob'\. Agents: Dana Whitfield, Sam Ortega"),
    ({"ticket_id": "TKT-1001", "assignee": "Sam Ortgea"}, r"unknown assignee 'Sam Ortgea'\. Did you mean: Sam Ortega"),
    ({"ticket_id": "TKT-1001", "comment": " "}, r"comment must not be empty"),
    ({"ticket_id": "TKT-1001"}, r"nothing to update: give status, priority, assignee or comment"),
    ({"ticket_id": "TKT-1002", "priority": "high"}, r"nothing changed: TKT-1002 already has priority=high"),
    ({"ticket_id": "TKT-9999", "comment": "x"}, r"no ticket with id 'TKT-9999'; ids look like 'TKT-1001'"),
    ({"ticket_id": "vpn ticket", "comment": "x"}, r"no ticket with id 'vpn ticket'"),
    # one invalid field changes nothing, not even the valid ones given with it
    ({"ticket_id": "TKT-1001", "status": "in_progress", "comment": "ok", "assignee": "Bobby"},
     r"unknown assignee 'Bobby'"),
])
def test_update_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    fails(ctx, "update_ticket", message, **args)


def test_list_and_get(ctx: ToolContext) -> None:
    call = caller(ctx)
    assert [t["id"] for t in call("list_tickets")["tickets"]] == ["TKT-1001", "TKT-1002", "TKT-1003", "TKT-2000"]
    assert [t["id"] for t in call("list_tickets", status="In progress")["tickets"]] == ["TKT-1002"]
    assert [t["id"] for t in call("list_tickets", priority="low")["tickets"]] == ["TKT-1001"]
    assert [t["id"] for t in call("list_tickets", assignee="sam")["tickets"]] == ["TKT-1002"]
    assert call("list_tickets", assignee="unassigned")["count"] == 3
    full = call("get_ticket", ticket_id="TKT-1003")
    assert full["description"] == "Link expired"
    assert full["comments"] == [{"id": "cmt_1", "ticket_id": "TKT-1003", "author": "customer", "body": "Works now",
                                 "created": full["created"]}]
    with pytest.raises(ToolError, match="invalid status 'pending'"):
        call("list_tickets", status="pending")
    with pytest.raises(ToolError, match="no ticket with id 'TKT-1'"):
        call("get_ticket", ticket_id="TKT-1")


def test_seeded_timestamps_and_first_id(tmp_path: Path) -> None:
    seed = {"first_id": 500, "agents": ["Kim"], "tickets": [{"title": "a"}, {"title": "b", "assignee": "kim"}]}
    ctx = ToolContext(workspace=tmp_path, state=dict(create_services({"tickets": seed})))
    tickets = snap(ctx)["tickets"]
    assert [(t["id"], t["created"], t["assignee"]) for t in tickets] == [
        ("TKT-500", "2024-06-17T07:00:00+00:00", None), ("TKT-501", "2024-06-17T08:00:00+00:00", "Kim")]
