"""Meta-evaluation: do the graders catch the faults they are meant to, and never fail a gold run?

For every scenario of a selection it runs the gold solution (every grade must pass: a failure is a
*false failure*), and then every fault ``reference-noisy`` can inject into that scenario (from
:func:`agentbench.models.faults.fault_candidates`), plus one coherence fault per turn with
coherence checks (an answer that loses the earlier turns' facts), each in its own run through the
real graph, tools and graders. A fault is *caught* when the grader meant to catch it fails.
Targets: recall 100 % for every (fault kind, grader) and no false failure. Definitions are in
docs/metrics.md ("Meta-evaluation").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from agentbench.grading.coherence import check_coherence
from agentbench.models.backends import Backend
from agentbench.models.faults import Fault, apply_fault, fault_candidates
from agentbench.models.offline import ReferenceChatModel
from agentbench.models.registry import ModelSpec
from agentbench.models.script import ScriptTurn, gold_script
from agentbench.report.tables import Table, pct
from agentbench.runner.execute import run_scenario
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.schema import Scenario

__all__ = ["MetaEval", "Trial", "coherence_faults", "meta_evaluate", "metaeval_tables"]

#: The fault this module adds to reference-noisy's: an answer that forgets the earlier turns.
COHERENCE_FAULT = "incoherent_answer"
_FORGETFUL = "Sorry, I don't remember what we talked about before - could you tell me again?"


@dataclass(frozen=True)
class Trial:
    """One meta-evaluation run: gold (``fault`` None) or one injected fault, and what failed."""

    scenario_id: str
    repeat: int
    fault: Fault | None
    failed_graders: tuple[str, ...]
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Gold: nothing failed. Fault: its grader failed."""
        return not self.failed_graders if self.fault is None else self.fault.expected_grader in self.failed_graders


@dataclass(frozen=True)
class RecallRow:
    """Grader recall on one fault kind."""

    kind: str
    grader: str
    injected: int
    caught: int
    missed_in: tuple[str, ...]

    @property
    def recall(self) -> float | None:
        """Caught / injected (None when nothing was injected)."""
        return self.caught / self.injected if self.injected else None


@dataclass
class MetaEval:
    """Every trial of a meta-evaluation, with recall and false failures derived from them."""

    trials: list[Trial] = field(default_factory=list)

    def recall(self) -> list[RecallRow]:
        """Per (fault kind, expected grader): injected, caught, and the scenarios where it was missed."""
        groups: dict[tuple[str, str], list[Trial]] = {}
        for t in self.trials:
            if t.fault is not None:
                groups.setdefault((t.fault.kind, t.fault.expected_grader), []).append(t)
        return [RecallRow(kind, grader, len(ts), sum(t.ok for t in ts),
                          tuple(sorted({t.scenario_id for t in ts if not t.ok})))
                for (kind, grader), ts in sorted(groups.items())]

    def gold_runs(self) -> int:
        """How many gold runs there were."""
        return sum(t.fault is None for t in self.trials)

    def false_failures(self) -> dict[str, list[str]]:
        """Grader -> the scenarios whose gold run it failed."""
        failures: dict[str, list[str]] = {}
        for t in self.trials:
            if t.fault is None:
                for g in t.failed_graders:
                    failures.setdefault(g, []).append(t.scenario_id)
        return failures

    @property
    def passed(self) -> bool:
        """Recall 100 % on every fault kind and no false failure on gold."""
        return all(t.ok for t in self.trials)

    def as_json(self) -> dict[str, object]:
        """Everything as plain data (``agentbench meta-eval --json``)."""
        return {
            "passed": self.passed, "gold_runs": self.gold_runs(), "fault_runs": len(self.trials) - self.gold_runs(),
            "recall": [{"fault": r.kind, "grader": r.grader, "injected": r.injected, "caught": r.caught,
                        "recall": r.recall, "missed_in": list(r.missed_in)} for r in self.recall()],
            "false_failures": self.false_failures(),
            "problems": [{"scenario": t.scenario_id, "repeat": t.repeat,
                          "fault": t.fault.as_dict() if t.fault else None, "failed_graders": list(t.failed_graders),
                          "reasons": list(t.reasons)} for t in self.trials if not t.ok],
        }


class _ScriptBackend(Backend):
    """Replays one given script (a gold solution with one fault) through the real graph."""

    def __init__(self, script: list[ScriptTurn]) -> None:
        super().__init__(ModelSpec(key="meta-eval", backend="reference"))
        self.script = script

    def chat_model(self, scenario: Scenario | None, repeat: int = 0) -> ReferenceChatModel:
        return ReferenceChatModel(script=self.script, label="meta-eval")


def coherence_faults(scenario: Scenario) -> list[tuple[Fault, list[ScriptTurn]]]:
    """One fault per turn with coherence checks: the gold answer with its digits shifted, or an
    answer that has forgotten the conversation, whichever its coherence checks catch first."""
    faults = []
    for t, turn in enumerate(scenario.turns):
        spec = turn.expect.coherence
        if spec is None or t >= len(scenario.solution):
            continue
        answer = scenario.solution[t].answer
        shifted = "".join(str((int(ch) + 3) % 10) if ch.isdigit() else ch for ch in answer)
        for wrong in (shifted, _FORGETFUL):
            if not all(v.passed for v in check_coherence(spec, wrong)):
                fault = Fault(COHERENCE_FAULT, t, None, f"answered {wrong!r}", "coherence")
                script = gold_script(scenario)
                last = replace(script[t].steps[-1], answer=wrong, fault=fault.as_dict())
                script[t] = ScriptTurn((*script[t].steps[:-1], last))
                faults.append((fault, script))
                break
    return faults


def _plans(scenario: Scenario) -> list[tuple[Fault | None, list[ScriptTurn]]]:
    plans: list[tuple[Fault | None, list[ScriptTurn]]] = [(None, gold_script(scenario))]
    plans += [(c[0], apply_fault(scenario, c)) for c in fault_candidates(scenario)]
    plans += coherence_faults(scenario)
    return plans


def _trial(scenario: Scenario, repeat: int, fault: Fault | None, result: ScenarioResult) -> Trial:
    failed = result.failed_grades()
    return Trial(scenario.id, repeat, fault, tuple(sorted({g.grader for g in failed})),
                 tuple(f"{g.label}: {g.reason}" for g in failed) + ((result.error,) if result.error else ()))


async def meta_evaluate(scenarios: Sequence[Scenario], repeats: int = 1, concurrency: int = 8,
                        on_trial: Callable[[Trial], None] | None = None,
                        tool_options: dict[str, object] | None = None) -> MetaEval:
    """Run gold and every injectable fault of ``scenarios`` (``repeats`` times each) and grade them."""
    if repeats < 1 or concurrency < 1:
        raise ValueError(f"repeats and concurrency must be at least 1, got {repeats} and {concurrency}")
    gate = asyncio.Semaphore(concurrency)

    async def one(scenario: Scenario, fault: Fault | None, script: list[ScriptTurn], repeat: int) -> Trial:
        async with gate:
            result = await run_scenario(scenario, _ScriptBackend(script), run_id="meta-eval", repeat=repeat,
                                        tool_options=dict(tool_options or {}))
        trial = _trial(scenario, repeat, fault, result)
        if on_trial is not None:
            on_trial(trial)
        return trial

    jobs = [one(s, fault, script, r) for s in scenarios for fault, script in _plans(s) for r in range(repeats)]
    return MetaEval(list(await asyncio.gather(*jobs)))


def count_trials(scenarios: Sequence[Scenario], repeats: int = 1) -> int:
    """How many runs :func:`meta_evaluate` will make (for a progress bar)."""
    return repeats * sum(len(_plans(s)) for s in scenarios)


def metaeval_tables(meta: MetaEval) -> list[Table]:
    """Recall per fault kind and grader, false failures per grader, and every problem trial."""
    recall = Table("Grader recall on injected faults", ["fault", "grader", "injected", "caught", "recall",
                                                         "target", "missed in"])
    for r in meta.recall():
        verdict = "ok" if r.caught == r.injected else "MISSED"
        recall.rows.append([r.kind, r.grader, str(r.injected), str(r.caught), pct(r.recall), f"100% {verdict}",
                            ", ".join(r.missed_in) or "-"])
    recall.note = ("each fault is injected alone into the gold solution of every scenario where the scenario's "
                   "expectations can catch it; caught = the grader meant to catch it failed.")
    gold = meta.gold_runs()
    false = Table("False failures on gold", ["grader", "gold runs", "false failures", "target", "scenarios"])
    for grader, ids in sorted(meta.false_failures().items()):
        false.rows.append([grader, str(gold), str(len(ids)), "0 MISSED", ", ".join(sorted(set(ids)))])
    if not false.rows:
        false.rows.append(["every grader", str(gold), "0", "0 ok", "-"])
    false.note = f"{gold} gold runs; a grader with false failures failed a gold solution (target: 0)."
    problems = Table("Meta-evaluation problems", ["scenario", "repeat", "fault", "expected grader",
                                                  "failed graders (reasons)"])
    for t in meta.trials:
        if not t.ok:
            problems.rows.append([t.scenario_id, str(t.repeat), t.fault.kind if t.fault else "none (gold)",
                                  t.fault.expected_grader if t.fault else "-", "; ".join(t.reasons) or "-"])
    return [recall, false, problems]
