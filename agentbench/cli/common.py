"""Pieces shared by the CLI commands: consoles, common options, loaders and table rendering."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from agentbench.models.registry import ModelSpec, adhoc_openai_model, load_registry, resolve_model
from agentbench.report.tables import Table
from agentbench.scenario.loader import ScenarioLibrary, load_library
from agentbench.store import ResultStore, results_dir

#: Exit codes (documented in the README).
EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_INFRASTRUCTURE = 0, 1, 2, 3

out = Console(soft_wrap=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)  # soft wrap: file:line messages stay on one line

ScenariosDirOption = Annotated[
    list[Path] | None,
    typer.Option("--scenarios-dir", help="Extra folder of scenario YAML files (repeatable; also "
                 "AGENTBENCH_SCENARIOS_DIR).", show_default=False),
]
ModelsFileOption = Annotated[
    Path | None,
    typer.Option("--models-file", help="YAML file adding or overriding model entries "
                 "(also AGENTBENCH_MODELS_FILE).", show_default=False),
]
ResultsDirOption = Annotated[
    Path | None,
    typer.Option("--results-dir", help="Where runs are stored (default ./agentbench-results, "
                 "or AGENTBENCH_RESULTS_DIR).", show_default=False),
]
BaseUrlOption = Annotated[
    str | None, typer.Option(help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1.", show_default=False)
]
ModelNameOption = Annotated[
    str | None, typer.Option(help="Model name served at --base-url (it becomes the model key).", show_default=False)
]
SearchOption = Annotated[
    str | None,
    typer.Option("--search", help="Override every scenario's search backend: 'live' (real web search, needs "
                 "network and the 'search' extra) or 'record' (live, appending to the scenario's cassette).",
                 show_default=False),
]
UnsafeOption = Annotated[
    bool,
    typer.Option("--unsafe-no-sandbox", help="Run model-written code WITHOUT the bubblewrap sandbox when it is "
                 "unavailable (recorded in the run). Only on a machine you can afford to lose."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ToolProtocolOption = Annotated[
    str | None,
    typer.Option("--tool-protocol", help="Override the models' tool calling: 'native' (the server parses calls) or "
                 "'prompt' (tools described in the prompt, calls parsed from the text; docs/tool-protocols.md). "
                 "Stored with the run.", show_default=False),
]
ThinkingOption = Annotated[
    str | None,
    typer.Option("--thinking", help="'on' or 'off': enable_thinking in the chat_template_kwargs sent with every "
                 "request (Qwen3 and other reasoning models). Stored with the run.", show_default=False),
]
ForceGoldOption = Annotated[
    bool,
    typer.Option("--force-gold", help="Forced gold decoding: every request forces the scenario's gold reply, in the "
                 "text the model family's tool parser reads, with a structured-output regex (vLLM). Proves the "
                 "serving pipeline (chat template, parser, graders) on any weights, synthetic ones included; it "
                 "measures the pipeline, not the model, and the run says so (docs/serving.md)."),
]
JudgeOption = Annotated[
    str | None,
    typer.Option("--judge", help="Model key of an optional LLM judge for the scenarios' judge: rubrics "
                 "(docs/metrics.md#llm-judge); off by default. Its calls are cached in the results dir.",
                 show_default=False),
]
JudgeBaseUrlOption = Annotated[
    str | None,
    typer.Option("--judge-base-url", help="Where the --judge model is served (needed for a vllm entry: start it "
                 "with `agentbench serve KEY` first).", show_default=False),
]

_OVERRIDABLE = ("openai", "vllm")  # backends that talk to a server (an architecture's members included)


def model_overrides(specs: list[ModelSpec], tool_protocol: str | None, thinking: str | None) -> list[ModelSpec]:
    """``specs`` with ``--tool-protocol`` and ``--thinking`` applied to every server-backed entry
    (and architecture member); the changed entries are what the run stores."""
    if tool_protocol is None and thinking is None:
        return specs
    if tool_protocol not in (None, "native", "prompt"):
        raise typer.BadParameter(f"--tool-protocol takes 'native' or 'prompt', not {tool_protocol!r}")
    if thinking not in (None, "on", "off"):
        raise typer.BadParameter(f"--thinking takes 'on' or 'off', not {thinking!r}")
    changed: list[str] = []

    def apply(spec: ModelSpec) -> ModelSpec:
        if spec.members:
            return spec.model_copy(update={"members": {k: apply(m) for k, m in spec.members.items()}})
        if spec.backend not in _OVERRIDABLE:
            return spec
        changed.append(spec.key)
        update: dict[str, Any] = {}
        if tool_protocol is not None:
            update["tool_protocol"] = tool_protocol
        if thinking is not None:
            update["chat_template_kwargs"] = {**(spec.chat_template_kwargs or {}), "enable_thinking": thinking == "on"}
        return spec.model_copy(update=update)

    result = [apply(s) for s in specs]
    if not changed:
        raise typer.BadParameter(f"--tool-protocol and --thinking apply to models served over HTTP (backend "
                                 f"openai or vllm); none of {', '.join(s.key for s in specs)} is one")
    return result


def force_gold(specs: list[ModelSpec], enabled: bool, selection: str) -> tuple[list[ModelSpec], str]:
    """``--force-gold``: every entry in forced gold mode, and the run's selection line labelled so reports
    say what the run measured (``ConfigError`` for an entry that cannot be forced)."""
    if not enabled:
        return specs, selection
    from agentbench.models.forced_gold import FORCED_GOLD_NOTE, force_gold_spec

    return [force_gold_spec(s) for s in specs], f"{selection}; {FORCED_GOLD_NOTE}"


def library(dirs: list[Path] | None) -> ScenarioLibrary:
    """The scenario library with the user's extra folders."""
    return load_library(dirs or [])


def registry(models_file: Path | None, base_url: str | None = None,
             model_name: str | None = None) -> dict[str, ModelSpec]:
    """The model registry, plus an ad-hoc OpenAI-compatible entry from ``--base-url``."""
    entries = load_registry(models_file)
    if base_url or model_name:
        if not (base_url and model_name):
            raise typer.BadParameter("--base-url and --model-name go together")
        entries[model_name] = adhoc_openai_model(base_url, model_name)
    return entries


def tool_options(search: str | None, unsafe: bool) -> dict[str, Any]:
    """Run-level tool settings from the command line (stored with the run's plan)."""
    options: dict[str, Any] = {}
    if search is not None:
        if search not in ("live", "record"):
            raise typer.BadParameter(f"--search takes 'live' or 'record', not {search!r} (scenarios choose "
                                     "corpus or replay themselves)")
        options["search_override"] = search
    if unsafe:
        options["allow_unsafe_code"] = True
    return options


def judge_options(judge: str | None, judge_base_url: str | None, entries: dict[str, ModelSpec],
                  results_root: Path) -> dict[str, Any]:
    """``{"judge": settings}`` for the run's options when ``--judge`` was given (else ``{}``)."""
    from agentbench.grading.judge import CACHE_FILE, JUDGE_OPTION, judge_settings

    if judge is None:
        if judge_base_url is not None:
            raise typer.BadParameter("--judge-base-url needs --judge")
        return {}
    spec = resolve_model(judge, entries)
    if judge_base_url is not None:
        spec = spec.model_copy(update={"base_url": judge_base_url})
    settings = judge_settings(spec, (results_root / CACHE_FILE).resolve())
    return {JUDGE_OPTION: settings.model_dump()}


def store(option: Path | None) -> ResultStore:
    """The results store at ``--results-dir`` (or its default)."""
    return ResultStore(results_dir(option))


def print_json(data: Any) -> None:
    """JSON on stdout, undecorated (for pipes)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(table: Table, console: Console = out) -> None:
    """Render a report table with rich."""
    rich_table = RichTable(title=table.title, title_justify="left", show_lines=False)
    for header in table.headers:
        rich_table.add_column(header, overflow="fold")
    for row in table.rows:
        rich_table.add_row(*[_style(cell) for cell in row])
    console.print(rich_table)
    if table.note:
        console.print(f"[dim]{table.note}[/dim]")


def _style(cell: str) -> str:
    cell = cell.replace("[", "\\[")
    if cell.startswith(("PASS", "ok")):
        return f"[green]{cell}[/green]"
    if cell.startswith(("FAIL", "MISSED", "FALSE")):
        return f"[red]{cell}[/red]"
    return cell
