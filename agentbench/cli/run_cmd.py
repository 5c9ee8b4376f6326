"""``agentbench run`` (suites x models) and ``agentbench scenario`` (one scenario, in detail)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentbench.cli import common, serve_cmd
from agentbench.cli.common import EXIT_INFRASTRUCTURE, EXIT_OK, err, out
from agentbench.cli.termination import interruption
from agentbench.cli.transcript_view import print_result
from agentbench.grading.fc_metrics import fc_summary
from agentbench.grading.judge import judge_stats
from agentbench.models.registry import resolve_model
from agentbench.report.criteria import CriteriaSource, criteria_json, criteria_table, perf_source, success_criteria
from agentbench.report.render import write_report
from agentbench.report.summary import coherence_stats, fault_audit, has_repeats, repeat_stats, summarize
from agentbench.report.tables import (
    architecture_table,
    category_table,
    coherence_table,
    failures_table,
    fault_table,
    function_calling_table,
    judge_table,
    repeats_table,
    summary_table,
)
from agentbench.runner.records import ScenarioResult
from agentbench.runner.suite import execute_plan, make_plan
from agentbench.scenario.loader import ScenarioLibrary
from agentbench.store import ResultStore, RunPlan

DEFAULT_MODELS = "reference,reference-noisy"
DEFAULT_SUITE = "full"


def _execute(plan: RunPlan, lib: ScenarioLibrary, store: ResultStore, quiet: bool) -> list[ScenarioResult]:
    """Run the plan with a progress bar on stderr; return every result the run holds."""
    done = store.recover(plan.run_id)
    remaining = len(plan.work_items()) - len(done)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=quiet) as progress:
        task = progress.add_task(f"run {plan.run_id}", total=remaining)

        def advance(result: ScenarioResult) -> None:
            progress.update(task, advance=1, description=f"{result.model}: {result.scenario_id}")

        try:
            asyncio.run(execute_plan(plan, lib, store, on_result=advance, done=done))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM
            store.finish_run(plan.run_id, "interrupted")
            how, code = interruption(exc)
            err.print(f"{how}; stored results are kept. Resume with: agentbench run --resume {plan.run_id}")
            raise typer.Exit(code) from None
    return list(store.results(plan.run_id))


def _exit_code(results: Sequence[ScenarioResult]) -> int:
    broken = [r for r in results if r.outcome in ("endpoint_error", "error")]
    if broken:
        err.print(f"[red]{len(broken)} scenario run(s) ended in endpoint_error/error[/red]")
    return EXIT_INFRASTRUCTURE if broken else EXIT_OK


def _result_json(r: ScenarioResult) -> dict[str, Any]:
    return {"model": r.model, "scenario": r.scenario_id, "category": r.category, "repeat": r.repeat,
            "outcome": r.outcome, "passed": r.passed, "score": round(r.score, 4), "wall_s": round(r.wall_s, 4),
            "steps": r.steps, "faults": r.faults, "error": r.error,
            "failed_grades": [g.model_dump() for g in r.failed_grades()]}


def _summary_json(results: Sequence[ScenarioResult], models: Sequence[str], lib: ScenarioLibrary,
                  sources: Sequence[CriteriaSource] = (), hashes: Mapping[str, str] | None = None) -> dict[str, Any]:
    summary = summarize(results, models)
    data: dict[str, Any] = {
        m: {"runs": s.runs, "passed": s.passed, "pass_rate": s.pass_rate, "pass_rate_ci95": list(s.pass_rate_ci),
            "mean_score": s.mean_score, "tool_call_accuracy": s.tool_call_accuracy, "mean_steps": s.mean("steps"),
            "mean_wall_s": s.mean("wall_s"), "outcomes": dict(s.outcomes)}
        for m, s in summary.overall.items()}
    if has_repeats(results):
        for r in repeat_stats(results, models):
            data[r.model]["repeats"] = {"scenarios": r.scenarios, "k": r.k, "pass@1": r.pass_at_1,
                                        "pass@k": r.pass_at_k, "pass^k": r.pass_hat_k}
    fc = fc_summary(results, lib.scenarios, models, hashes)
    for model in fc.models:
        data[model]["function_calling"] = fc.as_json(model)
    coherence = coherence_stats(results, models, lib.scenarios)
    for c in coherence:
        data[c.model]["coherence"] = {"runs": c.runs, "checked_turns": c.turns, "conversation": c.conversation,
                                      "turn_mean": c.turn_mean, "coherent_runs": c.coherent_runs,
                                      "infrastructure_errors": c.infrastructure_errors}
    for model, judged in judge_stats(results, lib.scenarios).items():
        data[model]["judge"] = judged.as_json()
    criteria = success_criteria(results, lib.scenarios, models, sources, hashes, fc=fc, coherence=coherence)
    for model, rows in criteria_json(criteria).items():
        data[model]["criteria"] = rows
    return data


def run_command(
    suite: Annotated[str | None, typer.Option(help="Named suite (`agentbench scenarios list`); default: full.")] = None,
    scenarios: Annotated[str | None, typer.Option(help="Scenario ids or glob patterns, comma-separated.")] = None,
    models: Annotated[str | None, typer.Option(help=f"Model keys, comma-separated (default {DEFAULT_MODELS}).")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of each scenario per model.")] = 1,
    tool_protocol: common.ToolProtocolOption = None,
    thinking: common.ThinkingOption = None,
    force_gold: common.ForceGoldOption = False,
    judge: common.JudgeOption = None,
    judge_base_url: common.JudgeBaseUrlOption = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Scenario runs in flight per model.")] = 4,
    workers: Annotated[int, typer.Option(min=0, help="Worker processes sharing the runs (0: one per 16 of "
                                         "--concurrency, at most one per core).")] = 0,
    resume: Annotated[str | None, typer.Option(help="Finish an interrupted run (its stored plan is used).")] = None,
    base_url: common.BaseUrlOption = None,
    model_name: common.ModelNameOption = None,
    report_dir: Annotated[Path | None, typer.Option(help="Report folder (default: inside the run's folder).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write a report.")] = False,
    search: common.SearchOption = None,
    unsafe_no_sandbox: common.UnsafeOption = False,
    switch: serve_cmd.SwitchOption = "restart",
    synthetic: serve_cmd.SyntheticOption = False,
    vllm_command: serve_cmd.VllmCommandOption = None,
    vllm_env: serve_cmd.VllmEnvOption = None,
    json_output: common.JsonOption = False,
    scenarios_dir: common.ScenariosDirOption = None,
    models_file: common.ModelsFileOption = None,
    results: common.ResultsDirOption = None,
) -> None:
    """Run a suite of scenarios against one or more models; print the comparison and write a report."""
    store = common.store(results)
    if resume:
        plan = store.plan(resume)
        lib = common.library([Path(p) for p in plan.scenarios_dirs])
    else:
        lib = common.library(scenarios_dir)
        entries = common.registry(models_file, base_url if model_name else None, model_name)
        keys = models or (model_name if base_url and model_name else DEFAULT_MODELS)
        specs = [resolve_model(k.strip(), entries) for k in keys.split(",") if k.strip()]
        if base_url and not model_name:  # attach the vllm entries to a running server
            specs = serve_cmd.attach_to(specs, base_url)
        if suite and scenarios:
            raise typer.BadParameter("give --suite or --scenarios, not both")
        chosen = lib.matching(scenarios) if scenarios else lib.suite(suite or DEFAULT_SUITE)
        selection = f"scenarios {scenarios}" if scenarios else f"suite {suite or DEFAULT_SUITE}"
        specs = common.model_overrides(specs, tool_protocol, thinking)
        specs, selection = common.force_gold(specs, force_gold, selection)
        plan = make_plan(specs, chosen, repeats=repeats, concurrency=concurrency, workers=workers, selection=selection,
                         scenarios_dirs=[str(p.resolve()) for p in scenarios_dir or []],
                         models_file=str(models_file) if models_file else None,
                         tool_options={**common.tool_options(search, unsafe_no_sandbox),
                                       **common.judge_options(judge, judge_base_url, entries, store.root)})
        store.create_run(plan)
    serving = serve_cmd.launch_options(synthetic=synthetic, vllm_command=vllm_command, vllm_env=vllm_env)
    with serve_cmd.run_serving(plan, store, switch, serving, quiet=json_output):
        all_results = _execute(plan, lib, store, quiet=json_output)
    report_to = report_dir or store.root / "runs" / plan.run_id / "report"
    paths = None if no_report else write_report(plan, all_results, report_to, store.root)
    sources = [perf_source(store.root)]  # the performance criteria, from stored bench results
    if json_output:
        common.print_json({"run_id": plan.run_id, "report": [str(p) for p in paths or []],
                           "summary": _summary_json(all_results, plan.models, lib, sources, plan.scenario_hashes),
                           "results": [_result_json(r) for r in all_results]})
    else:
        _print_run(plan, all_results, paths, lib, sources)
    raise typer.Exit(_exit_code(all_results))


def _print_run(plan: RunPlan, results: Sequence[ScenarioResult], paths: tuple[Path, Path] | None,
               lib: ScenarioLibrary, sources: Sequence[CriteriaSource] = ()) -> None:
    summary = summarize(results, plan.models)
    out.print(f"[bold]run {plan.run_id}[/bold]: {len(results)} scenario runs "
              f"({len(plan.scenario_ids)} scenarios x {len(plan.models)} models x {plan.repeats} repeats)")
    fc = fc_summary(results, lib.scenarios, plan.models, plan.scenario_hashes)
    coherence = coherence_stats(results, plan.models, lib.scenarios)
    common.print_table(summary_table(summary))
    common.print_table(criteria_table(success_criteria(results, lib.scenarios, plan.models, sources,
                                                       plan.scenario_hashes, fc=fc, coherence=coherence)))
    common.print_table(category_table(summary))
    if fc.models:
        common.print_table(function_calling_table(fc))
    if coherence:
        common.print_table(coherence_table(coherence))
    judged = judge_stats(results, lib.scenarios)
    if judged:
        common.print_table(judge_table(judged))
    if has_repeats(results):
        common.print_table(repeats_table(repeat_stats(results, plan.models)))
    if any(spec.get("backend") == "architecture" for spec in plan.model_specs.values()):
        common.print_table(architecture_table(results, summary, plan.model_specs))
    audits = fault_audit(results)
    if audits:
        common.print_table(fault_table(audits))
    common.print_table(failures_table(results, limit=50))
    if paths:
        out.print(f"report: {paths[0]}  {paths[1]}")


def scenario_command(
    name: Annotated[str, typer.Argument(help="Scenario id (see `agentbench scenarios list`).")],
    model: Annotated[str | None, typer.Option("--model", help="Model key (default: reference).")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="How many times to run it.")] = 1,
    tool_protocol: common.ToolProtocolOption = None,
    thinking: common.ThinkingOption = None,
    force_gold: common.ForceGoldOption = False,
    judge: common.JudgeOption = None,
    judge_base_url: common.JudgeBaseUrlOption = None,
    base_url: common.BaseUrlOption = None,
    model_name: common.ModelNameOption = None,
    search: common.SearchOption = None,
    unsafe_no_sandbox: common.UnsafeOption = False,
    switch: serve_cmd.SwitchOption = "restart",
    synthetic: serve_cmd.SyntheticOption = False,
    vllm_command: serve_cmd.VllmCommandOption = None,
    vllm_env: serve_cmd.VllmEnvOption = None,
    json_output: common.JsonOption = False,
    scenarios_dir: common.ScenariosDirOption = None,
    models_file: common.ModelsFileOption = None,
    results: common.ResultsDirOption = None,
) -> None:
    """Run one scenario and show its transcript, every grade with its reason, and timings."""
    lib = common.library(scenarios_dir)
    scenario = lib.get(name)
    entries = common.registry(models_file, base_url if model_name else None, model_name)
    spec = resolve_model(model or (model_name if base_url and model_name else "reference"), entries)
    if base_url and not model_name:  # attach a vllm entry to a running server
        spec = serve_cmd.attach_to([spec], base_url)[0]
    store = common.store(results)
    spec = common.model_overrides([spec], tool_protocol, thinking)[0]
    [spec], selection = common.force_gold([spec], force_gold, f"scenario {name}")
    plan = make_plan([spec], [scenario], repeats=repeats, concurrency=1, selection=selection,
                     scenarios_dirs=[str(p.resolve()) for p in scenarios_dir or []],
                     tool_options={**common.tool_options(search, unsafe_no_sandbox),
                                   **common.judge_options(judge, judge_base_url, entries, store.root)})
    store.create_run(plan)
    serving = serve_cmd.launch_options(synthetic=synthetic, vllm_command=vllm_command, vllm_env=vllm_env)
    with serve_cmd.run_serving(plan, store, switch, serving, quiet=json_output):
        found = _execute(plan, lib, store, quiet=True)
    if json_output:
        common.print_json({"run_id": plan.run_id, "results": [r.model_dump() for r in found]})
    else:
        for result in found:
            print_result(result)
        out.print(f"[dim]stored as run {plan.run_id} in {store.root}[/dim]")
    raise typer.Exit(_exit_code(found))
