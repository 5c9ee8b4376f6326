"""Multi-turn coherence: does a turn's answer keep to what earlier turns established?

A turn's ``expect.coherence`` block lists facts the answer must use, preferences it must keep and
contradictions it must not make, each tied to the earlier turn that set it. A turn's coherence
score is the share of its checks that pass (0..1); a conversation's score is the minimum over its
checked turns (as MT-Bench-101 does: one incoherent turn spoils the conversation), with the mean
over its turns shown beside it. Definitions are in docs/metrics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agentbench.grading.matchers import Verdict, check_answer
from agentbench.runner.records import GradeRecord, ScenarioResult
from agentbench.scenario.schema import CoherenceCheck, CoherenceExpectation, Scenario

__all__ = ["ConversationCoherence", "check_coherence", "coherence_problems", "conversation_coherence"]

_WHAT = {"facts": "uses", "preferences": "keeps", "contradictions": "does not contradict"}


def _describe(name: str, check: CoherenceCheck) -> str:
    what = check.note or f"{check.kind} {getattr(check, check.kind)!r}"
    return f"{_WHAT[name]} {what} (turn {check.from_turn})"


def check_one(name: str, check: CoherenceCheck, answer: str) -> Verdict:
    """One coherence check on an answer: facts and preferences must be found, contradictions not."""
    found = check_answer(check.as_answer_check(), answer)
    ok = found.passed if name != "contradictions" else not found.passed
    return Verdict(ok, f"{'' if ok else 'NOT: '}{_describe(name, check)}: answer {found.reason}")


def check_coherence(spec: CoherenceExpectation, answer: str) -> list[Verdict]:
    """Every check of a turn's coherence block on its answer, in the block's order."""
    return [check_one(name, check, answer) for name, _, check in spec.checks()]


def coherence_problems(scenario: Scenario) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems of the scenario's coherence blocks, as (data path, message) for file:line errors:
    a check must name an earlier turn, and the gold answer must pass its turn's checks."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for t, turn in enumerate(scenario.turns):
        spec = turn.expect.coherence
        if spec is None:
            continue
        base: tuple[str | int, ...] = ("turns", t, "expect", "coherence")
        if t == 0:
            problems.append((base, "the first turn has no earlier turn to be coherent with"))
            continue
        for name, i, check in spec.checks():
            if check.from_turn > t:
                problems.append(((*base, name, i, "from_turn"), f"from_turn {check.from_turn} is not an earlier "
                                 f"turn (this is turn {t + 1}; use 1..{t})"))
        if t < len(scenario.solution):
            for (name, i, _), verdict in zip(spec.checks(), check_coherence(spec, scenario.solution[t].answer)):
                if not verdict.passed:
                    problems.append((("solution", t, "answer"), f"the solution's answer fails turns[{t}].expect."
                                     f"coherence.{name}[{i}]: {verdict.reason}"))
    return problems


@dataclass(frozen=True)
class ConversationCoherence:
    """One run's coherence: the minimum and the mean of its turns' coherence scores."""

    turns: int
    minimum: float
    mean: float


def conversation_coherence(grades: Sequence[GradeRecord]) -> ConversationCoherence | None:
    """A run's coherence from its ``coherence`` grades; None when no turn had coherence checks."""
    scores = [g.score for g in grades if g.grader == "coherence"]
    if not scores:
        return None
    return ConversationCoherence(len(scores), min(scores), sum(scores) / len(scores))


def result_coherence(result: ScenarioResult) -> ConversationCoherence | None:
    """:func:`conversation_coherence` of a stored result."""
    return conversation_coherence(result.grades)
