"""Comparing what a model did with what a scenario expects.

Used twice with the same code: by the graders on a real trajectory, and by scenario validation
on the gold solution (a solution that fails its own expectations is a broken scenario).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from agentbench.scenario.schema import AnswerCheck, ArgMatcher, ExpectedCall, TrajectoryMode

_MISSING = object()


@dataclass(frozen=True)
class Call:
    """A tool call as made: its name and parsed arguments."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.args.items())
        return f"{self.name}({args})"


@dataclass(frozen=True)
class Verdict:
    """The result of one comparison, with the reason a person can act on."""

    passed: bool
    reason: str


def normalize_text(value: Any) -> str:
    """Lower-case text with whitespace, punctuation and underscores removed."""
    return re.sub(r"[\W_]+", "", str(value).lower())


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but True != 1 and "1" != 1; containers compared deeply."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return bool(type(a) is type(b) and a == b)


def as_number(value: Any) -> float | None:
    """A number from a number or numeric text ("1,250.5", "$3"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(",", "").lstrip("$€£")
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_matcher(matcher: ArgMatcher) -> str:
    """The matcher as a person reads it, e.g. ``number 10.125 ± 0.01``."""
    kind = matcher.kind
    if kind == "number":
        return f"number {matcher.number:g} ± {matcher.tolerance:g}"
    if kind == "any":
        return "any value"
    return f"{kind} {_short(getattr(matcher, kind))}"


def match_argument(matcher: ArgMatcher, value: Any = _MISSING) -> Verdict:
    """Does an argument value (or its absence) satisfy ``matcher``?"""
    if value is _MISSING:
        if matcher.optional:
            return Verdict(True, "is absent (optional)")
        return Verdict(False, f"is missing, expected {describe_matcher(matcher)}")
    kind = matcher.kind
    if kind == "any":
        ok = True
    elif kind == "exact":
        ok = same_value(value, matcher.exact)
    elif kind == "normalized":
        ok = normalize_text(value) == normalize_text(matcher.normalized)
    elif kind == "number":
        number = as_number(value)
        ok = number is not None and abs(number - (matcher.number or 0.0)) <= matcher.tolerance
    elif kind == "regex":
        ok = re.search(matcher.regex or "", _as_text(value)) is not None
    else:
        ok = any(same_value(value, o) or normalize_text(value) == normalize_text(o)
                 for o in matcher.one_of or [])
    if ok:
        return Verdict(True, "matches")
    return Verdict(False, f"is {_short(value)}, expected {describe_matcher(matcher)}")


def match_call(expected: ExpectedCall, actual: Call) -> Verdict:
    """Does one actual call satisfy one expected call (same tool, every listed argument)?"""
    if actual.name != expected.name:
        return Verdict(False, f"called {actual.name!r}, expected {expected.name!r}")
    for arg, matcher in expected.args.items():
        verdict = match_argument(matcher, actual.args.get(arg, _MISSING))
        if not verdict.passed:
            return Verdict(False, f"{actual.name}: argument {arg!r} {verdict.reason}")
    return Verdict(True, "matches")


def max_matching(ok: list[list[bool]]) -> dict[int, int]:
    """Maximum bipartite matching (Kuhn): expected index -> actual index."""
    owner: dict[int, int] = {}

    def augment(e: int, seen: set[int]) -> bool:
        for a, fits in enumerate(ok[e]):
            if fits and a not in seen:
                seen.add(a)
                if a not in owner or augment(owner[a], seen):
                    owner[a] = e
                    return True
        return False

    for e in range(len(ok)):
        augment(e, set())
    return {e: a for a, e in owner.items()}


def _closest_miss(expected: ExpectedCall, actual: Sequence[Call]) -> str:
    """Why no actual call satisfied ``expected``: the reason from the most similar call."""
    same_tool = [c for c in actual if c.name == expected.name]
    if not same_tool:
        return f"no call to {expected.name!r}"
    return match_call(expected, same_tool[0]).reason


def match_trajectory(
    mode: TrajectoryMode, expected: Sequence[ExpectedCall], actual: Sequence[Call]
) -> Verdict:
    """Compare a turn's tool calls with its expectation under ``mode`` (see the schema)."""
    if mode == "strict":
        return _match_strict(expected, actual)
    ok = [[match_call(e, a).passed for a in actual] for e in expected]
    matched = max_matching(ok)
    missing = [e for i, e in enumerate(expected) if i not in matched]
    extra = [a for j, a in enumerate(actual) if j not in matched.values()]
    problems: list[str] = []
    if mode in ("unordered", "superset"):
        problems += [f"missing {e.name} call ({_closest_miss(e, actual)})" for e in missing]
    if mode in ("unordered", "subset"):
        problems += [f"unexpected call {a}" for a in extra]
    if problems:
        return Verdict(False, f"{mode}: " + "; ".join(problems))
    return Verdict(True, f"{mode}: {len(matched)} of {len(expected)} expected calls matched")


def _match_strict(expected: Sequence[ExpectedCall], actual: Sequence[Call]) -> Verdict:
    for i, (e, a) in enumerate(zip(expected, actual)):
        verdict = match_call(e, a)
        if not verdict.passed:
            return Verdict(False, f"strict: call {i + 1}: {verdict.reason}")
    if len(actual) != len(expected):
        names = ", ".join(c.name for c in actual) or "none"
        return Verdict(
            False, f"strict: {len(actual)} calls ({names}), expected {len(expected)}"
        )
    return Verdict(True, f"strict: all {len(expected)} calls matched in order")


# A number standing on its own: not part of a word ("E504"), a version ("v1.2") or a date's
# later fields ("2024-05-14" holds 2024 only).
_NUMBER = re.compile(r"(?<![\w.\-])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` ("$1,234.50" -> 1234.5)."""
    return [float(m.replace(",", "")) for m in _NUMBER.findall(text)]


def check_answer(check: AnswerCheck, answer: str) -> Verdict:
    """Does a final answer pass one answer check?"""
    kind = check.kind
    if kind in ("contains", "not_contains"):
        needle = str(getattr(check, kind))
        hay, pin = (answer, needle) if check.case_sensitive else (answer.lower(), needle.lower())
        found = pin in hay
        ok = found if kind == "contains" else not found
        return Verdict(ok, f"{'contains' if found else 'does not contain'} {needle!r}")
    if kind == "regex":
        ok = re.search(check.regex or "", answer) is not None
        return Verdict(ok, f"{'matches' if ok else 'does not match'} /{check.regex}/")
    if kind == "number":
        target = check.number or 0.0
        found_numbers = numbers_in(answer)
        ok = any(abs(n - target) <= check.tolerance for n in found_numbers)
        seen = ", ".join(f"{n:g}" for n in found_numbers[:6]) or "no numbers"
        verdict = "has" if ok else f"lacks (saw {seen})"
        return Verdict(ok, f"{verdict} {target:g} ± {check.tolerance:g}")
    options = check.one_of or []
    ok = normalize_text(answer) in {normalize_text(o) for o in options}
    return Verdict(ok, f"{'is' if ok else 'is not'} one of {options}")
