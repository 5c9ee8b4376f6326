"""``agentbench compare``: is one model better than another beyond run-to-run noise?"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from agentbench.cli import common
from agentbench.cli.common import out
from agentbench.errors import ConfigError
from agentbench.report.stats import mcnemar, paired_bootstrap_diff, wilson_interval
from agentbench.report.tables import Table, num, pct_ci
from agentbench.runner.records import ScenarioResult
from agentbench.store import ResultStore

ALPHA = 0.05
Key = tuple[str, int]
Side = tuple[str, str]
Pair = tuple[ScenarioResult, ScenarioResult]


def _by_key(results: list[ScenarioResult], model: str) -> dict[Key, ScenarioResult]:
    return {(r.scenario_id, r.repeat): r for r in results if r.model == model}


def _models_of(store: ResultStore, run_id: str) -> tuple[list[str], list[ScenarioResult]]:
    plan = store.plan(run_id)
    found = list(store.results(run_id))
    models = list(plan.models) + sorted({r.model for r in found} - set(plan.models))
    return models, found


def _pick(models: list[str], wanted: str | None, run_id: str) -> str:
    if wanted is None:
        if len(models) != 1:
            raise ConfigError(f"run {run_id} holds {len(models)} models ({', '.join(models)}); "
                              "pick one from each run with --models A,B")
        return models[0]
    if wanted not in models:
        raise ConfigError(f"model {wanted!r} is not in run {run_id} (it holds: {', '.join(models) or 'none'})")
    return wanted


def paired_sides(store: ResultStore, run_a: str, run_b: str | None,
                 models: str | None) -> tuple[Side, Side, list[Pair]]:
    """Resolve ``(run, model)`` of each side and pair their results by ``(scenario_id, repeat)``."""
    wanted = [m.strip() for m in models.split(",") if m.strip()] if models else []
    if models is not None and len(wanted) != 2:
        raise ConfigError(f"--models takes two model keys, A,B (got {models!r})")
    models_a, found_a = _models_of(store, run_a)
    if run_b is None:
        if not wanted:
            raise ConfigError(f"comparing within run {run_a} needs --models A,B (it holds: {', '.join(models_a)})")
        model_a, model_b = (_pick(models_a, m, run_a) for m in wanted)
        if model_a == model_b:
            raise ConfigError(f"--models names {model_a!r} twice; compare two different models within a run")
        found_b, run_b = found_a, run_a
    else:
        models_b, found_b = _models_of(store, run_b)
        model_a = _pick(models_a, wanted[0] if wanted else None, run_a)
        model_b = _pick(models_b, wanted[1] if wanted else None, run_b)
    side_a, side_b = _by_key(found_a, model_a), _by_key(found_b, model_b)
    common_keys = sorted(side_a.keys() & side_b.keys())
    if not common_keys:
        raise ConfigError(f"{model_a} (run {run_a}) and {model_b} (run {run_b}) ran no scenario "
                          "(scenario, repeat) in common; nothing to compare")
    return (run_a, model_a), (run_b, model_b), [(side_a[k], side_b[k]) for k in common_keys]


def compare_pairs(pairs: list[Pair]) -> dict[str, Any]:
    """The paired statistics of a comparison: pass rates, discordant counts, McNemar, bootstrap."""
    n = len(pairs)
    passed_a = sum(a.passed for a, _ in pairs)
    passed_b = sum(b.passed for _, b in pairs)
    a_only = sum(a.passed and not b.passed for a, b in pairs)
    b_only = sum(b.passed and not a.passed for a, b in pairs)
    p_value = mcnemar(a_only, b_only)
    diff, low, high = paired_bootstrap_diff([a.score for a, _ in pairs], [b.score for _, b in pairs])
    different = p_value < ALPHA
    verdict = ("different beyond noise (p < 0.05)" if different
               else f"the difference is within the noise (p = {p_value:.2f})")
    return {"pairs": n,
            "a": {"passed": passed_a, "pass_rate": passed_a / n, "pass_rate_ci95": list(wilson_interval(passed_a, n)),
                  "mean_score": sum(a.score for a, _ in pairs) / n},
            "b": {"passed": passed_b, "pass_rate": passed_b / n, "pass_rate_ci95": list(wilson_interval(passed_b, n)),
                  "mean_score": sum(b.score for _, b in pairs) / n},
            "a_pass_b_fail": a_only, "a_fail_b_pass": b_only, "mcnemar_p": p_value,
            "score_diff": {"mean": diff, "ci95": [low, high]}, "different": different, "verdict": verdict}


def compare_command(
    run_a: Annotated[str, typer.Argument(help="Run id (side A; also side B when comparing two models in it).")],
    run_b: Annotated[str | None, typer.Argument(help="Second run id (side B).")] = None,
    models: Annotated[str | None, typer.Option(help="A,B: the model of each side (two models within RUN_A, or one "
                                               "from each run, in order).")] = None,
    json_output: common.JsonOption = False,
    results: common.ResultsDirOption = None,
) -> None:
    """Paired comparison of two models on the scenario runs both made: McNemar test and bootstrap."""
    store = common.store(results)
    (run_a, model_a), (run_b_id, model_b), pairs = paired_sides(store, run_a, run_b, models)
    stats = compare_pairs(pairs)
    stats["a"] = {"run": run_a, "model": model_a, **stats["a"]}
    stats["b"] = {"run": run_b_id, "model": model_b, **stats["b"]}
    if json_output:
        common.print_json(stats)
        return
    a, b = stats["a"], stats["b"]
    table = Table(f"Compare: A = {model_a} ({run_a}) vs B = {model_b} ({run_b_id})",
                  ["side", "model", "run", "passed", "pass rate [95% CI]", "mean score"])
    for side, s in (("A", a), ("B", b)):
        table.rows.append([side, s["model"], s["run"], f"{s['passed']}/{stats['pairs']}",
                           pct_ci(s["passed"], stats["pairs"]), num(s["mean_score"], 3)])
    table.note = (f"{stats['pairs']} pairs matched by (scenario, repeat); A pass/B fail: {stats['a_pass_b_fail']}, "
                  f"A fail/B pass: {stats['a_fail_b_pass']}; McNemar exact p = {stats['mcnemar_p']:.4f}")
    common.print_table(table)
    diff = stats["score_diff"]
    out.print(f"score difference A - B: {diff['mean']:+.3f} (95% bootstrap CI {diff['ci95'][0]:+.3f} to "
              f"{diff['ci95'][1]:+.3f})", markup=False)
    out.print(f"verdict: {stats['verdict']}", markup=False)
