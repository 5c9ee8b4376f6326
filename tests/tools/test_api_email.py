"""The email service: recipients through contacts and groups, reading and replying, errors, snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from service_helpers import caller

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, create_services, snapshots, tool_spec

SEED: dict[str, Any] = {
    "me": "alex@example.com",
    "my_name": "Alex Morgan",
    "now": "2024-06-17T09:00:00+00:00",
    "contacts": [
        {"name": "Priya Shah", "email": "Priya.Shah@example.com"},
        {"name": "Marco Rossi", "email": "marco.rossi@example.com"},
        {"name": "Marco Polo", "email": "marco.polo@example.com"},
        {"name": "Lena Fischer", "email": "lena@example.com"},
    ],
    "groups": {"team": ["Priya Shah", "Marco Rossi", "ext@partner.org"]},
    "inbox": [
        {"from": "Priya Shah <priya.shah@example.com>", "subject": "Q3 budget", "body": "What is the figure?",
         "cc": ["lena@example.com"], "date": "2024-06-17T08:00:00Z"},
        {"from": "news@letters.io", "subject": "Weekly", "body": "Read all about it", "read": True,
         "date": "2024-06-16T08:00:00Z"},
    ],
}


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path, state=dict(create_services({"email": SEED})))




def outbox(ctx: ToolContext) -> list[dict[str, Any]]:
    return snapshots(ctx.state)["email"]["outbox"]


def test_send_to_a_group_expands_to_its_members(ctx: ToolContext) -> None:
    sent = caller(ctx)("send_email", to=["team"], subject="Team meeting", body="Tomorrow 10:00", cc=["Lena Fischer"])
    assert sent == {"status": "sent", "id": "msg_3", "subject": "Team meeting", "date": "2024-06-17T09:01:00+00:00",
                    "to": ["priya.shah@example.com", "marco.rossi@example.com", "ext@partner.org"],
                    "cc": ["lena@example.com"]}
    [record] = outbox(ctx)
    assert record["to_text"] == "priya.shah@example.com, marco.rossi@example.com, ext@partner.org"
    assert record["recipients_text"].endswith("lena@example.com")
    assert (record["from"], record["in_reply_to"], record["body"]) == ("alex@example.com", None, "Tomorrow 10:00")


@pytest.mark.parametrize(("to", "resolved"), [
    (["Priya Shah"], ["priya.shah@example.com"]),
    (["priya"], ["priya.shah@example.com"]),  # a unique first name
    (["Lena Fischer <LENA@example.com>"], ["lena@example.com"]),
    (["Priya Shah, lena@example.com; TEAM"], ["priya.shah@example.com", "lena@example.com",
                                              "marco.rossi@example.com", "ext@partner.org"]),
    (["someone.new@elsewhere.co.uk"], ["someone.new@elsewhere.co.uk"]),
])
def test_recipients_resolve_and_deduplicate(ctx: ToolContext, to: list[str], resolved: list[str]) -> None:
    assert caller(ctx)("send_email", to=to, subject="Hi", body="x")["to"] == resolved


def test_cc_drops_addresses_already_in_to(ctx: ToolContext) -> None:
    sent = caller(ctx)("send_email", to=["Priya Shah"], cc=["team"], subject="Hi", body="x")
    assert sent["cc"] == ["marco.rossi@example.com", "ext@partner.org"]


@pytest.mark.parametrize(("args", "message"), [
    ({"to": ["Prya"]}, r"unknown recipient 'Prya' in 'to': .*Did you mean: Priya Shah\?.*search_contacts"),
    ({"to": ["Bob"]}, r"unknown recipient 'Bob' in 'to': no contact or group has that name\. Use search_contacts"),
    ({"to": ["Marco"]}, r"recipient 'Marco' in 'to' is ambiguous: Marco Rossi <marco\.rossi@example\.com>; Marco Polo"),
    ({"to": ["bob@"]}, r"invalid email address 'bob@' in 'to'"),
    ({"to": ["a@b"]}, r"invalid email address 'a@b'"),
    ({"to": ["team"], "cc": ["x@@y.com"]}, r"invalid email address 'x@@y\.com' in 'cc'"),
    ({"to": [" , "]}, r"no recipients"),
    ({"to": ["team"], "subject": "  "}, r"subject must not be empty"),
])
def test_send_errors(ctx: ToolContext, args: dict[str, Any], message: str) -> None:
    full = {"subject": "Hi", "body": "x", **args}
    with pytest.raises(ToolError, match=message):
        tool_spec("send_email").bind(ctx).invoke(full)
    assert outbox(ctx) == []  # nothing was sent


def test_to_must_be_a_list(ctx: ToolContext) -> None:
    with pytest.raises(ValidationError):
        tool_spec("send_email").bind(ctx).invoke({"to": "team", "subject": "Hi", "body": "x"})


def test_list_and_read(ctx: ToolContext) -> None:
    call = caller(ctx)
    listing = call("list_emails")
    assert (listing["count"], listing["unread"]) == (2, 1)
    assert [m["id"] for m in listing["emails"]] == ["msg_1", "msg_2"]  # newest first
    newest = listing["emails"][0]
    assert (newest["from_name"], newest["snippet"]) == ("Priya Shah", "What is the figure?")
    assert [m["id"] for m in call("list_emails", unread_only=True)["emails"]] == ["msg_1"]
    message = call("read_email", email_id="msg_1")
    assert (message["body"], message["cc"], message["to"]) == ("What is the figure?", ["lena@example.com"],
                                                             ["alex@example.com"])
    assert call("list_emails", unread_only=True)["emails"] == []
    assert call("list_emails", folder="sent")["count"] == 0


def test_reply_threads_and_marks_the_original(ctx: ToolContext) -> None:
    call = caller(ctx)
    reply = call("reply_email", email_id="msg_1", body="It is $48,500.")
    assert reply["to"] == ["priya.shah@example.com"] and reply["cc"] == []
    assert (reply["subject"], reply["in_reply_to"]) == ("Re: Q3 budget", "msg_1")
    again = call("reply_email", email_id=reply["id"], body="Also: approved.", reply_all=True)
    assert again["subject"] == "Re: Q3 budget"  # no "Re: Re:"
    everyone = call("reply_email", email_id="msg_1", body="Looping in Lena", reply_all=True)
    assert everyone["cc"] == ["lena@example.com"]  # the owner is never copied on their own reply
    snap = snapshots(ctx.state)["email"]
    assert [m["in_reply_to"] for m in snap["outbox"]] == ["msg_1", reply["id"], "msg_1"]
    assert snap["inbox"][0]["replied"] is True and snap["inbox"][1]["replied"] is False


@pytest.mark.parametrize(("tool", "args", "message"), [
    ("read_email", {"email_id": "msg_99"}, r"no email with id 'msg_99'; ids look like 'msg_1'"),
    ("reply_email", {"email_id": "42", "body": "x"}, r"no email with id '42'"),
    ("reply_email", {"email_id": "msg_1", "body": " "}, r"reply body must not be empty"),
])
def test_read_and_reply_errors(ctx: ToolContext, tool: str, args: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolError, match=message):
        tool_spec(tool).bind(ctx).invoke(args)


def test_search_contacts(ctx: ToolContext) -> None:
    call = caller(ctx)
    found = call("search_contacts", query="marco")
    assert [c["name"] for c in found["contacts"]] == ["Marco Rossi", "Marco Polo"]
    assert found["contacts"][0]["groups"] == ["team"] and found["groups"] == []
    team = call("search_contacts", query="Team")
    assert team["groups"] == [{"name": "team", "members": ["priya.shah@example.com", "marco.rossi@example.com",
                                                           "ext@partner.org"]}]
    assert call("search_contacts", query="example.com")["contacts"][0]["email"] == "priya.shah@example.com"
    assert len(call("search_contacts", query="")["contacts"]) == 4
    assert call("search_contacts", query="zzz") == {"query": "zzz", "contacts": [], "groups": []}


def test_snapshot_collections(ctx: ToolContext) -> None:
    snap = snapshots(ctx.state)["email"]
    assert snap["contacts"][0] == {"name": "Priya Shah", "email": "priya.shah@example.com", "groups": ["team"],
                                   "groups_text": "team"}
    assert snap["groups"] == [{"name": "team", "members": ["priya.shah@example.com", "marco.rossi@example.com",
                                                           "ext@partner.org"],
                               "members_text": "priya.shah@example.com, marco.rossi@example.com, ext@partner.org"}]
    first = snap["inbox"][0]
    assert {k: first[k] for k in ("id", "from", "subject", "read", "replied", "to_text")} == {
        "id": "msg_1", "from": "priya.shah@example.com", "subject": "Q3 budget", "read": False, "replied": False,
        "to_text": "alex@example.com"}


def test_seeded_ids_are_kept_and_never_reused(tmp_path: Path) -> None:
    seed = {"inbox": [{"from": "a@example.com", "subject": "one"}, {"id": "msg_1", "from": "b@example.com"}]}
    ctx = ToolContext(workspace=tmp_path, state=dict(create_services({"email": seed})))
    ids = [m["id"] for m in snapshots(ctx.state)["email"]["inbox"]]
    assert ids == ["msg_2", "msg_1"]
    assert caller(ctx)("send_email", to=["c@example.com"], subject="x", body="y")["id"] == "msg_3"
