"""Seeded, realistic faults for ``reference-noisy``: each one a mistake real models make.

A fault is only injected where the scenario's own expectations must catch it: the faulty calls or
answer are checked with the graders' matchers before the fault is chosen. Each fault names the
grader meant to catch it (``expected_grader``), so the meta-evaluation can check the graders.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from typing import Any

from agentbench.grading.matchers import Call, check_answer, match_trajectory
from agentbench.models.script import ScriptedCall, ScriptTurn, call_steps, gold_script
from agentbench.scenario.schema import Scenario, Turn
from agentbench.tools import tool_spec

#: Fault kind -> the grader that must fail when it is injected.
EXPECTED_GRADER = {
    "wrong_argument": "tool_calls",
    "missing_argument": "tool_calls",
    "hallucinated_tool": "known_tools",
    "malformed_arguments": "valid_tool_calls",
    "skipped_step": "tool_calls",
    "wrong_answer": "answer",
}
FAULT_KINDS = tuple(EXPECTED_GRADER)


@dataclass(frozen=True)
class Fault:
    """One injected fault: what, where (turn and gold call index), and who must catch it."""

    kind: str
    turn: int
    call: int | None
    detail: str
    expected_grader: str

    def as_dict(self) -> dict[str, Any]:
        """The fault as stored in transcripts."""
        return asdict(self)


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value * 3 + 1000
    if isinstance(value, str):
        return "unrelated value"
    return None


def _caught(turn: Turn, calls: list[ScriptedCall]) -> bool:
    expect = turn.expect.tool_calls
    if expect is None:
        return False
    actual = [Call(c.name, c.args) for c in calls]
    return not match_trajectory(expect.mode, expect.calls, actual).passed


def _call_faults(scenario: Scenario, t: int, gold: list[ScriptedCall]) -> list[tuple[Fault, list[ScriptedCall]]]:
    """Candidate faults on the calls of turn ``t``, each with the faulty call list."""
    turn, options = scenario.turns[t], []
    for i, call in enumerate(gold):
        def swap(new: ScriptedCall, i: int = i) -> list[ScriptedCall]:
            return [new if j == i else c for j, c in enumerate(gold)]

        for arg, value in call.args.items():
            changed = swap(replace(call, args={**call.args, arg: _wrong_value(value)}))
            if _caught(turn, changed):
                options.append((Fault("wrong_argument", t, i, f"{call.name}: {arg}={json.dumps(value)} "
                                      f"-> {json.dumps(_wrong_value(value))}", ""), changed))
                break
        required = tool_spec(call.name).args_schema.model_json_schema().get("required", [])
        for arg in (a for a in required if a in call.args):
            changed = swap(replace(call, args={k: v for k, v in call.args.items() if k != arg}))
            if _caught(turn, changed):
                options.append((Fault("missing_argument", t, i, f"{call.name}: dropped {arg!r}", ""), changed))
                break
        skipped = [c for j, c in enumerate(gold) if j != i]
        if _caught(turn, skipped):
            options.append((Fault("skipped_step", t, i, f"skipped {call.name}", ""), skipped))
        fake = f"{call.name}_v2"
        options.append((Fault("hallucinated_tool", t, i, f"called {fake!r} instead of {call.name!r}", ""),
                        swap(replace(call, name=fake))))
        broken = json.dumps(call.args)[:-1] + ', "'  # truncated JSON, as a cut-off generation
        options.append((Fault("malformed_arguments", t, i, f"{call.name}: arguments {broken!r}", ""),
                        swap(replace(call, raw_args=broken))))
    return options


def _wrong_answers(answer: str) -> list[str]:
    shifted = "".join(str((int(ch) + 3) % 10) if ch.isdigit() else ch for ch in answer)
    return [shifted, "I'm sorry, I could not work that out."]


def _answer_fault(scenario: Scenario, t: int, answer: str) -> tuple[Fault, str] | None:
    checks = scenario.turns[t].expect.answer
    for wrong in _wrong_answers(answer):
        if checks and not all(check_answer(c, wrong).passed for c in checks):
            return Fault("wrong_answer", t, None, f"answered {wrong!r}", ""), wrong
    return None


def _with_calls(turn: ScriptTurn, calls: list[ScriptedCall], parallel: bool, fault: Fault) -> ScriptTurn:
    steps = [*call_steps(calls, parallel), turn.steps[-1]]
    where = min(fault.call or 0, len(steps) - 1) if not parallel else 0
    steps[where] = replace(steps[where], fault=fault.as_dict())
    return ScriptTurn(tuple(steps))


#: A candidate fault and what it changes: the faulty call list of its turn, or the wrong answer.
Candidate = tuple[Fault, Any]


def fault_candidates(scenario: Scenario) -> list[Candidate]:
    """Every fault that could be injected into ``scenario`` and that its expectations catch."""
    script = gold_script(scenario)
    candidates: list[Candidate] = []
    for t, gold in enumerate(scenario.solution):
        calls = [c for step in script[t].steps for c in step.calls]
        candidates += _call_faults(scenario, t, calls)
        answer_fault = _answer_fault(scenario, t, gold.answer)
        if answer_fault:
            candidates.append(answer_fault)
    return [(replace(f, expected_grader=EXPECTED_GRADER[f.kind]), change) for f, change in candidates]


def apply_fault(scenario: Scenario, candidate: Candidate) -> list[ScriptTurn]:
    """The gold script of ``scenario`` with one candidate fault injected."""
    script = gold_script(scenario)
    fault, change = candidate
    t = fault.turn
    if fault.kind == "wrong_answer":
        last = replace(script[t].steps[-1], answer=change, fault=fault.as_dict())
        script[t] = ScriptTurn((*script[t].steps[:-1], last))
    else:
        script[t] = _with_calls(script[t], change, scenario.solution[t].parallel, fault)
    return script


def noisy_script(scenario: Scenario, seed: int, rate: float, repeat: int = 0) -> tuple[list[ScriptTurn], Fault | None]:
    """The gold script with at most one seeded fault (probability ``rate``); and that fault."""
    rng = random.Random(f"{seed}:{scenario.id}:{repeat}")
    if rng.random() >= rate:
        return gold_script(scenario), None
    candidates = fault_candidates(scenario)
    if not candidates:
        return gold_script(scenario), None
    candidate = rng.choice(candidates)
    return apply_fault(scenario, candidate), candidate[0]
