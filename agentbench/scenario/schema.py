"""The scenario format: strict pydantic models for the YAML files users write by hand.

Unknown keys are errors everywhere (``extra="forbid"``). Argument matchers and answer checks are
single-key mappings (``{regex: "..."}``); a plain scalar or list where an argument matcher is
expected means ``{exact: value}``. To match a mapping exactly, write ``{exact: {...}}``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

CATEGORIES = (
    "function_calling",
    "multi_step_reasoning",
    "tool_integration",
    "conversation",
    "code_generation",
    "instruction_following",
    "error_recovery",
    "irrelevance",
)
Category = Literal[
    "function_calling",
    "multi_step_reasoning",
    "tool_integration",
    "conversation",
    "code_generation",
    "instruction_following",
    "error_recovery",
    "irrelevance",
]
TrajectoryMode = Literal["strict", "unordered", "subset", "superset"]
ARG_MATCHERS = ("exact", "normalized", "number", "regex", "one_of", "any")
ANSWER_CHECKS = ("contains", "not_contains", "regex", "number", "one_of")
_ID_PATTERN = r"^[a-z0-9][a-z0-9_\-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_key_of(value: Any, allowed: tuple[str, ...], what: str, options: set[str]) -> Any:
    """Check that a matcher mapping names exactly one known kind (plus its options)."""
    if not isinstance(value, dict):
        return value
    unknown = [k for k in value if k not in allowed and k not in options]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; use one of: {', '.join(allowed)}")
    kinds = [k for k in value if k in allowed]
    if len(kinds) != 1:
        raise ValueError(
            f"name exactly one {what} of {', '.join(allowed)} (got {', '.join(kinds) or 'none'})"
        )
    return value


def _check_regex(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


class ArgMatcher(_Strict):
    """How one argument of an expected tool call is compared with the model's value.

    ``exact``: equal after JSON normalisation (1 == 1.0). ``normalized``: equal ignoring case,
    whitespace and punctuation. ``number``: a number within ``tolerance`` (absolute) of this one.
    ``regex``: the value (as text) matches with ``re.search``. ``one_of``: equal (as ``normalized``)
    to one of these. ``any``: the argument is present, whatever its value. Add ``optional: true``
    to let the argument be left out (e.g. a parameter with a default); when given, it must match.
    """

    exact: Any = None
    normalized: str | None = None
    number: float | None = None
    tolerance: float = Field(default=1e-6, ge=0)
    regex: str | None = None
    one_of: list[Any] | None = None
    any: bool | None = None
    optional: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return {"exact": value}
        return _one_key_of(value, ARG_MATCHERS, "argument matcher", {"tolerance", "optional"})

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        return _check_regex(pattern)

    @model_validator(mode="after")
    def _options_fit(self) -> ArgMatcher:
        if "tolerance" in self.model_fields_set and self.number is None:
            raise ValueError("'tolerance' only goes with 'number'")
        if self.any is False:
            raise ValueError("'any: false' matches nothing; leave the argument out instead")
        return self

    @property
    def kind(self) -> str:
        """The matcher's name (``exact``, ``regex``, ...)."""
        return next(k for k in ARG_MATCHERS if k in self.model_fields_set)


class AnswerCheck(_Strict):
    """A check on a turn's final answer.

    ``contains`` / ``not_contains``: substring (case-insensitive unless ``case_sensitive``).
    ``regex``: ``re.search`` on the answer. ``number``: some number in the answer is within
    ``tolerance`` of this one (thousands separators and currency signs are understood).
    ``one_of``: the whole answer equals one of these, ignoring case, spaces and punctuation.
    """

    contains: str | None = None
    not_contains: str | None = None
    case_sensitive: bool = False
    regex: str | None = None
    number: float | None = None
    tolerance: float = Field(default=1e-6, ge=0)
    one_of: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("an answer check is a mapping such as {contains: 'text'}")
        return _one_key_of(value, ANSWER_CHECKS, "answer check", {"tolerance", "case_sensitive"})

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        return _check_regex(pattern)

    @property
    def kind(self) -> str:
        """The check's name (``contains``, ``number``, ...)."""
        return next(k for k in ANSWER_CHECKS if k in self.model_fields_set)


class ExpectedCall(_Strict):
    """A tool call the model is expected to make; unlisted arguments are not compared."""

    name: str
    args: dict[str, ArgMatcher] = Field(default_factory=dict)


class ToolCallExpectation(_Strict):
    """The tool calls expected in one turn and how the model's calls are compared with them.

    ``strict``: the same calls in the same order. ``unordered``: the same calls, any order.
    ``subset``: every call the model made is expected (it may make fewer). ``superset``: every
    expected call was made (it may make more).
    """

    mode: TrajectoryMode = "strict"
    calls: list[ExpectedCall] = Field(min_length=1)


COHERENCE_CHECKS = ("contains", "regex", "number")


class CoherenceCheck(_Strict):
    """One coherence check: a piece of text, a pattern or a number tied to the earlier turn that set it.

    ``from_turn`` (1-based, as people count) names the earlier turn that stated the fact, the
    preference or the statement; ``note`` says in words what is checked (shown in the grade's
    reason). ``contains`` (case-insensitive unless ``case_sensitive``), ``regex`` and ``number``
    (with ``tolerance``) behave as the answer checks of the same name.
    """

    from_turn: int = Field(ge=1)
    note: str = ""
    contains: str | None = None
    case_sensitive: bool = False
    regex: str | None = None
    number: float | None = None
    tolerance: float = Field(default=1e-6, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("a coherence check is a mapping such as {from_turn: 1, number: 2400}")
        return _one_key_of(value, COHERENCE_CHECKS, "coherence check",
                           {"from_turn", "note", "tolerance", "case_sensitive"})

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, pattern: str | None) -> str | None:
        return _check_regex(pattern)

    @model_validator(mode="after")
    def _options_fit(self) -> CoherenceCheck:
        if "tolerance" in self.model_fields_set and self.number is None:
            raise ValueError("'tolerance' only goes with 'number'")
        if "case_sensitive" in self.model_fields_set and self.contains is None:
            raise ValueError("'case_sensitive' only goes with 'contains'")
        return self

    @property
    def kind(self) -> str:
        """The check's name (``contains``, ``regex`` or ``number``)."""
        return next(k for k in COHERENCE_CHECKS if k in self.model_fields_set)

    def as_answer_check(self) -> AnswerCheck:
        """The same test as an answer check (the coherence grader runs the answer checker)."""
        data: dict[str, Any] = {self.kind: getattr(self, self.kind)}
        if self.kind == "number":
            data["tolerance"] = self.tolerance
        elif self.kind == "contains":
            data["case_sensitive"] = self.case_sensitive
        return AnswerCheck.model_validate(data)


class CoherenceExpectation(_Strict):
    """Checks that a turn's answer stays coherent with the conversation before it.

    ``facts``: facts set in earlier turns that the answer must use (each must be found).
    ``preferences``: the user's stated preferences (a unit, a format) the answer must keep (each
    must be found). ``contradictions``: statements that would contradict earlier turns (none may be
    found). Every check names the earlier turn it is tied to (``from_turn``).
    """

    facts: list[CoherenceCheck] = Field(default_factory=list)
    preferences: list[CoherenceCheck] = Field(default_factory=list)
    contradictions: list[CoherenceCheck] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> CoherenceExpectation:
        if not (self.facts or self.preferences or self.contradictions):
            raise ValueError("a coherence block needs at least one of facts, preferences, contradictions")
        return self

    def checks(self) -> list[tuple[str, int, CoherenceCheck]]:
        """Every check as (list name, index in that list, check)."""
        return [(name, i, c) for name in ("facts", "preferences", "contradictions")
                for i, c in enumerate(getattr(self, name))]


JUDGE_PASS_FAIL = "pass_fail"


class JudgeRubric(_Strict):
    """A rubric for the optional LLM judge (``agentbench run --judge KEY``), at scenario level (the
    whole conversation is judged) or in a turn's ``expect`` (that turn's answer, in its context).

    ``scale``: ``[low, high]`` integers (default ``[1, 5]``) or ``pass_fail``. ``pass_at``: the
    lowest passing score on a numeric scale (default: three quarters of the way up, rounded up,
    e.g. 4 on ``[1, 5]``). ``required``: the judge grade counts in the run's ``passed`` and score;
    by default it is informational. Without ``--judge`` the block is ignored ("not judged").
    """

    rubric: str = Field(min_length=1)
    scale: tuple[int, int] | Literal["pass_fail"] = (1, 5)
    pass_at: int | None = None
    required: bool = False

    @field_validator("scale", mode="before")
    @classmethod
    def _scale_form(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("pass/fail", "pass_fail", "pass-fail"):
            return JUDGE_PASS_FAIL
        if isinstance(value, str) or (isinstance(value, (list, tuple)) and len(value) != 2):
            raise ValueError("scale is [low, high] (two integers, e.g. [1, 5]) or pass_fail")
        return value

    @model_validator(mode="after")
    def _pass_at_fits(self) -> JudgeRubric:
        if self.scale == JUDGE_PASS_FAIL:
            if self.pass_at is not None:
                raise ValueError("'pass_at' only goes with a numeric scale such as [1, 5]")
            return self
        low, high = self.bounds
        if low >= high:
            raise ValueError(f"scale [{low}, {high}]: the low end must be below the high end")
        if self.pass_at is not None and not low <= self.pass_at <= high:
            raise ValueError(f"pass_at {self.pass_at} is outside the scale [{low}, {high}]")
        return self

    @property
    def bounds(self) -> tuple[int, int]:
        """The numeric ends of the scale (``(0, 1)`` for pass_fail: fail 0, pass 1)."""
        return (0, 1) if isinstance(self.scale, str) else self.scale

    @property
    def threshold(self) -> int:
        """The lowest passing score (1 on pass_fail)."""
        if self.pass_at is not None:
            return self.pass_at
        low, high = self.bounds
        return math.ceil(low + 0.75 * (high - low))


class Expectation(_Strict):
    """What a turn must show: its tool calls (or none at all), checks on its final answer, its
    coherence with the earlier turns, and (optionally) an LLM judge's rubric for its answer."""

    tool_calls: ToolCallExpectation | None = None
    no_tool_calls: bool = False
    answer: list[AnswerCheck] = Field(default_factory=list)
    coherence: CoherenceExpectation | None = None
    judge: JudgeRubric | None = None

    @model_validator(mode="after")
    def _exclusive(self) -> Expectation:
        if self.no_tool_calls and self.tool_calls is not None:
            raise ValueError("'no_tool_calls: true' and 'tool_calls' exclude each other")
        return self


class Turn(_Strict):
    """One user message and what the model's handling of it is expected to show."""

    user: str = Field(min_length=1)
    expect: Expectation = Field(default_factory=Expectation)


class GoldCall(_Strict):
    """A concrete tool call of the gold solution."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class GoldTurn(_Strict):
    """The gold handling of one turn: tool calls (one per model step, or all in one step when
    ``parallel``) and then the final answer."""

    tool_calls: list[GoldCall] = Field(default_factory=list)
    parallel: bool = False
    answer: str

    @property
    def model_steps(self) -> int:
        """Model calls this turn takes: one per tool-call step plus the final answer."""
        calls = len(self.tool_calls)
        return (1 if self.parallel and calls else calls) + 1


class FileCheck(_Strict):
    """A hidden check on a workspace file after the scenario (the model never sees it)."""

    path: str
    exists: bool = True
    equals: str | None = None
    contains: list[str] = Field(default_factory=list)
    not_contains: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    python_syntax: bool = False

    @field_validator("regex")
    @classmethod
    def _regexes(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            _check_regex(pattern)
        return patterns


class StateCheck(_Strict):
    """A hidden check on a simulated service's final state.

    Counts the records of ``service``'s ``collection`` (e.g. the email service's ``outbox``) whose
    fields satisfy every matcher in ``where`` (the argument matchers). Passes when exactly
    ``count`` records match, or at least one when ``count`` is omitted (``count: 0``: none may).
    """

    service: str
    collection: str
    where: dict[str, ArgMatcher] = Field(default_factory=dict)
    count: int | None = Field(default=None, ge=0)


class HiddenTests(_Strict):
    """Tests the model never sees, run on its final workspace (in the sandbox) after the run.

    ``files`` are written into a copy of the final workspace (replacing files of the same name)
    and pytest runs them; the check passes when every collected test passes.
    """

    files: dict[str, str] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0, le=600)


class FinalChecks(_Strict):
    """Checks on the final state the scenario leaves behind (state-based grading)."""

    files: list[FileCheck] = Field(default_factory=list)
    state: list[StateCheck] = Field(default_factory=list)
    tests: HiddenTests | None = None


class SearchSettings(_Strict):
    """Which web-search backend the scenario's ``web_search``/``fetch_page`` tools use.

    ``corpus``: ranked full-text search over the documentation corpus shipped with agentbench.
    ``replay``: recorded live results from the cassette ``cassette``. Live search is only ever an
    explicit opt-in of the user (``--search live``), never a scenario's choice.
    """

    backend: Literal["corpus", "replay"] = "corpus"
    cassette: str | None = None


class Scenario(_Strict):
    """One scripted scenario: the task, the tools it may use, what is expected, the gold solution."""

    id: str = Field(pattern=_ID_PATTERN, description="unique id, e.g. code_debugging")
    title: str = Field(min_length=1)
    category: Category
    description: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    difficulty: Literal["easy", "medium", "hard"] = "medium"
    tools: list[str] = Field(default_factory=list)
    workspace: dict[str, str] = Field(
        default_factory=dict, description="files seeded into the workspace: relative path -> text"
    )
    state: dict[str, Any] = Field(
        default_factory=dict, description="initial state of simulated services: service name -> seed"
    )
    search: SearchSettings = Field(default_factory=SearchSettings)
    system: str | None = None
    max_steps: int = Field(default=10, ge=1, le=200, description="model calls allowed per turn")
    turns: list[Turn] = Field(min_length=1)
    solution: list[GoldTurn] = Field(min_length=1)
    checks: FinalChecks = Field(default_factory=FinalChecks)
    judge: JudgeRubric | None = Field(default=None, description="LLM-judge rubric for the whole conversation")

    _source: str = PrivateAttr(default="<memory>")

    @property
    def source(self) -> str:
        """The file this scenario was loaded from (``<memory>`` when built in code)."""
        return self._source

    def with_source(self, source: str) -> Scenario:
        """Record where this scenario came from (for error messages and ``scenarios show``)."""
        self._source = source
        return self
