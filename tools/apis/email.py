"""The simulated ``email`` service: a mailbox with an inbox, sent mail and an address book.

Recipients may be addresses (``a@b.com``, ``Name <a@b.com>``), contact names (full, or a first
name that is unique), or group names (``team`` expands to its members); anything else is an error
naming close matches, as a mail client would refuse it. Message ids are deterministic (``msg_1``
... in seed order, then sent mail continues the count) and the clock only moves one minute per
message sent, from the seeded ``now``.

Snapshot: ``inbox``, ``outbox`` (sent mail, recipients as lists and as comma-joined ``*_text``
for regex checks), ``contacts`` and ``groups``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from email.utils import parseaddr
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agentbench.errors import ToolError

from ..registry import ToolContext, register_tool
from ..services import ServiceSpec, register_service
from ._common import DEFAULT_NOW, SeedModel, close_matches, get_service, is_email, iso, joined, localize, norm

Folder = Literal["inbox", "sent"]


def _address(text: str) -> tuple[str, str]:
    """(display name, lower-case address) from ``a@b.com`` or ``Name <a@b.com>``."""
    name, addr = parseaddr(text) if "<" in text else ("", text.strip())
    return name.strip(), addr.strip().lower()


class ContactSeed(SeedModel):
    """An address-book entry."""

    name: str = Field(min_length=1)
    email: str

    @field_validator("email")
    @classmethod
    def _valid(cls, value: str) -> str:
        if not is_email(value.strip()):
            raise ValueError(f"invalid email address {value!r}")
        return value.strip().lower()


class MessageSeed(SeedModel):
    """A message already in the inbox (``from`` may be ``Name <address>``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=False)

    id: str | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(default_factory=list, description="default: the mailbox owner")
    cc: list[str] = Field(default_factory=list)
    subject: str = ""
    body: str = ""
    date: datetime | None = None
    read: bool = False


class EmailSeed(SeedModel):
    """Seed of the email service: the owner, the clock, contacts, groups and the inbox."""

    me: str = "alex.morgan@example.com"
    my_name: str = "Alex Morgan"
    now: datetime = DEFAULT_NOW
    contacts: list[ContactSeed] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict, description="group -> contact names or addresses")
    inbox: list[MessageSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> EmailSeed:
        if not is_email(self.me):
            raise ValueError(f"me: invalid email address {self.me!r}")
        names = {norm(c.name) for c in self.contacts}
        for group, members in self.groups.items():
            for member in members:
                if not is_email(member) and norm(member) not in names:
                    raise ValueError(f"group {group!r}: member {member!r} is neither an address nor a contact name")
        ids = [m.id for m in self.inbox if m.id]
        if len(ids) != len(set(ids)):
            raise ValueError("inbox message ids must be unique")
        return self


class EmailService:
    """One run's mailbox."""

    def __init__(self, seed: EmailSeed) -> None:
        self.me, self.my_name = seed.me.lower(), seed.my_name
        self.now = localize(seed.now, timezone.utc)
        self._sent_count = 0
        self.contacts = [{"name": c.name, "email": c.email} for c in seed.contacts]
        self._by_name = {norm(c["name"]): c for c in self.contacts}
        self.groups = {name: [self._by_name[norm(m)]["email"] if norm(m) in self._by_name else m.lower()
                              for m in members] for name, members in seed.groups.items()}
        self.messages: dict[str, dict[str, Any]] = {}
        self._next_id = 1
        self._reserved = {m.id for m in seed.inbox if m.id}  # seeded ids are never handed out again
        for i, m in enumerate(seed.inbox):
            name, addr = _address(m.sender)
            known = next((c["name"] for c in self.contacts if c["email"] == addr), "")
            date = localize(m.date, timezone.utc) if m.date else self.now - timedelta(hours=len(seed.inbox) - i)
            self._store({"id": m.id or self._new_id(), "folder": "inbox", "from": addr,
                         "from_name": name or known, "to": [_address(t)[1] for t in m.to] or [self.me],
                         "cc": [_address(t)[1] for t in m.cc], "subject": m.subject, "body": m.body,
                         "date": iso(date), "read": m.read, "replied": False, "in_reply_to": None})

    def _new_id(self) -> str:
        while f"msg_{self._next_id}" in self.messages or f"msg_{self._next_id}" in self._reserved:
            self._next_id += 1
        self._next_id += 1
        return f"msg_{self._next_id - 1}"

    def _store(self, message: dict[str, Any]) -> dict[str, Any]:
        self.messages[message["id"]] = message
        return message

    # -- recipients ----------------------------------------------------------------------------

    def resolve(self, entries: list[str], field: str) -> list[str]:
        """Addresses for recipient entries (addresses, contact names, group names), deduplicated."""
        found: list[str] = []
        for entry in entries:
            for part in (p.strip() for p in re.split(r"[,;]", entry)):
                if part:
                    found += self._resolve_one(part, field)
        return list(dict.fromkeys(found))

    def _resolve_one(self, text: str, field: str) -> list[str]:
        if "@" in text:
            _, addr = _address(text)
            if not is_email(addr):
                raise ToolError(f"invalid email address {text!r} in {field!r}")
            return [addr]
        key = norm(text)
        group = next((g for g in self.groups if norm(g) == key), None)
        if group is not None:
            return list(self.groups[group])
        if key in self._by_name:
            return [self._by_name[key]["email"]]
        partial = [c for c in self.contacts if norm(c["name"]).split(" ")[0] == key
                   or norm(c["name"]).startswith(key + " ")]
        if len(partial) == 1:
            return [partial[0]["email"]]
        if partial:
            listing = "; ".join(f"{c['name']} <{c['email']}>" for c in partial)
            raise ToolError(f"recipient {text!r} in {field!r} is ambiguous: {listing}. Use the full name or address.")
        # First names count as labels too, so "Prya" suggests "Priya Shah".
        labels = {c["name"]: c["name"] for c in self.contacts}
        for c in self.contacts:
            labels.setdefault(c["name"].split(" ")[0], c["name"])
        labels.update({g: g for g in self.groups})
        close = list(dict.fromkeys(labels[m] for m in close_matches(text, labels)))
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ToolError(f"unknown recipient {text!r} in {field!r}: no contact or group has that name.{hint} "
                        "Use search_contacts to find addresses, or give an email address.")

    # -- mail ----------------------------------------------------------------------------------

    def get(self, email_id: str) -> dict[str, Any]:
        """A message by id; ``ToolError`` naming the id format otherwise."""
        message = self.messages.get(email_id.strip())
        if message is None:
            raise ToolError(f"no email with id {email_id!r}; ids look like 'msg_1' (use list_emails to see them)")
        return message

    def send(self, to: list[str], cc: list[str], subject: str, body: str,
             in_reply_to: str | None = None) -> dict[str, Any]:
        """Send a message; returns the stored sent message."""
        rcpt_to = self.resolve(to, "to")
        rcpt_cc = [a for a in self.resolve(cc, "cc") if a not in rcpt_to]
        if not rcpt_to:
            raise ToolError("no recipients: give at least one address, contact name or group in 'to'")
        if not subject.strip():
            raise ToolError("subject must not be empty")
        self._sent_count += 1
        date = self.now + timedelta(minutes=self._sent_count)
        return self._store({"id": self._new_id(), "folder": "sent", "from": self.me, "from_name": self.my_name,
                            "to": rcpt_to, "cc": rcpt_cc, "subject": subject.strip(), "body": body,
                            "date": iso(date), "read": True, "replied": False, "in_reply_to": in_reply_to})

    def reply(self, email_id: str, body: str, reply_all: bool) -> dict[str, Any]:
        """Reply to a message (its sender; with ``reply_all`` every other recipient too)."""
        original = self.get(email_id)
        if not body.strip():
            raise ToolError("reply body must not be empty")
        if original["folder"] == "sent":
            to, others = list(original["to"]), list(original["cc"]) if reply_all else []
        else:
            to = [original["from"]]
            others = [*original["to"], *original["cc"]] if reply_all else []
        cc = [a for a in others if a != self.me and a not in to]
        subject = original["subject"]
        if not re.match(r"(?i)^re:", subject):
            subject = f"Re: {subject}" if subject else "Re:"
        sent = self.send(to, cc, subject, body, in_reply_to=original["id"])
        original["replied"] = True
        return sent

    def listing(self, folder: Folder, unread_only: bool) -> dict[str, Any]:
        """Summaries of a folder's messages, newest first."""
        rows = [m for m in self.messages.values() if m["folder"] == folder and not (unread_only and m["read"])]
        rows.sort(key=lambda m: (m["date"], m["id"]), reverse=True)
        unread = sum(1 for m in self.messages.values() if m["folder"] == folder and not m["read"])
        return {"folder": folder, "count": len(rows), "unread": unread, "emails": [_summary(m) for m in rows]}

    def search_contacts(self, query: str) -> dict[str, Any]:
        """Contacts and groups whose name or address contains ``query`` (all when it is empty)."""
        key = norm(query)
        contacts = [{**c, "groups": self._groups_of(c["email"])} for c in self.contacts
                    if key in norm(c["name"]) or query.strip().lower() in c["email"]]
        groups = [{"name": g, "members": list(m)} for g, m in self.groups.items() if key in norm(g)]
        return {"query": query, "contacts": contacts, "groups": groups}

    def _groups_of(self, address: str) -> list[str]:
        return [g for g, members in self.groups.items() if address in members]

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """``inbox``, ``outbox``, ``contacts`` and ``groups`` as JSON records."""
        def record(m: dict[str, Any]) -> dict[str, Any]:
            return {**{k: v for k, v in m.items() if k != "folder"}, "to": list(m["to"]), "cc": list(m["cc"]),
                    "to_text": joined(m["to"]), "cc_text": joined(m["cc"]),
                    "recipients_text": joined([*m["to"], *m["cc"]])}

        return {
            "inbox": [record(m) for m in self.messages.values() if m["folder"] == "inbox"],
            "outbox": [record(m) for m in self.messages.values() if m["folder"] == "sent"],
            "contacts": [{**c, "groups": self._groups_of(c["email"]),
                          "groups_text": joined(self._groups_of(c["email"]))} for c in self.contacts],
            "groups": [{"name": g, "members": list(m), "members_text": joined(m)} for g, m in self.groups.items()],
        }


def _summary(m: dict[str, Any]) -> dict[str, Any]:
    snippet = " ".join(m["body"].split())
    return {"id": m["id"], "from": m["from"], "from_name": m["from_name"], "to": list(m["to"]),
            "subject": m["subject"], "date": m["date"], "read": m["read"],
            "snippet": snippet if len(snippet) <= 80 else snippet[:77] + "..."}


register_service(ServiceSpec("email", EmailSeed, EmailService,
                             "a mailbox: inbox, sent mail, contacts and groups"))


class ListEmailsArgs(BaseModel):
    folder: Folder = Field(default="inbox", description="inbox or sent")
    unread_only: bool = Field(default=False, description="only unread messages")


class ReadEmailArgs(BaseModel):
    email_id: str = Field(description="the message id from list_emails, e.g. 'msg_1'")


class SendEmailArgs(BaseModel):
    to: list[str] = Field(description="recipients: email addresses, contact names or group names (e.g. 'team')")
    subject: str = Field(description="subject line")
    body: str = Field(description="message text")
    cc: list[str] = Field(default_factory=list, description="copy recipients (same forms as 'to')")


class ReplyEmailArgs(BaseModel):
    email_id: str = Field(description="id of the message to reply to")
    body: str = Field(description="reply text")
    reply_all: bool = Field(default=False, description="also reply to every other recipient")


class SearchContactsArgs(BaseModel):
    query: str = Field(description="part of a name, address or group name; empty lists everything")


def _mailbox(ctx: ToolContext) -> EmailService:
    return get_service(ctx, "email", EmailService)


@register_tool("list_emails", ListEmailsArgs,
               "List messages in the inbox or sent folder, newest first: id, sender, subject, date, read flag "
               "and a snippet. Use read_email for the full text.",
               group="email", blocking=False, service="email")
def list_emails(ctx: ToolContext, args: ListEmailsArgs) -> dict[str, Any]:
    return _mailbox(ctx).listing(args.folder, args.unread_only)


@register_tool("read_email", ReadEmailArgs,
               "Read one message in full (headers and body) by its id; marks it as read.",
               group="email", blocking=False, service="email")
def read_email(ctx: ToolContext, args: ReadEmailArgs) -> dict[str, Any]:
    message = _mailbox(ctx).get(args.email_id)
    message["read"] = True
    return {k: v for k, v in message.items() if k != "replied"}


@register_tool("send_email", SendEmailArgs,
               "Send an email. Recipients may be addresses, contact names or group names (a group is sent to "
               "all its members). Returns the sent message's id and resolved recipients.",
               group="email", blocking=False, service="email")
def send_email(ctx: ToolContext, args: SendEmailArgs) -> dict[str, Any]:
    sent = _mailbox(ctx).send(args.to, args.cc, args.subject, args.body)
    return {"status": "sent", **{k: sent[k] for k in ("id", "to", "cc", "subject", "date")}}


@register_tool("reply_email", ReplyEmailArgs,
               "Reply to a message by id (to its sender, or everyone with reply_all); the subject gets 'Re:'.",
               group="email", blocking=False, service="email")
def reply_email(ctx: ToolContext, args: ReplyEmailArgs) -> dict[str, Any]:
    sent = _mailbox(ctx).reply(args.email_id, args.body, args.reply_all)
    return {"status": "sent", **{k: sent[k] for k in ("id", "to", "cc", "subject", "date", "in_reply_to")}}


@register_tool("search_contacts", SearchContactsArgs,
               "Search the address book: contacts (name, address, groups) and groups (name, member addresses) "
               "whose name or address contains the query.",
               group="email", blocking=False, service="email")
def search_contacts(ctx: ToolContext, args: SearchContactsArgs) -> dict[str, Any]:
    return _mailbox(ctx).search_contacts(args.query)
