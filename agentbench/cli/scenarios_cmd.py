"""``agentbench scenarios list|show|validate|schema``."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer
from rich.syntax import Syntax

from agentbench.cli import common
from agentbench.cli.common import EXIT_BAD_INPUT, err, out
from agentbench.report.tables import Table
from agentbench.scenario.loader import validate_paths
from agentbench.scenario.schema import Scenario

app = typer.Typer(help="List, show, validate scenarios; print their JSON Schema.", no_args_is_help=True)
DIFFICULTIES = ("easy", "medium", "hard")


def difficulty_counts(scenarios: Iterable[Scenario]) -> dict[str, dict[str, int]]:
    """Scenarios per category (sorted) and difficulty: ``{category: {easy, medium, hard, total}}``."""
    counts: dict[str, dict[str, int]] = {}
    for s in scenarios:
        row = counts.setdefault(s.category, {**dict.fromkeys(DIFFICULTIES, 0), "total": 0})
        row[s.difficulty] += 1
        row["total"] += 1
    return dict(sorted(counts.items()))


@app.command("list")
def list_scenarios(json_output: common.JsonOption = False, scenarios_dir: common.ScenariosDirOption = None) -> None:
    """List every scenario, with counts per category and the suites."""
    lib = common.library(scenarios_dir)
    scenarios = sorted(lib.scenarios.values(), key=lambda s: (s.category, s.id))
    suites = {name: suite.select(lib.scenarios.values()) for name, suite in sorted(lib.suites.items())}
    if json_output:
        common.print_json({
            "scenarios": [{"id": s.id, "title": s.title, "category": s.category, "difficulty": s.difficulty,
                           "tags": s.tags, "tools": s.tools, "turns": len(s.turns), "source": s.source}
                          for s in scenarios],
            "counts": difficulty_counts(scenarios),
            "suites": {name: {"description": lib.suites[name].description, "scenarios": ids}
                       for name, ids in suites.items()},
        })
        return
    table = Table(f"{len(scenarios)} scenarios", ["id", "category", "difficulty", "turns", "tools", "title"])
    table.rows = [[s.id, s.category, s.difficulty, str(len(s.turns)), ", ".join(s.tools), s.title] for s in scenarios]
    common.print_table(table)
    counts = difficulty_counts(scenarios)
    by_category = [[c, *(str(row[d]) for d in DIFFICULTIES), str(row["total"])] for c, row in counts.items()]
    totals = Counter(str(s.difficulty) for s in scenarios)
    by_category.append(["all", *(str(totals[d]) for d in DIFFICULTIES), str(len(scenarios))])
    common.print_table(Table("By category and difficulty", ["category", *DIFFICULTIES, "total"], by_category))
    common.print_table(Table("Suites", ["suite", "scenarios", "description"],
                             [[n, str(len(ids)), lib.suites[n].description] for n, ids in suites.items()]))


@app.command("show")
def show_scenario(name: Annotated[str, typer.Argument(help="Scenario id.")],
                  scenarios_dir: common.ScenariosDirOption = None) -> None:
    """Print a scenario's YAML source and where it comes from."""
    scenario = common.library(scenarios_dir).get(name)
    out.print(f"[dim]# {scenario.source}[/dim]")
    out.print(Syntax(Path(scenario.source).read_text(encoding="utf-8"), "yaml", background_color="default"))


@app.command("validate")
def validate(paths: Annotated[list[Path], typer.Argument(help="Scenario files or folders.")]) -> None:
    """Check scenario files: every problem as file:line:column: field: message; exit 1 if any."""
    checked, problems = validate_paths(paths)
    for problem in problems:
        out.print(str(problem), markup=False, highlight=False)
    if problems:
        err.print(f"{len(problems)} problem(s) in {checked} file(s)")
        raise typer.Exit(EXIT_BAD_INPUT)
    err.print(f"{checked} scenario file(s) valid")


@app.command("schema")
def schema() -> None:
    """Print the scenario JSON Schema (for editor completion, e.g. yaml-language-server)."""
    document = Scenario.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["title"] = "agentbench scenario"
    typer.echo(json.dumps(document, indent=2))
