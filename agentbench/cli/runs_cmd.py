"""``agentbench runs list|show`` and ``agentbench report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentbench.cli import common
from agentbench.cli.common import out
from agentbench.grading.fc_metrics import library_scenarios
from agentbench.report.render import run_intro, write_report
from agentbench.report.tables import Table, report_tables

DEFAULT_REPORT_DIR = Path("agentbench-report")
runs_app = typer.Typer(help="Stored runs.", no_args_is_help=True)


@runs_app.command("list")
def list_runs(json_output: common.JsonOption = False, results: common.ResultsDirOption = None) -> None:
    """List stored runs, newest first."""
    rows = common.store(results).runs()
    if json_output:
        common.print_json(rows)
        return
    table = Table("Runs", ["run", "created", "status", "models", "scenarios", "repeats", "results", "passed"])
    table.rows = [[r["run_id"], r["created_at"][:19].replace("T", " "), r["status"], r["models"], str(r["scenarios"]),
                   str(r["repeats"]), str(r["results"]), str(r["passed"])] for r in rows]
    common.print_table(table)


@runs_app.command("show")
def show_run(run_id: Annotated[str | None, typer.Argument(help="Run id (default: the latest).")] = None,
             json_output: common.JsonOption = False, results: common.ResultsDirOption = None) -> None:
    """Show a stored run's comparison tables (or every result as JSON)."""
    store = common.store(results)
    run_id = run_id or store.latest_run_id()
    plan, found = store.plan(run_id), list(store.results(run_id))
    if json_output:
        common.print_json({"plan": plan.model_dump(), "results": [r.model_dump() for r in found]})
        return
    for line in run_intro(plan, found):
        out.print(line)
    # the run's own library (its --scenarios-dir too) and scenario hashes: a changed scenario is flagged
    for table in report_tables(found, plan.models, plan.model_specs, library_scenarios(plan.scenarios_dirs),
                               store.root, scenario_hashes=plan.scenario_hashes):
        common.print_table(table)


def report_command(
    run_id: Annotated[str | None, typer.Argument(help="Run id (default: the latest).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.md and report.html.")] = DEFAULT_REPORT_DIR,
    results: common.ResultsDirOption = None,
) -> None:
    """Write a run's report as Markdown and a self-contained HTML page."""
    store = common.store(results)
    run_id = run_id or store.latest_run_id()
    paths = write_report(store.plan(run_id), list(store.results(run_id)), out_dir, store.root)
    out.print(f"report: {paths[0]}  {paths[1]}")
