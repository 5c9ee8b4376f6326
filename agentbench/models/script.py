"""A scenario's gold solution as a script of model replies, position by position.

The ``reference`` models and the reference responder of the OpenAI test server replay the same
script, so the in-process and HTTP paths emit the same calls. A reply is chosen from the
conversation itself (user turns so far, model replies since the last user turn), never from a
counter, so replays are stateless and concurrency-safe.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentbench.scenario.schema import Scenario


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call to emit; ``raw_args`` (text that is not valid JSON) makes it malformed."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    raw_args: str | None = None

    @property
    def arguments_text(self) -> str:
        """The arguments as sent on the wire."""
        return self.raw_args if self.raw_args is not None else json.dumps(self.args)


@dataclass(frozen=True)
class ScriptStep:
    """One model reply: tool calls, or (when ``calls`` is empty) the final answer."""

    calls: tuple[ScriptedCall, ...] = ()
    answer: str = ""
    fault: dict[str, Any] | None = None  # the injected fault this reply carries, if any


@dataclass(frozen=True)
class ScriptTurn:
    """The replies of one user turn; the last step is the final answer."""

    steps: tuple[ScriptStep, ...]


def call_steps(calls: list[ScriptedCall], parallel: bool) -> list[ScriptStep]:
    """One reply per call, or (``parallel``) one reply carrying every call."""
    groups = [tuple(calls)] if parallel and calls else [(c,) for c in calls]
    return [ScriptStep(calls=g) for g in groups]


def gold_script(scenario: Scenario) -> list[ScriptTurn]:
    """The gold solution of ``scenario`` as replies."""
    turns = []
    for gold in scenario.solution:
        calls = [ScriptedCall(c.name, dict(c.args)) for c in gold.tool_calls]
        steps = [*call_steps(calls, gold.parallel), ScriptStep(answer=gold.answer)]
        turns.append(ScriptTurn(tuple(steps)))
    return turns


def step_at(script: list[ScriptTurn], turn: int, step: int) -> ScriptStep:
    """The reply at (turn, step); past the script's end, the turn's final answer again."""
    if not script:
        return ScriptStep(answer="")
    steps = script[min(turn, len(script) - 1)].steps
    return steps[min(step, len(steps) - 1)]


def call_id(turn: int, step: int, index: int) -> str:
    """A deterministic tool-call id, so transcripts of two runs compare line by line."""
    return f"call_t{turn}s{step}c{index}"
