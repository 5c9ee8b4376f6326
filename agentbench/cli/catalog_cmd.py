"""``agentbench models list|show`` and ``agentbench tools list|show``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from agentbench.cli import common
from agentbench.cli.common import out
from agentbench.models.registry import resolve_model
from agentbench.report.tables import Table
from agentbench.tools import all_tool_specs, tool_spec

models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
tools_app = typer.Typer(help="The tools scenarios can use.", no_args_is_help=True)


@models_app.command("list")
def list_models(json_output: common.JsonOption = False, models_file: common.ModelsFileOption = None) -> None:
    """List the registered models (built-in plus --models-file)."""
    entries = common.registry(models_file)
    if json_output:
        common.print_json({k: v.model_dump(exclude_none=True) for k, v in sorted(entries.items())})
        return
    table = Table("Models", ["key", "backend", "model", "description"])
    table.rows = [[k, v.backend, v.model_name or "-", v.description] for k, v in sorted(entries.items())]
    common.print_table(table)


@models_app.command("show")
def show_model(key: Annotated[str, typer.Argument(help="Model key.")], json_output: common.JsonOption = False,
               models_file: common.ModelsFileOption = None) -> None:
    """Show one registry entry with every setting."""
    spec = resolve_model(key, common.registry(models_file))
    data = spec.model_dump(exclude_none=True)
    if json_output:
        common.print_json(data)
        return
    table = Table(f"Model {key}", ["setting", "value"])
    table.rows = [[k, json.dumps(v) if not isinstance(v, str) else v] for k, v in data.items()]
    common.print_table(table)


@tools_app.command("list")
def list_tools(json_output: common.JsonOption = False) -> None:
    """List every tool with its OpenAI function schema (--json) or a one-line summary."""
    specs = all_tool_specs()
    if json_output:
        common.print_json([s.openai_schema() for s in specs])
        return
    table = Table("Tools", ["name", "group", "arguments", "description"])
    for spec in specs:
        props = spec.openai_schema()["function"]["parameters"].get("properties", {})
        table.rows.append([spec.name, spec.group, ", ".join(props), spec.description.splitlines()[0]])
    common.print_table(table)


@tools_app.command("show")
def show_tool(name: Annotated[str, typer.Argument(help="Tool name.")]) -> None:
    """Print one tool's full description and OpenAI schema."""
    spec = tool_spec(name)
    out.print(f"[bold]{spec.name}[/bold] ({spec.group})\n")
    out.print(spec.description, markup=False)
    common.print_json(spec.openai_schema())
