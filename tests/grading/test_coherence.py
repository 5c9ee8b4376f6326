"""Multi-turn coherence: the schema block (strict, located errors), the grader and the scores."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agentbench.grading.coherence import check_coherence, conversation_coherence
from agentbench.grading.graders import GradingInput, coherence_grade
from agentbench.models.backends import make_backend
from agentbench.models.registry import load_registry
from agentbench.runner.execute import run_scenario
from agentbench.runner.records import GradeRecord, TurnRecord
from agentbench.scenario.loader import load_library, parse_scenario
from agentbench.scenario.schema import CoherenceExpectation, Scenario

TWO_TURNS = """\
id: toy
title: Toy
category: conversation
description: d
turns:
  - user: My budget is 2400 and I want answers in euros.
  - user: What is left after 950 of rent?
    expect:
      coherence:
{block}
solution:
  - answer: Noted.
  - answer: {answer}
"""

GOOD_BLOCK = """\
        facts:
          - {from_turn: 1, number: 1450, note: remainder of the turn-1 budget}
        preferences:
          - {from_turn: 1, regex: '(?i)euro|€', note: amounts in euros}
        contradictions:
          - {from_turn: 1, number: 2000, note: a different budget}"""


def parse(block: str, answer: str = "You have 1,450 euros left.") -> tuple[Scenario | None, list[str]]:
    scenario, problems = parse_scenario(TWO_TURNS.format(block=block, answer=answer), "s.yaml")
    return scenario, [str(p) for p in problems]


def test_a_valid_block_loads() -> None:
    scenario, problems = parse(GOOD_BLOCK)
    assert problems == [] and scenario is not None
    spec = scenario.turns[1].expect.coherence
    assert spec is not None
    assert [(name, c.kind) for name, _, c in spec.checks()] == [
        ("facts", "number"), ("preferences", "regex"), ("contradictions", "number")]


@pytest.mark.parametrize(("block", "expected"), [
    ("        facts:\n          - {from_turn: 2, number: 1450}",
     "s.yaml:11:14: turns[1].expect.coherence.facts[0].from_turn: from_turn 2 is not an earlier turn "
     "(this is turn 2; use 1..1)"),
    ("        facts:\n          - {from_turn: 1, numbr: 1450}",
     "s.yaml:11:13: turns[1].expect.coherence.facts[0]: unknown coherence check 'numbr'"),
    ("        facts:\n          - {from_turn: 1, number: 1450, regex: x}",
     "s.yaml:11:13: turns[1].expect.coherence.facts[0]: name exactly one coherence check"),
    ("        facts:\n          - {number: 1450}", "missing required field 'from_turn'"),
    ("        facts:\n          - {from_turn: 1, regex: '('}", "invalid regular expression"),
    ("        facts:\n          - {from_turn: 1, contains: x, tolerance: 1}", "'tolerance' only goes with 'number'"),
    ("        fact:\n          - {from_turn: 1, number: 1450}", "unknown key 'fact'; did you mean 'facts'?"),
    ("        facts: []", "a coherence block needs at least one of facts, preferences, contradictions"),
])
def test_bad_blocks_are_located(block: str, expected: str) -> None:
    scenario, problems = parse(block)
    assert scenario is None
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("s.yaml:") for p in problems)


def test_the_gold_answer_must_pass_its_own_coherence_checks() -> None:
    _, problems = parse(GOOD_BLOCK, answer="You have 1,450 dollars left of your 2000.")
    assert any("solution's answer fails turns[1].expect.coherence.preferences[0]" in p for p in problems), problems
    assert any("coherence.contradictions[0]" in p for p in problems), problems


def test_the_first_turn_cannot_have_a_coherence_block() -> None:
    text = TWO_TURNS.format(block=GOOD_BLOCK, answer="You have 1,450 euros left.").replace(
        "  - user: My budget is 2400 and I want answers in euros.\n",
        "  - user: My budget is 2400 and I want answers in euros.\n    expect:\n      coherence:\n"
        "        facts: [{from_turn: 1, contains: x}]\n")
    _, problems = parse_scenario(text, "s.yaml")
    assert any("the first turn has no earlier turn" in str(p) for p in problems), problems


def test_checks_polarity_and_reasons() -> None:
    spec = CoherenceExpectation.model_validate({
        "facts": [{"from_turn": 1, "number": 1450}],
        "preferences": [{"from_turn": 1, "contains": "EUR", "case_sensitive": True}],
        "contradictions": [{"from_turn": 1, "regex": r"\bmiles\b", "note": "miles after asking for km"}],
    })
    good = check_coherence(spec, "1,450 EUR left, about 12 km away")
    assert [v.passed for v in good] == [True, True, True]
    bad = check_coherence(spec, "1,400 eur left, about 7 miles away")
    assert [v.passed for v in bad] == [False, False, False]
    assert "NOT: does not contradict miles after asking for km (turn 1)" in bad[2].reason


def _grading_input(scenario: Scenario, answers: list[str], completed: int) -> GradingInput:
    turns = [TurnRecord(index=i, user=t.user, answer=a, outcome="completed" if i < completed else "step_limit",
                        steps=1, wall_s=0.0) for i, (t, a) in enumerate(zip(scenario.turns, answers))]
    return GradingInput(scenario, turns, [], "completed" if completed == len(answers) else "step_limit",
                        Path("."))


def test_grader_scores_share_of_checks_and_unreached_turns() -> None:
    scenario, _ = parse(GOOD_BLOCK)
    assert scenario is not None
    [partial] = coherence_grade(_grading_input(scenario, ["ok", "1,450 dollars left"], 2))
    assert (partial.turn, partial.passed, partial.score) == (1, False, pytest.approx(2 / 3))
    assert "amounts in euros" in partial.reason
    [full] = coherence_grade(_grading_input(scenario, ["ok", "1,450 € left"], 2))
    assert full.passed and full.score == 1.0
    [unreached] = coherence_grade(_grading_input(scenario, ["ok", "1,450 € left"], 1))
    assert not unreached.passed and unreached.score == 0.0 and "not completed" in unreached.reason


def test_conversation_score_is_the_minimum_with_the_mean_beside_it() -> None:
    grades = [GradeRecord(grader="coherence", turn=t, passed=s == 1.0, score=s, reason="")
              for t, s in [(1, 1.0), (2, 0.5), (3, 0.75)]]
    grades.append(GradeRecord(grader="answer", turn=1, passed=False, score=0.0, reason=""))
    score = conversation_coherence(grades)
    assert score is not None
    assert (score.turns, score.minimum, score.mean) == (3, 0.5, pytest.approx(0.75))
    assert conversation_coherence(grades[3:]) is None


LIBRARY = load_library()
CONVERSATIONS = sorted(s.id for s in LIBRARY.scenarios.values() if s.category == "conversation")


CHECKED = ["code_debugging", "code_debugging_versions", "multi_turn_budget", "multi_turn_unit_preference",
           "project_planning_atlas", "research_exception_chaining", "research_flask_sessions", "research_http_429",
           "technical_support_config_fix", "technical_support_vpn"]


def test_the_conversation_scenarios_have_coherence_checks() -> None:
    missing = [sid for sid in CHECKED if not any(t.expect.coherence for t in LIBRARY.get(sid).turns)]
    assert set(CHECKED) <= set(CONVERSATIONS) and missing == []


@pytest.mark.parametrize("scenario_id", CONVERSATIONS)
def test_gold_scores_full_coherence(scenario_id: str) -> None:
    result = asyncio.run(run_scenario(LIBRARY.get(scenario_id), make_backend(load_registry()["reference"]),
                                      run_id="t"))
    score = conversation_coherence(result.grades)
    if any(t.expect.coherence for t in LIBRARY.get(scenario_id).turns):
        assert score is not None and score.minimum == 1.0, [g.reason for g in result.grades]
