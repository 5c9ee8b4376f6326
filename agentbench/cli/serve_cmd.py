"""``agentbench serve KEY``: start a registry entry's vLLM server, show its startup, stop it cleanly.

Also the serving options that ``agentbench run`` and ``agentbench scenario`` share (``--switch``,
``--synthetic``, ``--vllm-command``, ``--vllm-env``) and the session that serves a run's models.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from agentbench.cli import common
from agentbench.cli.common import EXIT_OK, err, out
from agentbench.cli.termination import interruption
from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec, resolve_model
from agentbench.serving.launch import LaunchOptions, parse_env_pairs
from agentbench.store import ResultStore, RunPlan

SwitchOption = Annotated[
    str, typer.Option("--switch", help="How a run moves the GPU between vLLM models: 'restart' (stop one, confirm "
                      "its memory is released, start the next) or 'sleep' (keep servers resident, sleep/wake).")]
SyntheticOption = Annotated[bool, typer.Option("--synthetic", help="Serve vLLM models with dummy weights "
                                               "(their real architecture; --load-format dummy).")]
VllmCommandOption = Annotated[
    str | None, typer.Option("--vllm-command", help="Shell-quoted command that starts vLLM (also "
                             "AGENTBENCH_VLLM_COMMAND; default: this Python's -m vllm.entrypoints.openai.api_server).",
                             show_default=False)]
VllmEnvOption = Annotated[
    list[str] | None, typer.Option("--vllm-env", help="KEY=VALUE for the server process only (repeatable; also "
                                   "AGENTBENCH_VLLM_ENV).", show_default=False)]
HealthTimeoutOption = Annotated[float, typer.Option("--health-timeout", min=1, help="Seconds to wait for /health.")]


def launch_options(*, synthetic: bool = False, vllm_command: str | None = None, vllm_env: Sequence[str] | None = None,
                   **overrides: Any) -> LaunchOptions:
    """The launch options from command-line values (``ConfigError`` for bad ones, checked now even when no
    server ends up being launched, so a typo is never silently ignored)."""
    parse_env_pairs(vllm_env or (), "--vllm-env")
    return LaunchOptions(synthetic=synthetic, vllm_command=vllm_command, vllm_env=tuple(vllm_env or ()), **overrides)


def attach_to(specs: Sequence[ModelSpec], base_url: str) -> list[ModelSpec]:
    """``--base-url`` without ``--model-name``: the vllm entries attach to that server instead of launching."""
    if not any(s.backend == "vllm" for s in specs):
        raise typer.BadParameter("--base-url needs --model-name, unless the models include a vllm entry to "
                                 "attach to the server at that address")
    return [s.model_copy(update={"base_url": base_url}) if s.backend == "vllm" else s for s in specs]


def phase_printer(key: str, quiet: bool = False) -> Callable[[str], None]:
    """Prints a server's startup phase lines on stderr as ``key: line`` (nothing when ``quiet``)."""

    def show(line: str) -> None:
        if not quiet:
            err.print(f"[dim]{key}:[/dim] {line}", highlight=False)

    return show


@contextlib.contextmanager
def run_serving(plan: RunPlan, store: ResultStore, switch: str, options: LaunchOptions,
                quiet: bool = False) -> Iterator[None]:
    """Serve the plan's vllm models for the block (``--switch`` mode); logs and switch times go in the run's
    folder (``servers/``, ``serving.json``). Nothing happens when no model needs a server launched."""
    per_entry = [_launched_vllm_keys(key, spec) for key, spec in plan.model_specs.items()]
    launched = list(dict.fromkeys(k for keys in per_entry for k in keys))
    if not launched:
        if switch != "restart":
            raise typer.BadParameter("--switch applies to vllm models that agentbench launches")
        yield
        return
    from agentbench.serving.switching import ModelSwitcher, SwitchMode, serving_session

    run_dir = store.root / "runs" / plan.run_id
    switcher = ModelSwitcher(cast(SwitchMode, switch), options, log_dir=run_dir / "servers",
                             record_path=run_dir / "serving.json", expected_models=len(launched),
                             together=max(len(set(keys)) for keys in per_entry),
                             on_phase=lambda key, line: phase_printer(key, quiet)(line))
    with serving_session(switcher):
        yield


def _launched_vllm_keys(key: str, spec: dict[str, Any]) -> list[str]:
    """The vllm entries agentbench must launch for one plan entry: itself, or an architecture's members
    (recursively), which are served at the same time."""
    if spec.get("backend") == "vllm":
        return [] if spec.get("base_url") else [key]
    return [k for name, member in (spec.get("members") or {}).items() for k in _launched_vllm_keys(name, member)]


def _figures_table(data: dict[str, Any]) -> None:
    for name, value in data.items():
        out.print(f"  {name:24} {value}", highlight=False)


async def _serve(server: Any, detach: bool, once: bool) -> dict[str, Any]:
    await server.start()
    summary: dict[str, Any] = server.describe()
    if detach:
        server.detach()
        summary["stop_with"] = f"kill -TERM -- -{summary['pid']}"
        return summary
    if not once:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        err.print(f"serving {server.spec.key} at {server.base_url} (Ctrl-C stops it)")
        while server.running and not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        if not server.running:
            summary["exited"] = f"the server exited by itself with code {server.returncode}; log: {server.log_path}"
    await server.stop()
    return {**summary, **server.describe()}


def serve_command(
    key: Annotated[str, typer.Argument(help="A vllm model key (KEY@VARIANT: a variant).")],
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: a free one).")] = 8000,
    gpu_memory_utilization: Annotated[float | None, typer.Option(help="Override the entry's share of GPU memory.",
                                                                 show_default=False)] = None,
    max_model_len: Annotated[int | None, typer.Option(help="Override the entry's --max-model-len.",
                                                      show_default=False)] = None,
    synthetic: SyntheticOption = False,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="No CUDA graphs or torch.compile "
                                                "(faster start, slower decode).")] = False,
    sleep_mode: Annotated[bool, typer.Option("--sleep-mode", help="Enable vLLM sleep mode "
                                             "(/sleep, /wake_up, /is_sleeping).")] = False,
    vllm_arg: Annotated[list[str] | None, typer.Option("--vllm-arg", help="One more vLLM argument, verbatim "
                                                       "(repeatable).", show_default=False)] = None,
    vllm_command: VllmCommandOption = None,
    vllm_env: VllmEnvOption = None,
    log: Annotated[Path | None, typer.Option("--log", help="Server log file (default agentbench-servers/KEY.log).",
                                             show_default=False)] = None,
    detach: Annotated[bool, typer.Option("--detach/--foreground", help="Leave the server running and return once "
                                         "it is healthy, or serve until Ctrl-C.")] = False,
    once: Annotated[bool, typer.Option("--once", help="Start, report the startup figures, stop and confirm the "
                                       "GPU memory was released (a startup check).")] = False,
    health_timeout: HealthTimeoutOption = 900.0,
    json_output: common.JsonOption = False,
    models_file: common.ModelsFileOption = None,
) -> None:
    """Start a vLLM server for a registry entry: startup phases as they happen, then its figures."""
    spec = resolve_model(key, common.registry(models_file))
    if spec.backend != "vllm":
        raise ConfigError(f"{key!r} is a {spec.backend} model; `agentbench serve` starts vllm entries only")
    options = launch_options(synthetic=synthetic, vllm_command=vllm_command, vllm_env=vllm_env, port=port or None,
                             gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
                             enforce_eager=enforce_eager, sleep_mode=sleep_mode, extra_args=tuple(vllm_arg or ()))
    from agentbench.serving.server import VLLMServer

    server = VLLMServer(spec, options, log_path=log, health_timeout_s=health_timeout, die_with_parent=not detach,
                        on_phase=phase_printer(spec.key))
    try:
        summary = asyncio.run(_serve(server, detach, once))
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM while starting: the group is stopped before we leave
        server.stop_sync()
        how, code = interruption(exc)
        err.print(f"{how}; the server was stopped")
        raise typer.Exit(code) from None
    if json_output:
        common.print_json(summary)
    else:
        out.print(f"[bold]{spec.key}[/bold] at {summary.get('base_url')} (pid {summary.get('pid')}), "
                  f"log {summary.get('log')}")
        _figures_table(summary.get("startup", {}))
        if "stop" in summary:
            _figures_table({f"stop.{k}": v for k, v in summary["stop"].items() if v not in (None, "")})
        if "stop_with" in summary:
            out.print(f"detached; stop it with: {summary['stop_with']}")
        if "exited" in summary:
            err.print(f"[red]{summary['exited']}[/red]")
    raise typer.Exit(common.EXIT_INFRASTRUCTURE if "exited" in summary else EXIT_OK)
