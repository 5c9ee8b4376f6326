"""The simulated ``tickets`` service: a helpdesk with a status workflow, assignees and comments.

Statuses follow a workflow (``TRANSITIONS``): a resolved ticket must be reopened before work
resumes, and a closed ticket cannot be changed at all; an invalid move is an error that lists the
allowed ones. Status and priority values are matched loosely ("In progress" is ``in_progress``)
and anything else is an error listing the valid values. An update is all or nothing: one invalid
field changes nothing. Ids are ``TKT-1001``, ``TKT-1002``... (seed order, then creation order);
the clock moves one minute per change from the seeded ``now``.

Snapshot: ``tickets``, ``comments`` and ``history`` (one record per field change).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from agentbench.errors import ToolError

from ..registry import ToolContext, register_tool
from ..services import ServiceSpec, register_service
from ._common import DEFAULT_NOW, SeedModel, did_you_mean, get_service, iso, joined, localize, norm

STATUSES = ("open", "in_progress", "waiting_on_customer", "resolved", "closed")
PRIORITIES = ("low", "medium", "high", "urgent")
#: status -> the statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("in_progress", "waiting_on_customer", "resolved", "closed"),
    "in_progress": ("open", "waiting_on_customer", "resolved", "closed"),
    "waiting_on_customer": ("open", "in_progress", "resolved", "closed"),
    "resolved": ("open", "closed"),
    "closed": (),
}
_UNASSIGNED = {"", "none", "unassigned", "nobody"}


def _choice(value: str, options: tuple[str, ...], what: str) -> str:
    """``value`` as one of ``options`` (case, spaces and hyphens ignored); ``ValueError`` otherwise."""
    key = re.sub(r"[\s\-]+", "_", value.strip().lower())
    if key not in options:
        raise ValueError(f"invalid {what} {value!r}; use one of: {', '.join(options)}")
    return key


def _tool_choice(value: str, options: tuple[str, ...], what: str) -> str:
    try:
        return _choice(value, options, what)
    except ValueError as exc:
        raise ToolError(str(exc)) from None


class CommentSeed(SeedModel):
    """A comment already on a seeded ticket."""

    author: str = Field(min_length=1)
    body: str = Field(min_length=1)
    created: datetime | None = None


class TicketSeed(SeedModel):
    """A ticket already in the helpdesk."""

    id: str | None = Field(default=None, pattern=r"^TKT-\d+$")
    title: str = Field(min_length=1)
    description: str = ""
    priority: str = "medium"
    status: str = "open"
    assignee: str | None = None
    requester: str | None = None
    tags: list[str] = Field(default_factory=list)
    created: datetime | None = None
    comments: list[CommentSeed] = Field(default_factory=list)

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str) -> str:
        return _choice(value, PRIORITIES, "priority")

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        return _choice(value, STATUSES, "status")


class TicketsSeed(SeedModel):
    """Seed of the helpdesk: the clock, who "you" are, the support agents, existing tickets."""

    now: datetime = DEFAULT_NOW
    agent_name: str = Field(default="Support Agent", description="author of comments added through the tools")
    agents: list[str] = Field(default_factory=lambda: ["Dana Whitfield", "Sam Ortega", "Priya Raman"])
    first_id: int = Field(default=1001, ge=1, description="number of the first generated ticket id")
    tickets: list[TicketSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> TicketsSeed:
        agents = {norm(a) for a in self.agents}
        for t in self.tickets:
            if t.assignee is not None and norm(t.assignee) not in agents:
                raise ValueError(f"ticket {t.title!r}: assignee {t.assignee!r} is not one of the agents")
        ids = [t.id for t in self.tickets if t.id]
        if len(ids) != len(set(ids)):
            raise ValueError("ticket ids must be unique")
        return self


class TicketService:
    """One run's helpdesk."""

    def __init__(self, seed: TicketsSeed) -> None:
        self.now = localize(seed.now, timezone.utc)
        self._ticks = 0
        self.agent_name = seed.agent_name
        self.agents = list(seed.agents)
        self.tickets: dict[str, dict[str, Any]] = {}
        self.comments: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []
        self._reserved = {t.id for t in seed.tickets if t.id}
        self._next = seed.first_id
        for i, t in enumerate(seed.tickets):
            created = iso(localize(t.created, timezone.utc) if t.created else
                          self.now - timedelta(hours=len(seed.tickets) - i))
            assignee = self._agent(t.assignee) if t.assignee else None
            ticket_id = t.id or self._new_id()
            ticket: dict[str, Any] = {
                "id": ticket_id, "title": t.title, "description": t.description,
                "priority": t.priority, "status": t.status, "assignee": assignee, "requester": t.requester,
                "tags": list(t.tags), "created": created, "updated": created, "origin": "seed"}
            self.tickets[ticket_id] = ticket
            for c in t.comments:
                self._comment(ticket["id"], c.author, c.body,
                              iso(localize(c.created, timezone.utc)) if c.created else created)

    def _new_id(self) -> str:
        while f"TKT-{self._next}" in self.tickets or f"TKT-{self._next}" in self._reserved:
            self._next += 1
        self._next += 1
        return f"TKT-{self._next - 1}"

    def _tick(self) -> str:
        self._ticks += 1
        return iso(self.now + timedelta(minutes=self._ticks))

    def _comment(self, ticket_id: str, author: str, body: str, created: str) -> dict[str, Any]:
        comment = {"id": f"cmt_{len(self.comments) + 1}", "ticket_id": ticket_id, "author": author,
                   "body": body, "created": created}
        self.comments.append(comment)
        return comment

    def _agent(self, name: str) -> str:
        """The agent ``name`` means (full name or unique first name, any case)."""
        key = norm(name)
        exact = [a for a in self.agents if norm(a) == key]
        first = [a for a in self.agents if norm(a).split(" ")[0] == key]
        if exact or len(first) == 1:
            return (exact or first)[0]
        raise ToolError(f"unknown assignee {name!r}.{did_you_mean(name, self.agents)} "
                        f"Agents: {', '.join(self.agents)} (or 'unassigned').")

    def get(self, ticket_id: str) -> dict[str, Any]:
        """A ticket by id (``TKT-1001``, ``tkt-1001``, ``#1001`` or ``1001``)."""
        digits = re.fullmatch(r"\s*(?:tkt-|#)?(\d+)\s*", ticket_id, flags=re.IGNORECASE)
        ticket = self.tickets.get(f"TKT-{digits.group(1)}") if digits else None
        if ticket is None:
            raise ToolError(f"no ticket with id {ticket_id!r}; ids look like 'TKT-1001' (use list_tickets)")
        return ticket

    def create(self, title: str, description: str, priority: str, tags: list[str]) -> dict[str, Any]:
        """Open a new ticket."""
        if not title.strip():
            raise ToolError("title must not be empty")
        if not description.strip():
            raise ToolError("description must not be empty: describe the problem")
        level = _tool_choice(priority, PRIORITIES, "priority")
        now = self._tick()
        ticket: dict[str, Any] = {"id": self._new_id(), "title": title.strip(), "description": description.strip(),
                  "priority": level, "status": "open", "assignee": None, "requester": None,
                  "tags": [t.strip() for t in tags if t.strip()], "created": now, "updated": now, "origin": "agent"}
        self.tickets[ticket["id"]] = ticket
        return ticket

    def update(self, ticket_id: str, status: str | None, priority: str | None, assignee: str | None,
               comment: str | None) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
        """Apply every given change, or none of them when one is invalid."""
        ticket = self.get(ticket_id)
        if all(v is None for v in (status, priority, assignee, comment)):
            raise ToolError("nothing to update: give status, priority, assignee or comment")
        if ticket["status"] == "closed":
            raise ToolError(f"{ticket['id']} is closed and cannot be changed; create a new ticket instead")
        wanted: dict[str, Any] = {}
        if status is not None:
            new = _tool_choice(status, STATUSES, "status")
            if new != ticket["status"] and new not in TRANSITIONS[ticket["status"]]:
                allowed = ", ".join(TRANSITIONS[ticket["status"]])
                raise ToolError(f"cannot change {ticket['id']} from {ticket['status']} to {new}; allowed from "
                                f"{ticket['status']}: {allowed}")
            wanted["status"] = new
        if priority is not None:
            wanted["priority"] = _tool_choice(priority, PRIORITIES, "priority")
        if assignee is not None:
            wanted["assignee"] = None if norm(assignee) in _UNASSIGNED else self._agent(assignee)
        if comment is not None and not comment.strip():
            raise ToolError("comment must not be empty")
        changes = [{"field": k, "old": ticket[k], "new": v} for k, v in wanted.items() if ticket[k] != v]
        if not changes and comment is None:
            raise ToolError(f"nothing changed: {ticket['id']} already has "
                            f"{', '.join(f'{k}={v}' for k, v in wanted.items())}")
        now = self._tick()
        for change in changes:
            ticket[change["field"]] = change["new"]
            self.history.append({"ticket_id": ticket["id"], **change, "at": now})
        added = self._comment(ticket["id"], self.agent_name, comment.strip(), now) if comment else None
        ticket["updated"] = now
        return ticket, changes, added

    def matching(self, status: str | None, priority: str | None, assignee: str | None) -> list[dict[str, Any]]:
        """Tickets with the given status, priority and assignee (each optional), in id order."""
        want_status = _tool_choice(status, STATUSES, "status") if status else None
        want_priority = _tool_choice(priority, PRIORITIES, "priority") if priority else None
        want_agent = (None if norm(assignee) in _UNASSIGNED else self._agent(assignee)) if assignee is not None \
            else "*"
        return [t for t in self.tickets.values()
                if (want_status is None or t["status"] == want_status)
                and (want_priority is None or t["priority"] == want_priority)
                and (want_agent == "*" or t["assignee"] == want_agent)]

    def details(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """A ticket with its comments and change history."""
        return {**_public(ticket), "description": ticket["description"], "requester": ticket["requester"],
                "comments": [dict(c) for c in self.comments if c["ticket_id"] == ticket["id"]],
                "history": [dict(h) for h in self.history if h["ticket_id"] == ticket["id"]]}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """``tickets``, ``comments`` and ``history`` as JSON records."""
        counts = {t: sum(1 for c in self.comments if c["ticket_id"] == t) for t in self.tickets}
        return {
            "tickets": [{**t, "tags": list(t["tags"]), "tags_text": joined(t["tags"]),
                         "comment_count": counts[t["id"]]} for t in self.tickets.values()],
            "comments": [dict(c) for c in self.comments],
            "history": [dict(h) for h in self.history],
        }


def _public(t: dict[str, Any]) -> dict[str, Any]:
    return {k: t[k] for k in ("id", "title", "status", "priority", "assignee", "tags", "created", "updated")}


register_service(ServiceSpec("tickets", TicketsSeed, TicketService,
                             "a support helpdesk: tickets with a status workflow, assignees and comments"))


class CreateTicketArgs(BaseModel):
    title: str = Field(description="short summary of the problem")
    description: str = Field(description="what happens, since when, what was tried")
    priority: str = Field(default="medium", description=f"one of: {', '.join(PRIORITIES)}")
    tags: list[str] = Field(default_factory=list, description="labels, e.g. ['vpn', 'login']")


class UpdateTicketArgs(BaseModel):
    ticket_id: str = Field(description="ticket id, e.g. 'TKT-1001'")
    status: str | None = Field(default=None, description=f"new status, one of: {', '.join(STATUSES)}")
    priority: str | None = Field(default=None, description=f"new priority, one of: {', '.join(PRIORITIES)}")
    assignee: str | None = Field(default=None, description="support agent to assign, or 'unassigned'")
    comment: str | None = Field(default=None, description="a comment to add to the ticket")


class ListTicketsArgs(BaseModel):
    status: str | None = Field(default=None, description=f"only this status ({', '.join(STATUSES)})")
    priority: str | None = Field(default=None, description="only this priority")
    assignee: str | None = Field(default=None, description="only tickets of this agent ('unassigned' for none)")


class GetTicketArgs(BaseModel):
    ticket_id: str = Field(description="ticket id, e.g. 'TKT-1001'")


def _desk(ctx: ToolContext) -> TicketService:
    return get_service(ctx, "tickets", TicketService)


@register_tool("create_ticket", CreateTicketArgs,
               "Open a support ticket (status 'open'). Returns the ticket with its id (e.g. TKT-1001).",
               group="tickets", blocking=False, service="tickets")
def create_ticket(ctx: ToolContext, args: CreateTicketArgs) -> dict[str, Any]:
    ticket = _desk(ctx).create(args.title, args.description, args.priority, args.tags)
    return {"result": "created", "ticket": _public(ticket)}


@register_tool("update_ticket", UpdateTicketArgs,
               "Update a ticket: change its status (workflow: open -> in_progress / waiting_on_customer -> resolved "
               "-> closed; a resolved ticket must be reopened first; closed tickets cannot change), priority or "
               "assignee, and/or add a comment. Returns the ticket and what changed.",
               group="tickets", blocking=False, service="tickets")
def update_ticket(ctx: ToolContext, args: UpdateTicketArgs) -> dict[str, Any]:
    ticket, changes, comment = _desk(ctx).update(args.ticket_id, args.status, args.priority, args.assignee,
                                                 args.comment)
    return {"result": "updated", "ticket": _public(ticket), "changes": changes,
            "comment_id": comment["id"] if comment else None}


@register_tool("list_tickets", ListTicketsArgs,
               "List tickets (id, title, status, priority, assignee), optionally filtered by status, priority or "
               "assignee.",
               group="tickets", blocking=False, service="tickets")
def list_tickets(ctx: ToolContext, args: ListTicketsArgs) -> dict[str, Any]:
    rows = _desk(ctx).matching(args.status, args.priority, args.assignee)
    return {"count": len(rows), "tickets": [_public(t) for t in rows]}


@register_tool("get_ticket", GetTicketArgs,
               "Get one ticket in full: description, status, priority, assignee, comments and change history.",
               group="tickets", blocking=False, service="tickets")
def get_ticket(ctx: ToolContext, args: GetTicketArgs) -> dict[str, Any]:
    desk = _desk(ctx)
    return desk.details(desk.get(args.ticket_id))
