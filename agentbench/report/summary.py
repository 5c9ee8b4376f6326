"""Aggregating results: per model (and category) pass rate, score, tool-call accuracy, cost.

Definitions (also in docs/metrics.md):

- pass rate: share of scenario runs where every grade passed.
- mean score: mean over runs of the run's score (the mean of its grade scores).
- tool-call accuracy: share of ``tool_calls`` grades passed (one per turn that expects calls).
- steps, tokens, latency: means per scenario run; tokens only over runs that reported usage.
- pass-rate interval: the 95% Wilson score interval of passed / runs.
- repeats: per model, the mean over scenarios of pass@1, pass@k and pass^k (k = repeats).
- coherence: per model, over runs with coherence checks, the mean of each run's minimum turn
  coherence score (the conversation score) and the mean of its per-turn mean. A run that crashed
  before it was graded (``endpoint_error``/``error`` with no coherence grade) scores 0 on every
  checked turn, as an unreached turn does, when its scenario is known; function-calling accuracy
  counts such a run as missed calls too.
- judge_unscored: runs with a ``required: true`` judge rubric the judge failed to score (its
  endpoint failed or its reply was unreadable): their pass/fail leaves that rubric out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from agentbench.grading.coherence import ConversationCoherence, result_coherence
from agentbench.report.stats import pass_at_k, pass_hat_k, wilson_interval
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.schema import Scenario

#: Outcomes that mean the run itself broke (endpoint or agentbench), not the model's answer.
INFRASTRUCTURE_OUTCOMES = ("endpoint_error", "error")
#: Judge grade statuses where the judge, not the model under test, failed.
_JUDGE_FAILED = ("unparseable", "endpoint_error")


def judge_unscored(result: ScenarioResult) -> bool:
    """Whether a ``required: true`` judge rubric of this run was not scored because the judge failed
    (its grade is informational then, so the run's pass/fail silently leaves the rubric out)."""
    return any(g.grader == "judge" and (g.detail or {}).get("required") and
               (g.detail or {}).get("status") in _JUDGE_FAILED for g in result.grades)


@dataclass
class Stats:
    """Aggregates over a group of scenario runs."""

    runs: int = 0
    passed: int = 0
    score_sum: float = 0.0
    tool_grades: int = 0
    tool_grades_passed: int = 0
    steps: int = 0
    wall_s: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    runs_with_usage: int = 0
    judge_unscored: int = 0  # runs whose required judge rubric the judge failed to score
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, result: ScenarioResult) -> None:
        """Fold one run into the aggregates."""
        self.runs += 1
        self.passed += result.passed
        self.score_sum += result.score
        tool_grades = [g for g in result.grades if g.grader == "tool_calls"]
        self.tool_grades += len(tool_grades)
        self.tool_grades_passed += sum(g.passed for g in tool_grades)
        self.steps += result.steps
        self.wall_s += result.wall_s
        inputs, outputs = result.tokens("input"), result.tokens("output")
        if inputs is not None or outputs is not None:
            self.runs_with_usage += 1
            self.input_tokens += inputs or 0
            self.output_tokens += outputs or 0
        self.judge_unscored += judge_unscored(result)
        self.outcomes[result.outcome] += 1

    @property
    def pass_rate(self) -> float:
        """Share of runs that passed every grade."""
        return self.passed / self.runs if self.runs else 0.0

    @property
    def pass_rate_ci(self) -> tuple[float, float]:
        """95% Wilson score interval of the pass rate."""
        return wilson_interval(self.passed, self.runs)

    @property
    def mean_score(self) -> float:
        """Mean run score."""
        return self.score_sum / self.runs if self.runs else 0.0

    @property
    def tool_call_accuracy(self) -> float | None:
        """Share of ``tool_calls`` grades passed; None when no turn expected calls."""
        return self.tool_grades_passed / self.tool_grades if self.tool_grades else None

    def mean(self, name: str) -> float | None:
        """Mean per run of ``steps``, ``wall_s``, ``input_tokens`` or ``output_tokens``."""
        if name.endswith("tokens"):
            return getattr(self, name) / self.runs_with_usage if self.runs_with_usage else None
        return getattr(self, name) / self.runs if self.runs else None


@dataclass
class Summary:
    """Stats per model, and per (model, category)."""

    models: list[str]
    categories: list[str]
    overall: dict[str, Stats]
    by_category: dict[tuple[str, str], Stats]


def summarize(results: Iterable[ScenarioResult], model_order: Sequence[str] = ()) -> Summary:
    """Aggregate results per model and per (model, category)."""
    overall: dict[str, Stats] = {}
    by_category: dict[tuple[str, str], Stats] = {}
    for result in results:
        overall.setdefault(result.model, Stats()).add(result)
        by_category.setdefault((result.model, result.category), Stats()).add(result)
    models = [m for m in model_order if m in overall] + sorted(set(overall) - set(model_order))
    categories = sorted({c for _, c in by_category})
    return Summary(models, categories, overall, by_category)


@dataclass(frozen=True)
class RepeatStats:
    """One model's consistency over repeated runs of the same scenarios.

    ``k`` is the number of repeats per scenario (the fewest any scenario has, should they differ);
    each scenario contributes its pass@1, pass@k and pass^k with n = its repeats and c = its passes,
    and the values here are the means over scenarios.
    """

    model: str
    scenarios: int
    k: int
    pass_at_1: float
    pass_at_k: float
    pass_hat_k: float


def has_repeats(results: Iterable[ScenarioResult]) -> bool:
    """Whether some model ran some scenario more than once."""
    seen: set[tuple[str, str]] = set()
    for r in results:
        key = (r.model, r.scenario_id)
        if key in seen:
            return True
        seen.add(key)
    return False


def repeat_stats(results: Iterable[ScenarioResult], model_order: Sequence[str] = ()) -> list[RepeatStats]:
    """pass@1, pass@k and pass^k per model (means over its scenarios), in ``model_order`` first."""
    counts: dict[str, dict[str, list[int]]] = {}
    for r in results:
        n_c = counts.setdefault(r.model, {}).setdefault(r.scenario_id, [0, 0])
        n_c[0] += 1
        n_c[1] += r.passed
    models = [m for m in model_order if m in counts] + sorted(set(counts) - set(model_order))
    rows = []
    for model in models:
        per_scenario = list(counts[model].values())
        k = min(n for n, _ in per_scenario)
        at_1 = [pass_at_k(n, c, 1) or 0.0 for n, c in per_scenario]
        at_k = [pass_at_k(n, c, k) or 0.0 for n, c in per_scenario]
        hat_k = [pass_hat_k(n, c, k) or 0.0 for n, c in per_scenario]
        count = len(per_scenario)
        rows.append(RepeatStats(model, count, k, sum(at_1) / count, sum(at_k) / count, sum(hat_k) / count))
    return rows


@dataclass(frozen=True)
class FaultAudit:
    """One run of a fault-injecting model: what was injected and which graders failed."""

    model: str
    scenario_id: str
    repeat: int
    injected: tuple[str, ...]
    expected_graders: tuple[str, ...]
    failed_graders: tuple[str, ...]

    @property
    def consistent(self) -> bool:
        """Injected faults were caught by their graders, or nothing was injected and all passed."""
        if not self.injected:
            return not self.failed_graders
        return set(self.expected_graders) <= set(self.failed_graders)


def fault_audit(results: Iterable[ScenarioResult]) -> list[FaultAudit]:
    """An audit row per run of every model that injected at least one fault somewhere."""
    results = list(results)
    injecting = {r.model for r in results if r.faults}
    rows = []
    for r in sorted((r for r in results if r.model in injecting), key=lambda r: (r.model, r.scenario_id, r.repeat)):
        rows.append(FaultAudit(
            r.model, r.scenario_id, r.repeat,
            tuple(f["kind"] for f in r.faults), tuple(f["expected_grader"] for f in r.faults),
            tuple(sorted({g.grader for g in r.failed_grades()})),
        ))
    return rows


@dataclass(frozen=True)
class CoherenceStats:
    """One model's multi-turn coherence over its runs of scenarios with coherence checks.

    ``conversation`` is the mean over runs of the run's minimum turn score (MT-Bench-101's
    conversation score); ``turn_mean`` the mean over runs of the run's mean turn score;
    ``coherent_runs`` the runs whose every checked turn scored 1; ``infrastructure_errors`` the
    runs counted here that ended in ``endpoint_error`` or ``error`` (scored 0 where not reached).
    """

    model: str
    runs: int
    turns: int
    conversation: float
    turn_mean: float
    coherent_runs: int
    run_scores: tuple[float, ...]
    infrastructure_errors: int = 0


def _checked_turns(scenario: Scenario | None) -> int:
    """How many turns of ``scenario`` have coherence checks (0 when it is unknown)."""
    return 0 if scenario is None else sum(turn.expect.coherence is not None for turn in scenario.turns)


def coherence_stats(results: Iterable[ScenarioResult], model_order: Sequence[str] = (),
                    scenarios: Mapping[str, Scenario] | None = None) -> list[CoherenceStats]:
    """Coherence per model (only models with some run of a scenario that has coherence checks).

    With ``scenarios`` (by id), a run that crashed before grading (``endpoint_error``/``error``
    and no coherence grade) of a scenario with coherence checks counts with every checked turn at
    0, as function-calling accuracy counts its expected calls as missed; without, it is left out."""
    known = scenarios or {}
    per_model: dict[str, list[tuple[int, float, float]]] = {}
    broken: Counter[str] = Counter()
    for r in results:
        score = result_coherence(r)
        if score is None and r.outcome in INFRASTRUCTURE_OUTCOMES:
            checked = _checked_turns(known.get(r.scenario_id))
            score = ConversationCoherence(checked, 0.0, 0.0) if checked else None  # every checked turn unreached
        if score is not None:
            per_model.setdefault(r.model, []).append((score.turns, score.minimum, score.mean))
            broken[r.model] += r.outcome in INFRASTRUCTURE_OUTCOMES
    models = [m for m in model_order if m in per_model] + sorted(set(per_model) - set(model_order))
    rows = []
    for model in models:
        runs = per_model[model]
        minima = tuple(m for _, m, _ in runs)
        rows.append(CoherenceStats(model, len(runs), sum(t for t, _, _ in runs), sum(minima) / len(runs),
                                   sum(mean for _, _, mean in runs) / len(runs), sum(m == 1.0 for m in minima),
                                   minima, broken[model]))
    return rows
