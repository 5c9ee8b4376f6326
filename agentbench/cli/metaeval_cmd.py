"""``agentbench meta-eval``: check the graders against reference-noisy's faults and the gold solutions."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentbench.cli import common
from agentbench.cli.common import EXIT_OK, err, out
from agentbench.report.metaeval import Trial, count_trials, meta_evaluate, metaeval_tables

#: Exit code when a fault went uncaught or a gold solution failed a grader.
EXIT_GRADERS_FAILED = 4


def metaeval_command(
    suite: Annotated[str | None, typer.Option(help="Named suite (default: full).")] = None,
    scenarios: Annotated[str | None, typer.Option(help="Scenario ids or glob patterns, comma-separated.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Runs of gold and of each fault (catches flaky graders).")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Runs in flight.")] = 8,
    unsafe_no_sandbox: common.UnsafeOption = False,
    json_output: common.JsonOption = False,
    scenarios_dir: common.ScenariosDirOption = None,
) -> None:
    """Meta-evaluate the graders: recall on every injected fault (target 100%) and false failures
    on gold solutions (target 0). Exits 4 when a target is missed."""
    lib = common.library(scenarios_dir)
    if suite and scenarios:
        raise typer.BadParameter("give --suite or --scenarios, not both")
    chosen = lib.matching(scenarios) if scenarios else lib.suite(suite or "full")
    options = common.tool_options(None, unsafe_no_sandbox)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True, disable=json_output) as progress:
        task = progress.add_task("meta-eval", total=count_trials(chosen, repeats))

        def advance(trial: Trial) -> None:
            progress.update(task, advance=1, description=f"meta-eval: {trial.scenario_id}")

        meta = asyncio.run(meta_evaluate(chosen, repeats=repeats, concurrency=concurrency, on_trial=advance,
                                         tool_options=dict(options)))
    if json_output:
        common.print_json(meta.as_json())
    else:
        for table in metaeval_tables(meta):
            if table.rows or table.title != "Meta-evaluation problems":
                common.print_table(table)
        faults = len(meta.trials) - meta.gold_runs()
        verdict = "[green]all targets met[/green]" if meta.passed else "[red]targets missed[/red]"
        out.print(f"{len(chosen)} scenarios, {meta.gold_runs()} gold runs, {faults} fault runs: {verdict}")
    raise typer.Exit(EXIT_OK if meta.passed else EXIT_GRADERS_FAILED)
