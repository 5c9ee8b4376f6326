"""What a scenario run leaves behind: the trajectory, the grades and the outcome.

These models are written to disk (one ``ScenarioResult`` per JSONL line), so they are strict and
versioned; readers reject a file they do not understand instead of guessing.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
Outcome = Literal["completed", "step_limit", "endpoint_error", "error"]
ToolStatus = Literal["ok", "tool_error", "invalid_args", "unknown_tool", "malformed", "step_limit"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageRecord(_Record):
    """One message of the conversation as it was exchanged."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    invalid_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    status: str | None = None
    reasoning: str | None = None
    fault: dict[str, Any] | None = None


class ToolCallRecord(_Record):
    """One tool call: what was asked, what came back, how long it took."""

    turn: int
    step: int
    id: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    raw_args: str | None = None  # set when the arguments were not a valid JSON object
    status: ToolStatus
    result: str = ""
    latency_s: float = 0.0


class ModelCallRecord(_Record):
    """One model call: timing and token usage (None when the backend reports none)."""

    turn: int
    step: int
    latency_s: float
    ttft_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    agent: str | None = None  # within an architecture: which member made the call (None: the main agent)


class TurnRecord(_Record):
    """One user turn: the messages it added, its final answer and how it ended."""

    index: int
    user: str
    answer: str = ""
    outcome: Outcome
    steps: int
    wall_s: float
    messages: list[MessageRecord] = Field(default_factory=list)


class GradeRecord(_Record):
    """One grader's verdict with its reason (``turn`` is None for whole-scenario grades)."""

    grader: str
    turn: int | None = None
    passed: bool
    score: float = Field(ge=0, le=1)
    reason: str
    # Not part of the run's passed and score (an LLM judge's grade unless its rubric is required).
    informational: bool = False
    detail: dict[str, Any] | None = None  # grader-specific data, e.g. the judge's raw replies

    @property
    def label(self) -> str:
        """``grader`` or ``grader[turn N]`` (1-based, as people count turns)."""
        return self.grader if self.turn is None else f"{self.grader}[turn {self.turn + 1}]"


class ScenarioResult(_Record):
    """Everything about one run of one scenario by one model."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    model: str
    scenario_id: str
    category: str
    difficulty: str = "medium"
    tags: list[str] = Field(default_factory=list)
    repeat: int = 0
    outcome: Outcome
    error: str | None = None
    started_at: str
    wall_s: float
    turns: list[TurnRecord] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    model_calls: list[ModelCallRecord] = Field(default_factory=list)
    grades: list[GradeRecord] = Field(default_factory=list)
    faults: list[dict[str, Any]] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)  # architecture events: routes, fallbacks, delegations
    # GPU and server telemetry over the run (summary and samples); {"available": false, ...} without a GPU
    telemetry: dict[str, Any] | None = None
    passed: bool
    score: float = Field(ge=0, le=1)

    @property
    def key(self) -> tuple[str, str, int]:
        """(model, scenario, repeat): unique within a run."""
        return (self.model, self.scenario_id, self.repeat)

    @property
    def steps(self) -> int:
        """Model calls over all turns, including those an architecture made outside the
        transcript (a router's own call, failed fallback attempts, delegated workers)."""
        return len(self.model_calls) + sum(int(e.get("usage", {}).get("model_calls") or 0) for e in self.events)

    def tokens(self, kind: Literal["input", "output"]) -> int | None:
        """Total input or output tokens (events included); None when nothing reported usage."""
        values = [getattr(c, f"{kind}_tokens") for c in self.model_calls]
        values += [e.get("usage", {}).get(f"{kind}_tokens") for e in self.events]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    def failed_grades(self) -> list[GradeRecord]:
        """The grades that did not pass, informational ones (an optional judge's) left out."""
        return [g for g in self.grades if not g.passed and not g.informational]
