"""The calendar service: booking, conflicts, moving, cancelling, time zones and every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from service_helpers import caller

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, create_services, snapshots, tool_spec

SEED: dict[str, Any] = {
    "timezone": "-04:00",
    "now": "2024-06-17T09:00:00",
    "events": [
        {"title": "Standup", "start": "2024-06-18T09:00:00", "end": "2024-06-18T09:30:00"},
        {"title": "Design review", "start": "2024-06-18T14:00:00", "end": "2024-06-18T15:00:00",
         "attendees": ["priya@example.com"], "location": "Room 4B"},
        {"title": "Old retro", "start": "2024-06-14T10:00:00", "end": "2024-06-14T11:00:00"},
        {"title": "Dropped", "start": "2024-06-19T10:00:00", "end": "2024-06-19T11:00:00", "status": "cancelled"},
        {"title": "Running now", "start": "2024-06-17T08:30:00", "end": "2024-06-17T09:30:00"},
    ],
}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path, state=dict(create_services({"calendar": SEED})))




def events(ctx: ToolContext) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in snapshots(ctx.state)["calendar"]["events"]}


def fails(ctx: ToolContext, tool: str, message: str, **args: Any) -> None:
    before = events(ctx)
    with pytest.raises(ToolError, match=message):
        tool_spec(tool).bind(ctx).invoke(args)
    assert events(ctx) == before  # a refused call changes nothing


def test_list_events_by_date_range(ctx: ToolContext) -> None:
    call = caller(ctx)
    day = call("list_events", date_from="2024-06-18", date_to="2024-06-18")
    assert [e["id"] for e in day["events"]] == ["evt_1", "evt_2"]
    assert (day["timezone"], day["now"], day["count"]) == ("-04:00", "2024-06-17T09:00:00-04:00", 2)
    assert day["events"][1] == {"id": "evt_2", "title": "Design review", "start": "2024-06-18T14:00:00-04:00",
                                "end": "2024-06-18T15:00:00-04:00", "attendees": ["priya@example.com"],
                                "location": "Room 4B", "status": "active"}
    assert call("list_events", date_from="2024-06-19", date_to="2024-06-19")["events"] == []
    cancelled = call("list_events", date_from="2024-06-19", date_to="2024-06-19", include_cancelled=True)
    assert [e["status"] for e in cancelled["events"]] == ["cancelled"]
    # A date-time range in UTC is converted: 18:00-19:00Z is 14:00-15:00 local.
    utc = call("list_events", date_from="2024-06-18T18:00:00Z", date_to="2024-06-18T18:30:00Z")
    assert [e["id"] for e in utc["events"]] == ["evt_2"]


def test_create_event_gets_the_next_id_and_local_times(ctx: ToolContext) -> None:
    created = caller(ctx)("create_event", title=" Budget review ", start="2024-06-18T10:00", end="2024-06-18T11:00:00",
                          attendees=["Priya", "marco@example.com"], location="Zoom")
    assert created == {"status": "created", "event": {
        "id": "evt_6", "title": "Budget review", "start": "2024-06-18T10:00:00-04:00",
        "end": "2024-06-18T11:00:00-04:00", "attendees": ["Priya", "marco@example.com"], "location": "Zoom",
        "status": "active"}}
    record = events(ctx)["evt_6"]
    assert (record["date"], record["start_time"], record["end_time"], record["origin"], record["moved"]) == (
        "2024-06-18", "10:00", "11:00", "agent", False)
    assert record["attendees_text"] == "Priya, marco@example.com"


def test_an_offset_is_converted_to_the_calendar_time_zone(ctx: ToolContext) -> None:
    created = caller(ctx)("create_event", title="x", start="2024-06-18T15:00:00Z", end="2024-06-18T16:00:00+00:00")
    assert created["event"]["start"] == "2024-06-18T11:00:00-04:00"


def test_back_to_back_events_do_not_conflict(ctx: ToolContext) -> None:
    created = caller(ctx)("create_event", title="Prep", start="2024-06-18T13:00", end="2024-06-18T14:00")
    assert created["status"] == "created"


def test_conflicts_name_the_event(ctx: ToolContext) -> None:
    fails(ctx, "create_event", r"the time 2024-06-18 13:30-14:30 conflicts with evt_2 'Design review' "
          r"\(2024-06-18 14:00-15:00\)\. Choose a free time \(list_events", title="x",
          start="2024-06-18T13:30:00", end="2024-06-18T14:30:00")
    fails(ctx, "create_event", r"conflicts with evt_1 'Standup' .*; evt_2 'Design review'", title="x",
          start="2024-06-18T08:00", end="2024-06-18T16:00")


def test_a_cancelled_event_frees_its_slot(ctx: ToolContext) -> None:
    created = caller(ctx)("create_event", title="x", start="2024-06-19T10:00", end="2024-06-19T11:00")
    assert created["event"]["id"] == "evt_6"


@pytest.mark.parametrize(("args", "message"), [
    ({"start": "2024-06-18T12:00", "end": "2024-06-18T11:00"}, r"end 2024-06-18T11:00:00-04:00 must be after start"),
    ({"start": "2024-06-18T12:00", "end": "2024-06-18T12:00"}, r"must be after start"),
    ({"start": "2024-06-17T08:00", "end": "2024-06-17T08:15"},
     r"cannot schedule in the past: start 2024-06-17T08:00:00-04:00 is before the current time 2024-06-17T09:00"),
    ({"start": "tomorrow at 10", "end": "2024-06-18T11:00"},
     r"invalid start 'tomorrow at 10': expected an ISO 8601 date-time such as 2024-06-18T14:00:00-04:00"),
    ({"start": "2024-06-18", "end": "2024-06-18T11:00"}, r"a date alone is not enough"),
    ({"start": "2024-06-18T10:00", "end": "2024-13-18T11:00"}, r"invalid end '2024-13-18T11:00'"),
    ({"start": "2024-06-18T10:00", "end": "2024-06-18T11:00", "title": " "}, r"title must not be empty"),
    ({"start": "2024-06-18T10:00", "end": "2024-06-18T11:00", "attendees": ["bob@"]},
     r"invalid attendee email address 'bob@'"),
])
def test_create_event_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    fails(ctx, "create_event", message, **{"title": "Meeting", **args})


def test_move_event_keeps_the_length_and_records_the_move(ctx: ToolContext) -> None:
    call = caller(ctx)
    moved = call("move_event", event_id="evt_2", new_start="2024-06-20T09:00:00")
    assert (moved["status"], moved["event"]["start"], moved["event"]["end"]) == (
        "moved", "2024-06-20T09:00:00-04:00", "2024-06-20T10:00:00-04:00")
    record = events(ctx)["evt_2"]
    assert record["moved"] is True and record["original_start"] == "2024-06-18T14:00:00-04:00"
    # The old slot is free now, and an event may move within its own old slot.
    assert call("create_event", title="y", start="2024-06-18T14:00", end="2024-06-18T15:00")["status"] == "created"
    again = call("move_event", event_id="evt_2", new_start="2024-06-20T09:30", new_end="2024-06-20T11:00")
    assert again["event"]["end"] == "2024-06-20T11:00:00-04:00"


@pytest.mark.parametrize(("args", "message"), [
    ({"event_id": "evt_99", "new_start": "2024-06-20T09:00"}, r"no event with id 'evt_99'; ids look like 'evt_1'"),
    ({"event_id": "evt_4", "new_start": "2024-06-20T09:00"}, r"event evt_4 is cancelled; create a new event"),
    ({"event_id": "evt_3", "new_start": "2024-06-20T09:00"}, r"event evt_3 has already started"),
    ({"event_id": "evt_5", "new_start": "2024-06-20T09:00"}, r"event evt_5 has already started"),
    ({"event_id": "evt_2", "new_start": "2024-06-18T09:15"}, r"conflicts with evt_1 'Standup'"),
    ({"event_id": "evt_2", "new_start": "2024-06-16T09:15"}, r"cannot schedule in the past"),
    ({"event_id": "evt_2", "new_start": "2024-06-20T09:00", "new_end": "2024-06-20T08:00"}, r"must be after start"),
    ({"event_id": "evt_2", "new_start": "20/06/2024 09:00"}, r"invalid new_start '20/06/2024 09:00'"),
])
def test_move_event_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    fails(ctx, "move_event", message, **args)


def test_cancel_event(ctx: ToolContext) -> None:
    assert caller(ctx)("cancel_event", event_id="evt_1")["event"]["status"] == "cancelled"
    assert events(ctx)["evt_1"]["status"] == "cancelled"
    fails(ctx, "cancel_event", r"event evt_1 is already cancelled", event_id="evt_1")
    fails(ctx, "cancel_event", r"event evt_3 already took place", event_id="evt_3")
    fails(ctx, "cancel_event", r"no event with id 'standup'", event_id="standup")
    assert caller(ctx)("cancel_event", event_id="evt_5")["status"] == "cancelled"  # still running: allowed


@pytest.mark.parametrize(("args", "message"), [
    ({"date_from": "2024-06-19", "date_to": "2024-06-18"}, r"date_to '2024-06-18' must be after date_from"),
    ({"date_from": "June 18", "date_to": "2024-06-18"}, r"invalid date_from 'June 18': expected a date"),
    ({"date_from": "2024-01-01", "date_to": "2025-06-01"}, r"the range is too long"),
])
def test_list_events_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    fails(ctx, "list_events", message, **args)


def test_defaults_and_seeded_ids(tmp_path: Path) -> None:
    seed = {"events": [{"id": "evt_2", "title": "a", "start": "2024-06-18T09:00Z", "end": "2024-06-18T10:00Z"},
                       {"title": "b", "start": "2024-06-18T11:00", "end": "2024-06-18T12:00"}]}
    ctx = ToolContext(workspace=tmp_path, state=dict(create_services({"calendar": seed})))
    assert list(events(ctx)) == ["evt_2", "evt_1"]
    listing = caller(ctx)("list_events", date_from="2024-06-17", date_to="2024-06-18")
    assert listing["now"] == "2024-06-17T09:00:00+00:00"  # the default "now", in the default UTC offset
    assert caller(ctx)("create_event", title="c", start="2024-06-18T13:00", end="2024-06-18T14:00")[
        "event"]["id"] == "evt_3"
