"""The comparison as plain tables, rendered the same way by the CLI (rich), Markdown and HTML."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentbench.grading.fc_metrics import FCCounts, FCSummary, fc_summary, library_scenarios
from agentbench.grading.judge import JudgeStats, judge_stats
from agentbench.models.architectures import describe_spec
from agentbench.report.stats import wilson_interval
from agentbench.report.summary import (
    CoherenceStats,
    FaultAudit,
    RepeatStats,
    Summary,
    coherence_stats,
    fault_audit,
    has_repeats,
    repeat_stats,
    summarize,
)
from agentbench.runner.records import ScenarioResult
from agentbench.scenario.schema import Scenario


@dataclass
class Table:
    """A titled table of text cells."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def pct(value: float | None) -> str:
    """``0.853`` -> ``85.3%``; ``-`` when unknown."""
    return "-" if value is None else f"{100 * value:.1f}%"


def pct_ci(passed: int, runs: int) -> str:
    """``17, 20`` -> ``85.0% [64.0-94.8]``: the pass rate with its 95% Wilson interval."""
    if not runs:
        return "-"
    low, high = wilson_interval(passed, runs)
    return f"{100 * passed / runs:.1f}% [{100 * low:.1f}-{100 * high:.1f}]"


def num(value: float | None, digits: int = 2) -> str:
    """A number with ``digits`` decimals; ``-`` when unknown."""
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(summary: Summary) -> Table:
    """One row per model: pass rate, score, tool-call accuracy and cost per scenario run."""
    table = Table("Summary", ["model", "runs", "passed", "pass rate", "mean score", "tool-call acc.",
                              "steps/run", "tokens in/run", "tokens out/run", "s/run", "outcomes"])
    for model in summary.models:
        s = summary.overall[model]
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(s.outcomes.items()))
        if s.judge_unscored:  # a required rubric the judge failed to score is not in these runs' pass/fail
            outcomes += f"; required judge not scored {s.judge_unscored}"
        table.rows.append([model, str(s.runs), str(s.passed), pct_ci(s.passed, s.runs), num(s.mean_score),
                           pct(s.tool_call_accuracy), num(s.mean("steps"), 1),
                           num(s.mean("input_tokens"), 0), num(s.mean("output_tokens"), 0),
                           num(s.mean("wall_s"), 3), outcomes])
    table.note = ("pass rate [95% Wilson interval]; tool-call acc. = share of per-turn tool_calls grades passed; "
                  "tokens are '-' when the backend reports no usage (the reference models). 'required judge not "
                  "scored': runs whose required judge rubric the judge failed to score; their pass/fail leaves it out.")
    return table


def category_table(summary: Summary) -> Table:
    """Pass rate per model and category, with its 95% Wilson interval (passed/runs)."""
    table = Table("Pass rate by category", ["model", *summary.categories])
    for model in summary.models:
        row = [model]
        for category in summary.categories:
            s = summary.by_category.get((model, category))
            row.append(f"{pct_ci(s.passed, s.runs)} ({s.passed}/{s.runs})" if s else "-")
        table.rows.append(row)
    table.note = "pass rate [95% Wilson interval] (passed/runs)"
    return table


def _count_of(part: int, whole: int) -> str:
    return f"{part} ({pct(part / whole)})" if whole else str(part)


def _fc_row(model: str, category: str, c: FCCounts) -> list[str]:
    accuracy = f"{pct_ci(c.correct, c.units)} ({c.correct}/{c.units})" if c.units else "-"
    return [model, category, accuracy, pct(c.name_accuracy), pct(c.argument_accuracy), pct(c.schema_validity),
            str(c.calls), _count_of(c.hallucinated, c.calls), _count_of(c.malformed, c.calls),
            _count_of(c.redundant, c.calls), _count_of(c.missing, c.expected_calls)]


def function_calling_table(fc: FCSummary) -> Table:
    """Function-calling metrics per model, overall ("all") and per category."""
    table = Table("Function calling", ["model", "category", "FC accuracy", "tool name acc.", "argument acc.",
                                       "schema-valid args", "calls", "hallucinated", "malformed", "redundant",
                                       "missing"])
    for model in fc.models:
        table.rows.append(_fc_row(model, "all", fc.overall[model]))
        table.rows += [_fc_row(model, c, fc.by_category[(model, c)]) for c in fc.categories
                       if (model, c) in fc.by_category]
    table.note = ("FC accuracy [95% Wilson interval] (correct/expected): expected calls made with the right tool and "
                  "arguments, and expected abstentions kept, in turns with no hallucinated or malformed call. "
                  "Name and argument accuracy are over expected calls; hallucinated, malformed and redundant are "
                  "shares of the calls made, missing a share of the expected calls (docs/metrics.md).")
    if not fc.drift.clean:
        table.note += " Scenarios: " + fc.drift.note()
    return table


def coherence_table(stats: Sequence[CoherenceStats]) -> Table:
    """Multi-turn coherence per model over the runs of scenarios with coherence checks."""
    table = Table("Multi-turn coherence", ["model", "runs", "checked turns", "conversation score (min)",
                                           "mean turn score", "fully coherent runs"])
    for s in stats:
        table.rows.append([s.model, str(s.runs), str(s.turns), num(s.conversation), num(s.turn_mean),
                           f"{pct_ci(s.coherent_runs, s.runs)} ({s.coherent_runs}/{s.runs})"])
    table.note = ("a turn's score is the share of its coherence checks passed; a run's conversation score is the "
                  "minimum over its checked turns (MT-Bench-101), averaged over runs; the mean turn score averages "
                  "each run's mean turn score.")
    return table


def judge_table(stats: Mapping[str, JudgeStats]) -> Table:
    """The optional LLM judge per model: judged blocks, their pass share and mean score, and the rest."""
    table = Table("LLM judge", ["model", "judged", "passed", "mean score (0..1)", "not judged", "unparseable",
                                "judge endpoint errors", "turn not reached", "required, not scored"])
    for model, s in stats.items():
        table.rows.append([model, str(s.judged), f"{pct_ci(s.passed, s.judged)} ({s.passed}/{s.judged})"
                           if s.judged else "-", num(s.mean_score), str(s.not_judged), str(s.unparseable),
                           str(s.endpoint_errors), str(s.not_reached), str(s.required_unscored)])
    table.note = ("judge: blocks of the scenarios run; 'not judged' = run without --judge. Judge grades are "
                  "informational (not in pass rate or score) unless the rubric says required: true; 'required, not "
                  "scored' = required blocks the judge failed on (unparseable or endpoint error), left out of "
                  "their runs' pass/fail.")
    return table


def repeats_table(stats: Sequence[RepeatStats]) -> Table:
    """Consistency over repeats per model: mean over scenarios of pass@1, pass@k and pass^k."""
    table = Table("Repeats", ["model", "scenarios", "k (repeats)", "pass@1", "pass@k", "pass^k"])
    for s in stats:
        table.rows.append([s.model, str(s.scenarios), str(s.k), pct(s.pass_at_1), pct(s.pass_at_k),
                           pct(s.pass_hat_k)])
    table.note = ("means over scenarios, each with n = its repeats and c = its passes: pass@k = 1 - C(n-c,k)/C(n,k) "
                  "(at least one of k runs passes), pass^k = C(c,k)/C(n,k) (all k runs pass).")
    return table


def scenario_table(results: Sequence[ScenarioResult], models: Sequence[str]) -> Table:
    """Scenario x model: pass/fail and score (over repeats: passes/runs and mean score)."""
    table = Table("Scenarios", ["scenario", "category", *models])
    for scenario_id in sorted({r.scenario_id for r in results}):
        mine = [r for r in results if r.scenario_id == scenario_id]
        row = [scenario_id, mine[0].category]
        for model in models:
            runs = [r for r in mine if r.model == model]
            if not runs:
                row.append("-")
                continue
            passed = sum(r.passed for r in runs)
            mark = "PASS" if passed == len(runs) else "FAIL"
            share = f" {passed}/{len(runs)}" if len(runs) > 1 else ""
            row.append(f"{mark}{share} {sum(r.score for r in runs) / len(runs):.2f}")
        table.rows.append(row)
    return table


def failures_table(results: Sequence[ScenarioResult], limit: int = 200) -> Table:
    """Every failed run with the grades it failed and why."""
    table = Table("Failures", ["model", "scenario", "repeat", "outcome", "failed grades (reason)"])
    failed = [r for r in results if not r.passed]
    for r in sorted(failed, key=lambda r: (r.model, r.scenario_id, r.repeat))[:limit]:
        reasons = "; ".join(f"{g.label}: {g.reason}" for g in r.failed_grades())
        if r.error:
            reasons += f"; error: {r.error.strip().splitlines()[-1]}"
        table.rows.append([r.model, r.scenario_id, str(r.repeat), r.outcome, reasons])
    if len(failed) > limit:
        table.note = f"{len(failed) - limit} more failures are in the run's results.jsonl"
    return table


def fault_table(audits: Sequence[FaultAudit]) -> Table:
    """For fault-injecting models: was each injected fault caught by the grader meant to?"""
    table = Table("Injected faults (grader check)", ["model", "scenario", "repeat", "injected",
                                                     "expected grader", "failed graders", "verdict"])
    for a in audits:
        verdict = "ok" if a.consistent else ("MISSED" if a.injected else "FALSE FAILURE")
        table.rows.append([a.model, a.scenario_id, str(a.repeat), ", ".join(a.injected) or "-",
                           ", ".join(a.expected_graders) or "-", ", ".join(a.failed_graders) or "-", verdict])
    injected = sum(1 for a in audits if a.injected)
    caught = sum(1 for a in audits if a.injected and a.consistent)
    false_failures = sum(1 for a in audits if not a.injected and a.failed_graders)
    table.note = (f"{injected} runs with an injected fault, {caught} caught by the expected grader; "
                  f"{false_failures} failures without an injected fault.")
    return table


def _event_counts(results: Sequence[ScenarioResult]) -> str:
    counts: Counter[str] = Counter()
    for r in results:
        for e in r.events:
            kind = e.get("kind", "?")
            label = {"route": f"route {e.get('route')}", "delegate": f"delegate {e.get('worker')}",
                     "fallback": f"fallback {e.get('from')}->{e.get('to')}",
                     "answered_by": f"answered by {e.get('agent')}"}.get(kind, kind)
            counts[label] += 1
    return ", ".join(f"{k} x{v}" for k, v in counts.most_common()) or "-"


def architecture_table(results: Sequence[ScenarioResult], summary: Summary,
                       specs: Mapping[str, Mapping[str, Any]]) -> Table:
    """Architectures beside the best single model: what they cost for what they gain."""
    archs = [m for m in summary.models if specs.get(m, {}).get("backend") == "architecture"]
    singles = [m for m in summary.models if m not in archs]
    best = max(singles, key=lambda m: (summary.overall[m].pass_rate, summary.overall[m].mean_score), default=None)
    table = Table("Architectures", ["architecture", "design", "models loaded at once", "GPU memory", "pass rate",
                                    "calls/run", "tokens/run", "s/run", "events", "best single model"])
    for arch in archs:
        s, spec = summary.overall[arch], specs[arch]
        members = list(spec.get("members", {}))
        baseline = "-"
        if best is not None:
            b = summary.overall[best]
            baseline = (f"{best}: {pct_ci(b.passed, b.runs)}, {num(b.mean('steps'), 1)} calls/run, "
                        f"{num(b.mean('wall_s'), 3)} s/run")
        tokens = s.mean("input_tokens")
        total_tokens = None if tokens is None else tokens + (s.mean("output_tokens") or 0)
        memory = [m.get("gpu_memory_gib") for m in spec.get("members", {}).values()]
        gib = f"{sum(memory):.1f} GiB" if memory and None not in memory else "n/a"
        table.rows.append([arch, describe_spec(spec), f"{len(members)} ({', '.join(members)})", gib,
                           pct_ci(s.passed, s.runs),
                           num(s.mean("steps"), 1), num(total_tokens, 0), num(s.mean("wall_s"), 3),
                           _event_counts([r for r in results if r.model == arch]), baseline])
    table.note = ("calls/run and tokens/run include model work outside the transcript (router calls, failed "
                  "fallback attempts, delegated workers). GPU memory: the sum of the members' gpu_memory_gib "
                  "(n/a while any member's is unknown).")
    return table


def report_tables(results: Sequence[ScenarioResult], model_order: Sequence[str] = (),
                  specs: Mapping[str, Mapping[str, Any]] | None = None,
                  scenarios: Mapping[str, Scenario] | None = None, results_root: Path | None = None,
                  scenario_hashes: Mapping[str, str] | None = None) -> list[Table]:
    """Every table of a run's report, in reading order. ``scenarios`` (by id) supply the
    expectations of the function-calling metrics; by default the built-in library's.
    ``results_root`` holds the bench results of the performance criteria (else "not measured").
    ``scenario_hashes`` (the run's plan) flag scenarios changed since the run."""
    from agentbench.report.criteria import criteria_table, perf_source, success_criteria  # it uses Table

    summary = summarize(results, model_order)
    scenarios = library_scenarios() if scenarios is None else scenarios
    sources = [perf_source(results_root)] if results_root is not None else []
    fc = fc_summary(results, scenarios, summary.models, scenario_hashes)
    coherence = coherence_stats(results, summary.models, scenarios)
    criteria = success_criteria(results, scenarios, summary.models, sources, scenario_hashes, fc=fc,
                                coherence=coherence)
    tables = [summary_table(summary), criteria_table(criteria), category_table(summary)]
    if fc.models:
        tables.append(function_calling_table(fc))
    if coherence:
        tables.append(coherence_table(coherence))
    judged = judge_stats(results, scenarios)
    if judged:
        tables.append(judge_table(judged))
    if has_repeats(results):
        tables.append(repeats_table(repeat_stats(results, summary.models)))
    if specs and any(v.get("backend") == "architecture" for v in specs.values()):
        tables.append(architecture_table(results, summary, specs))
    audits = fault_audit(results)
    if audits:
        tables.append(fault_table(audits))
    tables += [scenario_table(results, summary.models), failures_table(results)]
    return tables
