"""The ``agentbench`` command line (typer + rich).

Exit codes: 0 the command completed (a run completed, whatever its scores); 1 invalid input
(scenario, registry, option values, unknown names); 2 command-line usage error; 3 infrastructure
failure (some scenario runs ended in ``endpoint_error`` or ``error``); 4 ``meta-eval`` found a grader
that missed a fault or failed a gold solution; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM). An
interrupted or terminated run or bench stores what it finished first.
"""

from __future__ import annotations

import sys

import typer

from agentbench import __version__
from agentbench.cli import (
    bench_cmd,
    catalog_cmd,
    compare_cmd,
    metaeval_cmd,
    run_cmd,
    runs_cmd,
    scenarios_cmd,
    serve_cmd,
)
from agentbench.cli.common import EXIT_BAD_INPUT, EXIT_INFRASTRUCTURE, err
from agentbench.cli.termination import EXIT_INTERRUPTED, EXIT_TERMINATED, SigtermInterrupts, interruption
from agentbench.errors import AgentbenchError, EndpointError, ScenarioError

app = typer.Typer(
    name="agentbench", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Choose the open LLM to build your agent on: scripted scenarios, real tools, graders, reports.",
)
app.command("run")(run_cmd.run_command)
app.command("scenario")(run_cmd.scenario_command)
app.command("report")(runs_cmd.report_command)
app.command("compare")(compare_cmd.compare_command)
app.command("bench")(bench_cmd.bench_command)
app.command("meta-eval")(metaeval_cmd.metaeval_command)
app.command("serve")(serve_cmd.serve_command)
app.add_typer(scenarios_cmd.app, name="scenarios")
app.add_typer(catalog_cmd.models_app, name="models")
app.add_typer(catalog_cmd.tools_app, name="tools")
app.add_typer(runs_cmd.runs_app, name="runs")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """agentbench: serve, drive, grade and compare open models for agent work."""


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app and turn expected errors into messages and exit codes.

    Typer handles usage errors and ``typer.Exit`` itself (standalone mode raises ``SystemExit``);
    agentbench's own errors are caught here so no traceback reaches a user for bad input.
    """
    sigterm = SigtermInterrupts()
    try:
        with sigterm:
            app(args=argv, prog_name="agentbench")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        # typer reports any KeyboardInterrupt that reaches it as 130, Terminated included
        return EXIT_TERMINATED if sigterm.received and code == EXIT_INTERRUPTED else code
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM, where typer let it through
        how, code = interruption(exc)
        err.print(how)
        return code
    except EndpointError as exc:
        err.print(f"endpoint error: {exc}", markup=False, highlight=False)
        return EXIT_INFRASTRUCTURE
    except ScenarioError as exc:
        err.print(str(exc), markup=False, highlight=False)
        return EXIT_BAD_INPUT
    except AgentbenchError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        return EXIT_BAD_INPUT
    return 0


def console_main() -> None:
    """The ``agentbench`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
