"""Helpers shared by the simulated services: finding a run's instance, names, dates, addresses.

Nothing here holds state: every service instance keeps its own (the runner builds fresh ones per
scenario run from the seed), so two runs never see each other's changes.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from agentbench.errors import ToolError

from ..registry import ToolContext
from ..services import service_spec

S = TypeVar("S")

#: The default "today" of every service, so that services seeded without dates agree on it.
DEFAULT_NOW = datetime(2024, 6, 17, 9, 0, tzinfo=timezone.utc)  # a Monday, 09:00 UTC
DEFAULT_TODAY = DEFAULT_NOW.date()

_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


class SeedModel(BaseModel):
    """Base of every seed model: unknown keys are errors (a misspelt seed key must not pass)."""

    model_config = ConfigDict(extra="forbid")


def get_service(ctx: ToolContext, name: str, cls: type[S]) -> S:
    """The run's instance of service ``name``.

    The runner creates every service a scenario's tools act on; a library user who built a bare
    ``ToolContext`` gets a default instance, stored in ``ctx.state`` so that it keeps its state
    across calls and shows up in snapshots.
    """
    svc = ctx.state.get(name)
    if svc is None:
        spec = service_spec(name)
        svc = ctx.state[name] = spec.create(spec.seed_model())
    if not isinstance(svc, cls):
        raise TypeError(f"ctx.state[{name!r}] is a {type(svc).__name__}, not a {cls.__name__}")
    return svc


def norm(text: str) -> str:
    """Lower case, punctuation dropped, single spaces: how names are compared."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", text.lower()).split())


def close_matches(query: str, options: Iterable[str], n: int = 3) -> list[str]:
    """The options closest to ``query`` (compared normalised), best first."""
    by_norm: dict[str, str] = {}
    for option in options:
        by_norm.setdefault(norm(option), option)
    found = difflib.get_close_matches(norm(query), list(by_norm), n=n, cutoff=0.6)
    return [by_norm[f] for f in found]


def did_you_mean(query: str, options: Iterable[str]) -> str:
    """`` Did you mean: A, B?`` or an empty string."""
    close = close_matches(query, options)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def is_email(text: str) -> bool:
    """Whether ``text`` is a plain e-mail address (local@domain.tld)."""
    return bool(_EMAIL.match(text)) and ".." not in text


def parse_offset(text: str) -> timezone:
    """A fixed UTC offset from ``+02:00``, ``-0500``, ``Z`` or ``UTC`` (ValueError otherwise).

    Services use fixed offsets, not named zones, so that no run depends on the tz database or on
    daylight-saving rules.
    """
    if text.strip().upper() in ("Z", "UTC", "+00:00", "00:00"):
        return timezone.utc
    match = _OFFSET.match(text.strip())
    if not match:
        raise ValueError(f"invalid UTC offset {text!r}; write it like +02:00 or -05:00")
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta > timedelta(hours=14):
        raise ValueError(f"UTC offset {text!r} is out of range (at most 14 hours)")
    return timezone(-delta if sign == "-" else delta)


def localize(value: datetime, tz: timezone) -> datetime:
    """``value`` in ``tz``: a naive value is read as local time there, an aware one converted."""
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def parse_datetime(text: str, tz: timezone, what: str) -> datetime:
    """An ISO 8601 date-time in ``tz``; a ``ToolError`` naming ``what`` otherwise."""
    raw = text.strip()
    value = _from_iso(raw)
    if value is None:
        example = datetime(2024, 6, 18, 14, 0, tzinfo=tz).isoformat()
        hint = " (a date alone is not enough: give the time too)" if _is_date(raw) else ""
        raise ToolError(f"invalid {what} {text!r}: expected an ISO 8601 date-time such as {example}{hint}")
    return _localized(value, tz, what, text)


def _from_iso(raw: str) -> datetime | None:
    """An ISO 8601 date-time (with a time part), or ``None``."""
    if "T" not in raw.upper() and " " not in raw:
        return None
    try:
        # Python 3.10's fromisoformat does not read a trailing Z.
        return datetime.fromisoformat(re.sub(r"[zZ]$", "+00:00", raw))
    except ValueError:
        return None


def _localized(value: datetime, tz: timezone, what: str, text: str) -> datetime:
    """:func:`localize`, with a ``ToolError`` for a time that leaves the representable range."""
    try:
        return localize(value, tz)
    except (ValueError, OverflowError):  # e.g. 0001-01-01T00:00:00+05:00 lies before year 1 in UTC
        raise out_of_range(what, text) from None


def out_of_range(what: str, text: str) -> ToolError:
    """The error for a date or date-time that cannot be represented (or shifted) in the service."""
    return ToolError(f"{what} {text!r} is out of range: use a date between the years 1 and 9999, "
                     "not at their very ends")


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def parse_date_or_datetime(text: str, tz: timezone, what: str, *, end_of_day: bool) -> datetime:
    """A date (``2024-06-18``: its start, or its end when ``end_of_day``) or a date-time."""
    raw = text.strip()
    if _is_date(raw):
        day = date.fromisoformat(raw)
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        try:
            return start + timedelta(days=1) if end_of_day else start
        except OverflowError:  # the end of 9999-12-31
            raise out_of_range(what, text) from None
    value = _from_iso(raw)
    if value is None:
        raise ToolError(f"invalid {what} {text!r}: expected a date (2024-06-18) or an ISO 8601 "
                        f"date-time (2024-06-18T14:00:00)")
    return _localized(value, tz, what, text)


def iso(value: datetime) -> str:
    """ISO 8601 with seconds and offset, e.g. ``2024-06-18T14:00:00-04:00``."""
    return value.isoformat(timespec="seconds")


def joined(values: Iterable[Any]) -> str:
    """A list as comma-separated text (for regex checks in ``checks.state``)."""
    return ", ".join(str(v) for v in values)
