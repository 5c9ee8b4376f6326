"""The simulated ``calendar`` service: one person's calendar in one fixed UTC offset.

Times are ISO 8601 date-times; a time without an offset is read in the calendar's offset, one
with an offset is converted to it. "Now" comes from the seed (never the wall clock): nothing may
be booked or moved into the past, and an event may not overlap an active one (the error names
the conflicting event, as a real calendar's free/busy check would). Ids are ``evt_1``,
``evt_2``... in seed order, then in creation order.

Snapshot: ``events`` (every event with ``status`` active or cancelled, its date and clock times
as separate fields for simple matching, and where it started before any move).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from agentbench.errors import ToolError

from ..registry import ToolContext, register_tool
from ..services import ServiceSpec, register_service
from ._common import (
    DEFAULT_NOW,
    SeedModel,
    get_service,
    is_email,
    iso,
    joined,
    localize,
    out_of_range,
    parse_date_or_datetime,
    parse_datetime,
    parse_offset,
)

MAX_LIST_DAYS = 366


class EventSeed(SeedModel):
    """An event already in the calendar (it may lie in the past)."""

    id: str | None = None
    title: str = Field(min_length=1)
    start: datetime
    end: datetime
    attendees: list[str] = Field(default_factory=list)
    location: str | None = None
    status: Literal["active", "cancelled"] = "active"

    @model_validator(mode="after")
    def _ordered(self) -> EventSeed:
        if (self.start.tzinfo is None) != (self.end.tzinfo is None):
            raise ValueError("give an offset on both start and end, or on neither")
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} must be after start {self.start.isoformat()}")
        return self


class CalendarSeed(SeedModel):
    """Seed of the calendar: its UTC offset, the current time, and existing events."""

    timezone: str = Field(default="+00:00", description="fixed UTC offset such as -04:00")
    now: datetime | None = Field(default=None, description="default: 2024-06-17T09:00 in the calendar's offset")
    events: list[EventSeed] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _offset(cls, value: str) -> str:
        parse_offset(value)  # ValueError -> a located seed problem
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> CalendarSeed:
        ids = [e.id for e in self.events if e.id]
        if len(ids) != len(set(ids)):
            raise ValueError("event ids must be unique")
        return self


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {"id": event["id"], "title": event["title"], "start": iso(event["start"]), "end": iso(event["end"]),
            "attendees": list(event["attendees"]), "location": event["location"], "status": event["status"]}


def _span(event: dict[str, Any]) -> str:
    start, end = event["start"], event["end"]
    until = end.strftime("%H:%M") if end.date() == start.date() else end.strftime("%Y-%m-%d %H:%M")
    return f"{event['id']} {event['title']!r} ({start.strftime('%Y-%m-%d %H:%M')}-{until})"


class CalendarService:
    """One run's calendar."""

    def __init__(self, seed: CalendarSeed) -> None:
        self.tz: timezone = parse_offset(seed.timezone)
        local_default = DEFAULT_NOW.replace(tzinfo=None)  # 09:00 on the default day, in this calendar
        self.now = localize(seed.now or local_default, self.tz)
        self.events: dict[str, dict[str, Any]] = {}
        self._reserved = {e.id for e in seed.events if e.id}
        self._next = 1
        for e in seed.events:
            start, end = localize(e.start, self.tz), localize(e.end, self.tz)
            self._add(e.id or self._new_id(), e.title, start, end, e.attendees, e.location, e.status, "seed")

    def _new_id(self) -> str:
        while f"evt_{self._next}" in self.events or f"evt_{self._next}" in self._reserved:
            self._next += 1
        self._next += 1
        return f"evt_{self._next - 1}"

    def _add(self, event_id: str, title: str, start: datetime, end: datetime, attendees: list[str],
             location: str | None, status: str, origin: str) -> dict[str, Any]:
        event = {"id": event_id, "title": title, "start": start, "end": end, "attendees": list(attendees),
                 "location": location, "status": status, "origin": origin,
                 "original_start": start, "original_end": end}
        self.events[event_id] = event
        return event

    def get(self, event_id: str) -> dict[str, Any]:
        """An event by id; ``ToolError`` otherwise."""
        event = self.events.get(event_id.strip())
        if event is None:
            raise ToolError(f"no event with id {event_id!r}; ids look like 'evt_1' (use list_events to see them)")
        return event

    def _check_slot(self, start: datetime, end: datetime, ignore: str | None = None) -> None:
        if end <= start:
            raise ToolError(f"end {iso(end)} must be after start {iso(start)}")
        if start < self.now:
            raise ToolError(f"cannot schedule in the past: start {iso(start)} is before the current time "
                            f"{iso(self.now)}")
        clashes = [e for e in self.events.values() if e["status"] == "active" and e["id"] != ignore
                   and e["start"] < end and start < e["end"]]
        if clashes:
            listing = "; ".join(_span(e) for e in sorted(clashes, key=lambda e: e["start"]))
            raise ToolError(f"the time {start.strftime('%Y-%m-%d %H:%M')}-{end.strftime('%H:%M')} conflicts with "
                            f"{listing}. Choose a free time (list_events shows the schedule).")

    def list_range(self, date_from: str, date_to: str, include_cancelled: bool) -> dict[str, Any]:
        """Events overlapping [date_from, date_to] (a date as ``date_to`` includes that whole day)."""
        lo = parse_date_or_datetime(date_from, self.tz, "date_from", end_of_day=False)
        hi = parse_date_or_datetime(date_to, self.tz, "date_to", end_of_day=True)
        if hi <= lo:
            raise ToolError(f"date_to {date_to!r} must be after date_from {date_from!r}")
        if hi - lo > timedelta(days=MAX_LIST_DAYS):
            raise ToolError(f"the range is too long: list at most {MAX_LIST_DAYS} days at a time")
        rows = [e for e in self.events.values() if e["start"] < hi and lo < e["end"]
                and (include_cancelled or e["status"] == "active")]
        rows.sort(key=lambda e: (e["start"], e["id"]))
        offset = iso(self.now)[-6:]  # the "+HH:MM" tail of an aware ISO time
        return {"timezone": offset, "now": iso(self.now), "from": iso(lo), "to": iso(hi),
                "count": len(rows), "events": [_public(e) for e in rows]}

    def create(self, title: str, start: str, end: str, attendees: list[str], location: str | None) -> dict[str, Any]:
        """Book a new event after checking its times and the free/busy schedule."""
        if not title.strip():
            raise ToolError("title must not be empty")
        bad = [a for a in attendees if "@" in a and not is_email(a.strip())]
        if bad:
            raise ToolError(f"invalid attendee email address {bad[0]!r}")
        begin, finish = parse_datetime(start, self.tz, "start"), parse_datetime(end, self.tz, "end")
        self._check_slot(begin, finish)
        names = [a.strip() for a in attendees if a.strip()]
        return self._add(self._new_id(), title.strip(), begin, finish, names, location, "active", "agent")

    def move(self, event_id: str, new_start: str, new_end: str | None) -> dict[str, Any]:
        """Move an event (keeping its length when ``new_end`` is not given)."""
        event = self.get(event_id)
        if event["status"] == "cancelled":
            raise ToolError(f"event {event['id']} is cancelled; create a new event instead")
        if event["start"] < self.now:
            raise ToolError(f"event {event['id']} has already started ({iso(event['start'])}); it cannot be moved")
        begin = parse_datetime(new_start, self.tz, "new_start")
        try:
            finish = parse_datetime(new_end, self.tz, "new_end") if new_end else begin + (event["end"] - event["start"])
        except OverflowError:  # keeping the length runs past the year 9999
            raise out_of_range("new_start", new_start) from None
        self._check_slot(begin, finish, ignore=event["id"])
        event["start"], event["end"] = begin, finish
        return event

    def cancel(self, event_id: str) -> dict[str, Any]:
        """Cancel an event that has not ended yet."""
        event = self.get(event_id)
        if event["status"] == "cancelled":
            raise ToolError(f"event {event['id']} is already cancelled")
        if event["end"] <= self.now:
            raise ToolError(f"event {event['id']} already took place ({iso(event['start'])}); it cannot be cancelled")
        event["status"] = "cancelled"
        return event

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """``events``: every event, cancelled ones included, in id order of creation."""
        return {"events": [{
            **_public(e), "date": e["start"].date().isoformat(), "start_time": e["start"].strftime("%H:%M"),
            "end_time": e["end"].strftime("%H:%M"), "attendees_text": joined(e["attendees"]),
            "origin": e["origin"], "moved": (e["start"], e["end"]) != (e["original_start"], e["original_end"]),
            "original_start": iso(e["original_start"]),
        } for e in self.events.values()]}


register_service(ServiceSpec("calendar", CalendarSeed, CalendarService,
                             "a calendar with conflict checks in one fixed UTC offset"))


class ListEventsArgs(BaseModel):
    date_from: str = Field(description="start of the range: a date (2024-06-18) or an ISO 8601 date-time")
    date_to: str = Field(description="end of the range: a date (included in full) or an ISO 8601 date-time")
    include_cancelled: bool = Field(default=False, description="also list cancelled events")


class CreateEventArgs(BaseModel):
    title: str = Field(description="event title")
    start: str = Field(description="ISO 8601 start date-time, e.g. 2024-06-18T14:00:00")
    end: str = Field(description="ISO 8601 end date-time (after start)")
    attendees: list[str] = Field(default_factory=list, description="attendee names or email addresses")
    location: str | None = Field(default=None, description="where the event takes place")


class MoveEventArgs(BaseModel):
    event_id: str = Field(description="id of the event, e.g. 'evt_2'")
    new_start: str = Field(description="new ISO 8601 start date-time")
    new_end: str | None = Field(default=None, description="new ISO 8601 end date-time (default: keep the length)")


class CancelEventArgs(BaseModel):
    event_id: str = Field(description="id of the event to cancel")


def _calendar(ctx: ToolContext) -> CalendarService:
    return get_service(ctx, "calendar", CalendarService)


@register_tool("list_events", ListEventsArgs,
               "List calendar events between two dates or date-times (ids, titles, ISO 8601 start/end, attendees, "
               "location), ordered by start. Also returns the current time.",
               group="calendar", blocking=False, service="calendar")
def list_events(ctx: ToolContext, args: ListEventsArgs) -> dict[str, Any]:
    return _calendar(ctx).list_range(args.date_from, args.date_to, args.include_cancelled)


@register_tool("create_event", CreateEventArgs,
               "Create a calendar event. Fails if the time is in the past, the end is not after the start, or "
               "the time overlaps an existing event (the error names it). Returns the event with its id.",
               group="calendar", blocking=False, service="calendar")
def create_event(ctx: ToolContext, args: CreateEventArgs) -> dict[str, Any]:
    event = _calendar(ctx).create(args.title, args.start, args.end, args.attendees, args.location)
    return {"status": "created", "event": _public(event)}


@register_tool("move_event", MoveEventArgs,
               "Move an event to a new time (same conflict and past-time checks as create_event).",
               group="calendar", blocking=False, service="calendar")
def move_event(ctx: ToolContext, args: MoveEventArgs) -> dict[str, Any]:
    event = _calendar(ctx).move(args.event_id, args.new_start, args.new_end)
    return {"status": "moved", "event": _public(event)}


@register_tool("cancel_event", CancelEventArgs,
               "Cancel an event by id (it stays listed with include_cancelled).",
               group="calendar", blocking=False, service="calendar")
def cancel_event(ctx: ToolContext, args: CancelEventArgs) -> dict[str, Any]:
    event = _calendar(ctx).cancel(args.event_id)
    return {"status": "cancelled", "event": _public(event)}
