"""Argument matchers, trajectory modes and answer checks."""

from __future__ import annotations

import pytest

from agentbench.grading.matchers import Call, check_answer, match_argument, match_trajectory, numbers_in
from agentbench.scenario.schema import AnswerCheck, ArgMatcher, ExpectedCall


def m(spec: object) -> ArgMatcher:
    return ArgMatcher.model_validate(spec)


@pytest.mark.parametrize(("spec", "value", "ok"), [
    (5, 5, True), (5, 5.0, True), (5, "5", False), (True, 1, False), ({"exact": {"a": [1, 2]}}, {"a": [1, 2]}, True),
    ({"exact": {"a": [1, 2]}}, {"a": [2, 1]}, False),
    ({"normalized": "New York"}, "new-york!", True), ({"normalized": "New York"}, "York New", False),
    ({"number": 10.125, "tolerance": 0.01}, 10.13, True), ({"number": 10.125, "tolerance": 0.01}, "10.13", True),
    ({"number": 10.125, "tolerance": 0.001}, 10.13, False), ({"number": 3}, "three", False),
    ({"regex": r"^\d+\.\d{2}$"}, "67.50", True), ({"regex": r"^\d+\.\d{2}$"}, "67.5", False),
    ({"regex": "a"}, {"k": "a"}, True),
    ({"one_of": ["Paris", "paris, france"]}, "PARIS", True), ({"one_of": ["Paris"]}, "Lyon", False),
    ({"one_of": [1, 2]}, 2, True),
    ({"any": True}, None, True), ({"any": True}, "", True),
])
def test_argument_matchers(spec: object, value: object, ok: bool) -> None:
    assert match_argument(m(spec), value).passed is ok


def test_missing_argument_fails_even_for_any() -> None:
    verdict = match_argument(m({"any": True}))
    assert not verdict.passed and "is missing" in verdict.reason


def test_failed_match_explains() -> None:
    verdict = match_argument(m({"number": 10.125, "tolerance": 0.01}), 11)
    assert verdict.reason == "is 11, expected number 10.125 ± 0.01"


CALC = ExpectedCall(name="calculator", args={"expression": m({"regex": "67"})})
READ = ExpectedCall(name="read_file", args={"path": m("a.txt")})
calc, read, other = Call("calculator", {"expression": "67*0.15"}), Call("read_file", {"path": "a.txt"}), Call(
    "list_files", {})


@pytest.mark.parametrize(("mode", "actual", "ok"), [
    ("strict", [calc, read], True), ("strict", [read, calc], False), ("strict", [calc], False),
    ("strict", [calc, read, other], False),
    ("unordered", [read, calc], True), ("unordered", [calc], False), ("unordered", [calc, read, other], False),
    ("subset", [calc], True), ("subset", [], True), ("subset", [calc, other], False),
    ("superset", [other, read, calc], True), ("superset", [calc], False), ("superset", [calc, calc, read], True),
])
def test_trajectory_modes(mode: str, actual: list[Call], ok: bool) -> None:
    assert match_trajectory(mode, [CALC, READ], actual).passed is ok  # type: ignore[arg-type]


def test_unordered_uses_a_maximum_matching() -> None:
    loose = ExpectedCall(name="calculator", args={"expression": m({"any": True})})
    tight = ExpectedCall(name="calculator", args={"expression": m("2+2")})
    # A greedy pairing of `loose` with "2+2" would leave `tight` unmatched.
    actual = [Call("calculator", {"expression": "2+2"}), Call("calculator", {"expression": "3+3"})]
    assert match_trajectory("unordered", [loose, tight], actual).passed


def test_strict_mismatch_reason_names_the_call_and_argument() -> None:
    verdict = match_trajectory("strict", [CALC], [Call("calculator", {"expression": "5*3"})])
    assert verdict.reason == "strict: call 1: calculator: argument 'expression' is '5*3', expected regex '67'"


def test_superset_missing_reason() -> None:
    verdict = match_trajectory("superset", [CALC, READ], [calc])
    assert "missing read_file call (no call to 'read_file')" in verdict.reason


def a(spec: dict[str, object]) -> AnswerCheck:
    return AnswerCheck.model_validate(spec)


@pytest.mark.parametrize(("spec", "answer", "ok"), [
    ({"contains": "paris"}, "The capital is Paris.", True),
    ({"contains": "paris", "case_sensitive": True}, "Paris", False),
    ({"not_contains": "error"}, "All fine", True), ({"not_contains": "error"}, "An ERROR occurred", False),
    ({"regex": r"^\{.*\}$"}, '{"a": 1}', True), ({"regex": r"^\{.*\}$"}, 'Here: {"a": 1}', False),
    ({"number": 10.125, "tolerance": 0.006}, "The tip is $10.13.", True),
    ({"number": 1234.5}, "Total: $1,234.50", True), ({"number": 10.125, "tolerance": 0.001}, "$10.13", False),
    ({"number": -3}, "It dropped to -3 degrees", True), ({"number": 7}, "no numbers here", False),
    ({"one_of": ["yes", "y"]}, "Yes.", True), ({"one_of": ["yes"]}, "Yes, it is.", False),
])
def test_answer_checks(spec: dict[str, object], answer: str, ok: bool) -> None:
    assert check_answer(a(spec), answer).passed is ok


def test_numbers_in_text() -> None:
    assert numbers_in("$1,234.50 and 3e2 and -7") == [1234.5, 300.0, -7.0]


@pytest.mark.parametrize(("text", "found"), [
    ("error code E504", []), ("on 2024-05-14", [2024.0]), ("version v1.2", []), ("x_12", []),
    ("it costs 12.50.", [12.5]), ("(-3, 4)", [-3.0, 4.0]), ("15%", [15.0]),
])
def test_numbers_inside_words_dates_and_versions_do_not_count(text: str, found: list[float]) -> None:
    assert numbers_in(text) == found


def test_optional_argument_may_be_absent_but_must_match_when_given() -> None:
    matcher = m({"one_of": [".", "./"], "optional": True})
    assert match_argument(matcher).passed
    assert match_argument(matcher, "./").passed
    assert not match_argument(matcher, "/etc").passed
