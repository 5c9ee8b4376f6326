"""The seed's success criteria, checked per model with the measured values and their intervals.

Quality (from a run's results): function calling accuracy > 85 % (its 95 % Wilson interval, from
:mod:`agentbench.grading.fc_metrics`) and multi-turn coherence > 0.8 (the mean conversation score
over runs with coherence checks, with a seeded 95 % percentile-bootstrap interval, widened to at
least the Wilson interval of the mean under 10 runs, where a percentile bootstrap is too narrow). Performance
(from stored bench results, :func:`agentbench.bench.criteria.perf_criteria`): the model's GPU
memory need under 70 GB and over 50 output tokens/s on the agent workload, each a single measurement.

Verdicts: ``pass`` when the whole interval is beyond the threshold, ``fail`` when none of it is,
``inconclusive`` when the interval straddles the threshold (more scenarios or repeats decide),
``not measured`` when nothing measured the value (never a guess). A criterion's ``notes`` say what
the reader must know about its data (runs that crashed and count as 0, scenarios changed since the
run). Extension point: a
:data:`CriteriaSource` is any function ``(model) -> list[Criterion]``; :func:`success_criteria`
appends what each given source returns, so a new criterion is one function, not an edit here.
docs/metrics.md ("Success criteria").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agentbench.grading.fc_metrics import FCSummary, fc_summary
from agentbench.report.stats import wilson_interval
from agentbench.report.summary import INFRASTRUCTURE_OUTCOMES, CoherenceStats, coherence_stats
from agentbench.report.tables import Table
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.schema import Scenario

__all__ = [
    "COHERENCE_MIN",
    "FC_ACCURACY_MIN",
    "CriteriaSource",
    "Criterion",
    "bootstrap_mean_interval",
    "criteria_json",
    "criteria_table",
    "perf_source",
    "success_criteria",
]

FC_ACCURACY_MIN = 0.85
COHERENCE_MIN = 0.8
_BOOTSTRAP_ITERATIONS = 2000
_BOOTSTRAP_SEED = 0
# Under this many runs the percentile bootstrap is too narrow (1.0 and 0.9 give [0.90, 1.00]):
# the interval is widened to at least the Wilson interval of the mean.
_BOOTSTRAP_MIN_RUNS = 10

Verdict = Literal["pass", "fail", "inconclusive", "not measured"]


@dataclass(frozen=True)
class Criterion:
    """One criterion for one model: the threshold, what was measured, and how sure that is."""

    name: str
    threshold: float
    direction: Literal["above", "below"]  # the measured value must be above (or below) the threshold
    unit: str  # "%" (a share shown as a percentage), "" (a 0..1 score), "GB", "tokens/s"
    measured: float | None = None
    interval: tuple[float, float] | None = None  # 95 %; None for a single measurement
    method: str = ""  # how the interval (or the measurement) was obtained
    n: int | None = None  # the sample the interval rests on
    notes: tuple[str, ...] = ()  # what the reader must know about the data (crashed runs, changed scenarios)

    @property
    def verdict(self) -> Verdict:
        """pass / fail / inconclusive (the interval straddles the threshold) / not measured."""
        if self.measured is None:
            return "not measured"
        low, high = self.interval if self.interval is not None else (self.measured, self.measured)
        if self.direction == "above":
            return "pass" if low > self.threshold else "fail" if high <= self.threshold else "inconclusive"
        return "pass" if high < self.threshold else "fail" if low >= self.threshold else "inconclusive"

    def shown(self, value: float) -> str:
        """A value in the criterion's unit."""
        if self.unit == "%":
            return f"{100 * value:.1f}%"
        return f"{value:.2f}" if not self.unit else f"{value:.1f} {self.unit}"

    def as_json(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {"criterion": self.name, "threshold": self.threshold, "direction": self.direction, "unit": self.unit,
                "measured": self.measured, "ci95": list(self.interval) if self.interval else None,
                "method": self.method, "n": self.n, "verdict": self.verdict, "notes": list(self.notes)}


#: A source of further criteria for a model (the performance criteria are one).
CriteriaSource = Callable[[str], list[Criterion]]


def bootstrap_mean_interval(values: Sequence[float], iterations: int = _BOOTSTRAP_ITERATIONS,
                            seed: int = _BOOTSTRAP_SEED) -> tuple[float, float]:
    """95 % interval of the mean of 0..1 scores: a seeded percentile bootstrap (the same values give
    the same interval), widened where it is known to be too narrow.

    The percentile bootstrap under-covers on few runs (it cannot see variance the sample lacks: two
    runs at 1.0 and 0.9 give [0.90, 1.00]) and collapses to a point when every value is the same.
    So under 10 runs, or when all runs scored alike, the interval is the wider of the bootstrap's and
    the Wilson interval of ``mean x n`` of ``n``, which is valid for any 0..1 variable (its variance
    is at most p(1-p))."""
    n = len(values)
    if not n:
        return 0.0, 1.0
    mean = sum(values) / n
    # The Wilson formula needs no integer count: a mean score stands in for successes / n.
    wilson = wilson_interval(round(mean * n, 9), n)  # type: ignore[arg-type]
    if len(set(values)) <= 1:
        return wilson
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(iterations))
    low, high = means[int(0.025 * iterations)], means[min(iterations - 1, int(0.975 * iterations))]
    if n < _BOOTSTRAP_MIN_RUNS:
        return min(low, wilson[0]), max(high, wilson[1])
    return low, high


def _infrastructure_note(count: int) -> tuple[str, ...]:
    return (f"includes {count} run(s) that ended in endpoint_error/error, scored 0 where they did not reach "
            "(see the Failures table)",) if count else ()


def _quality(results: Sequence[ScenarioResult], scenarios: Mapping[str, Scenario], models: Sequence[str],
             scenario_hashes: Mapping[str, str] | None, fc: FCSummary | None,
             coherence_rows: Sequence[CoherenceStats] | None) -> dict[str, list[Criterion]]:
    if fc is None:
        fc = fc_summary(results, scenarios, models, scenario_hashes)
    if coherence_rows is None:
        coherence_rows = coherence_stats(results, models, scenarios)
    coherence = {c.model: c for c in coherence_rows}
    drift = (fc.drift.note(),) if not fc.drift.clean else ()
    found: dict[str, list[Criterion]] = {}
    for model in models:
        counts = fc.overall.get(model)
        accuracy = counts.accuracy if counts is not None else None
        broken = sum(r.model == model and r.outcome in INFRASTRUCTURE_OUTCOMES for r in results)
        fc_criterion = Criterion("function calling accuracy", FC_ACCURACY_MIN, "above", "%", accuracy,
                                 counts.accuracy_ci if counts is not None and accuracy is not None else None,
                                 "Wilson 95%", counts.units if counts is not None else None,
                                 _infrastructure_note(broken) + drift if accuracy is not None else ())
        c = coherence.get(model)
        method = f"bootstrap 95% ({_BOOTSTRAP_ITERATIONS} resamples of runs, seed {_BOOTSTRAP_SEED})"
        if c and c.runs < _BOOTSTRAP_MIN_RUNS:
            method += f", widened to the Wilson interval of the mean (under {_BOOTSTRAP_MIN_RUNS} runs)"
        coherence_criterion = Criterion(
            "multi-turn coherence (mean conversation score)", COHERENCE_MIN, "above", "",
            c.conversation if c else None, bootstrap_mean_interval(c.run_scores) if c else None,
            method, c.runs if c else None, _infrastructure_note(c.infrastructure_errors) if c else ())
        found[model] = [fc_criterion, coherence_criterion]
    return found


def perf_source(results_root: Path) -> CriteriaSource:
    """The performance criteria from the bench results stored under ``results_root``
    (:func:`agentbench.bench.criteria.perf_criteria`): single measurements, no interval."""
    from agentbench.bench.criteria import perf_criteria  # the bench package is only needed here

    def criteria(model: str) -> list[Criterion]:
        try:
            measured = perf_criteria(results_root, model)
        except ValueError as exc:  # an unreadable bench file: say so, never guess
            return [Criterion(f"performance criteria ({exc})", 0.0, "above", "")]
        return [Criterion(str(c["criterion"]), float(c["threshold"]),
                          "below" if "under" in str(c["criterion"]) else "above", str(c.get("unit", "")),
                          None if c.get("measured") is None else float(c["measured"]), None,
                          f"agentbench bench {c.get('bench_id') or '(latest stored result)'}: {c.get('detail', '')}"
                          if c.get("measured") is not None else "")
                for c in measured]

    return criteria


def success_criteria(results: Sequence[ScenarioResult], scenarios: Mapping[str, Scenario],
                     model_order: Sequence[str] = (), sources: Sequence[CriteriaSource] = (),
                     scenario_hashes: Mapping[str, str] | None = None, *, fc: FCSummary | None = None,
                     coherence: Sequence[CoherenceStats] | None = None) -> dict[str, list[Criterion]]:
    """Per model (in ``model_order``, then the rest): the quality criteria, then each source's.
    ``scenario_hashes`` are the run's (``RunPlan.scenario_hashes``): a scenario changed since the run
    is noted on the function-calling criterion (None: the run stored none, noted as unknown).
    ``fc`` and ``coherence``: the same results' function-calling summary and coherence rows when the
    caller has them already (a report shows both as tables), so they are not computed twice."""
    seen = {r.model for r in results}
    models = [m for m in model_order if m in seen] + sorted(seen - set(model_order))
    found = _quality(results, scenarios, models, scenario_hashes, fc, coherence)
    for model in models:
        for source in sources:
            found[model] += source(model)
    return found


def criteria_table(criteria: Mapping[str, Sequence[Criterion]]) -> Table:
    """One row per (model, criterion): threshold, measured value, interval, verdict."""
    table = Table("Success criteria", ["model", "criterion", "target", "measured", "95% interval", "n", "verdict",
                                       "notes"])
    for model, rows in criteria.items():
        for c in rows:
            target = f"{'>' if c.direction == 'above' else '<'} {c.shown(c.threshold)}"
            measured = "not measured" if c.measured is None else c.shown(c.measured)
            interval = (f"[{c.shown(c.interval[0])}, {c.shown(c.interval[1])}] ({c.method})" if c.interval
                        else (f"single measurement ({c.method})" if c.measured is not None else "-"))
            table.rows.append([model, c.name, target, measured, interval, "-" if c.n is None else str(c.n),
                               c.verdict.upper() if c.verdict in ("pass", "fail") else c.verdict,
                               " ".join(c.notes) or "-"])
    table.note = ("PASS: the whole 95% interval is beyond the target; FAIL: none of it is; inconclusive: the interval "
                  "straddles the target (add scenarios or --repeats); not measured: no run or bench result measured "
                  "it. Performance criteria come from `agentbench bench` results in the results dir.")
    return table


def criteria_json(criteria: Mapping[str, Sequence[Criterion]]) -> dict[str, list[dict[str, Any]]]:
    """Per model, each criterion as plain data."""
    return {model: [c.as_json() for c in rows] for model, rows in criteria.items()}
