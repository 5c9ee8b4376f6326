"""The ``vllm serve`` command line for a registry entry, and the command and environment that run it.

Every flag used here was checked against vLLM 0.24.0 (``vllm/engine/arg_utils.py`` and
``vllm/entrypoints/openai/cli_args.py``). The model is passed as ``--model`` (accepted both by
``python -m vllm.entrypoints.openai.api_server`` and by ``vllm serve``).

The command that starts vLLM is configurable (``--vllm-command`` / ``AGENTBENCH_VLLM_COMMAND``, a
shell-quoted prefix), and so is extra environment for the server process only (``--vllm-env
KEY=VALUE`` / ``AGENTBENCH_VLLM_ENV``): vLLM may live in a different Python environment than
agentbench (on the project's H200 recipe the server needs ``PYTHONPATH=/tmp/site``).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec, ServeSpec, Variant

__all__ = [
    "ENV_VLLM_COMMAND",
    "ENV_VLLM_ENV",
    "LaunchOptions",
    "LaunchPlan",
    "chat_template_path",
    "default_vllm_command",
    "effective_utilization",
    "parse_env_pairs",
    "plan_launch",
    "resolve_vllm_command",
    "resolve_vllm_env",
    "serve_spec",
    "served_model_name",
    "vllm_args",
]

ENV_VLLM_COMMAND = "AGENTBENCH_VLLM_COMMAND"
ENV_VLLM_ENV = "AGENTBENCH_VLLM_ENV"
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class LaunchOptions:
    """Command-line overrides of an entry's server settings, and how to run vLLM.

    ``None`` keeps the entry's value. ``port`` ``None`` picks a free port.
    """

    port: int | None = None
    host: str = "127.0.0.1"
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    synthetic: bool = False  # serve a dummy-weight copy of the architecture (--load-format dummy)
    sleep_mode: bool = False  # --enable-sleep-mode and VLLM_SERVER_DEV_MODE=1 (/sleep, /wake_up)
    enforce_eager: bool = False  # no CUDA graphs / torch.compile: faster start, slower decode
    vllm_command: str | None = None  # shell-quoted prefix; None: AGENTBENCH_VLLM_COMMAND, else default
    vllm_env: tuple[str, ...] = ()  # KEY=VALUE for the server process only (after AGENTBENCH_VLLM_ENV)
    extra_args: tuple[str, ...] = ()  # appended after the entry's extra_args

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise ConfigError(f"--port must be between 1 and 65535, got {self.port}")
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(f"--gpu-memory-utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ConfigError(f"--max-model-len must be positive, got {self.max_model_len}")


@dataclass(frozen=True)
class LaunchPlan:
    """Everything needed to start one server: argv, extra environment and where it will listen."""

    argv: list[str]
    env: dict[str, str]
    host: str
    port: int
    served_model_name: str
    model: str  # what --model names: a repository, a local directory or a synthetic model folder
    default_command: bool  # argv starts with this Python's `-m vllm...` (vLLM must be importable)
    settings: dict[str, object] = field(default_factory=dict)  # effective settings, stored with the run

    @property
    def base_url(self) -> str:
        """The OpenAI base URL clients use."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/v1"


def default_vllm_command() -> list[str]:
    """This Python's ``-m vllm.entrypoints.openai.api_server``."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]


def resolve_vllm_command(option: str | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The command prefix that starts vLLM: ``option``, else ``AGENTBENCH_VLLM_COMMAND``, else the default."""
    environ = os.environ if environ is None else environ
    for text, source in ((option, "--vllm-command"), (environ.get(ENV_VLLM_COMMAND), ENV_VLLM_COMMAND)):
        if text is None or not text.strip():
            continue
        try:
            argv = shlex.split(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: cannot split {text!r} like a shell would: {exc}") from None
        return argv
    return default_vllm_command()


def parse_env_pairs(pairs: Sequence[str], source: str) -> dict[str, str]:
    """``KEY=VALUE`` strings as a mapping; ``ConfigError`` naming ``source`` for a malformed one."""
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not _ENV_KEY.fullmatch(key):
            raise ConfigError(f"{source}: expected KEY=VALUE with a valid variable name, got {pair!r}")
        env[key] = value
    return env


def resolve_vllm_env(pairs: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Extra environment for the server: ``AGENTBENCH_VLLM_ENV`` (shell-quoted ``KEY=VALUE`` words),
    then ``pairs`` (``--vllm-env``, later wins)."""
    environ = os.environ if environ is None else environ
    text = environ.get(ENV_VLLM_ENV, "")
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ConfigError(f"{ENV_VLLM_ENV}: cannot split {text!r}: {exc}") from None
    return {**parse_env_pairs(words, ENV_VLLM_ENV), **parse_env_pairs(pairs, "--vllm-env")}


def chat_template_path(name: str) -> str:
    """A template shipped in ``agentbench/data/chat_templates/NAME`` (its installed path), else ``name``
    as a path that must exist."""
    shipped = resources.files("agentbench.data").joinpath("chat_templates").joinpath(name)
    if shipped.is_file():
        return str(shipped)
    path = Path(name).expanduser()
    if path.is_file():
        return str(path.resolve())
    raise ConfigError(f"chat template {name!r}: neither a template shipped with agentbench "
                      "(agentbench/data/chat_templates/) nor an existing file")


def serve_spec(spec: ModelSpec) -> tuple[ServeSpec, Variant | None]:
    """The entry's serve section and, for a ``KEY@VARIANT`` key, the chosen variant."""
    if spec.serve is None:
        raise ConfigError(f"model {spec.key!r}: only backend 'vllm' entries (with a 'serve' section) can be served")
    _, at, name = spec.key.partition("@")
    if not at:
        return spec.serve, None
    if name not in spec.serve.variants:
        known = ", ".join(sorted(spec.serve.variants)) or "none"
        raise ConfigError(f"model {spec.key!r}: no variant {name!r} (variants: {known})")
    return spec.serve, spec.serve.variants[name]


def served_model_name(spec: ModelSpec) -> str:
    """The name the server answers to (``--served-model-name``): the entry's ``model_name``, else its key."""
    return spec.model_name or spec.key


def effective_utilization(spec: ModelSpec, options: LaunchOptions) -> float:
    """The ``--gpu-memory-utilization`` a server of ``spec`` runs (or would run) with under ``options``."""
    return options.gpu_memory_utilization or serve_spec(spec)[0].gpu_memory_utilization


def vllm_args(spec: ModelSpec, options: LaunchOptions, *, model: str, port: int) -> list[str]:
    """The server's arguments (after the command prefix) for ``spec`` with ``options`` applied."""
    serve, variant = serve_spec(spec)
    util = effective_utilization(spec, options)
    args = ["--model", model, "--served-model-name", served_model_name(spec), "--host", options.host,
            "--port", str(port),
            "--dtype", serve.dtype, "--max-model-len", str(options.max_model_len or serve.max_model_len),
            "--gpu-memory-utilization", f"{util:g}"]
    if serve.tool_parser and spec.tool_protocol == "native":
        args += ["--enable-auto-tool-choice", "--tool-call-parser", serve.tool_parser]
    if serve.chat_template:
        args += ["--chat-template", chat_template_path(serve.chat_template)]
    if serve.reasoning_parser:
        args += ["--reasoning-parser", serve.reasoning_parser]
    if variant is not None and variant.quantization:
        args += ["--quantization", variant.quantization]
    if options.synthetic:
        args += ["--load-format", "dummy"]
    if options.sleep_mode:
        args += ["--enable-sleep-mode"]
    if options.enforce_eager:
        args += ["--enforce-eager"]
    return [*args, *serve.extra_args, *options.extra_args]


def plan_launch(spec: ModelSpec, options: LaunchOptions, *, port: int, model: str | None = None) -> LaunchPlan:
    """The launch of ``spec``: ``model`` overrides what ``--model`` names (a synthetic folder)."""
    serve, variant = serve_spec(spec)
    model = model or (variant.hf_id if variant is not None else serve.hf_id)
    command = resolve_vllm_command(options.vllm_command)
    env = resolve_vllm_env(options.vllm_env)
    if options.sleep_mode:
        env.setdefault("VLLM_SERVER_DEV_MODE", "1")  # the /sleep, /wake_up and /is_sleeping routes
    args = vllm_args(spec, options, model=model, port=port)
    settings: dict[str, object] = {
        "model": model, "served_model_name": served_model_name(spec), "port": port, "synthetic": options.synthetic,
        "sleep_mode": options.sleep_mode, "command": shlex.join(command), "args": args,
        "env": sorted(env),  # names only: values may be private paths or tokens
    }
    return LaunchPlan(argv=[*command, *args], env=env, host=options.host, port=port,
                      served_model_name=served_model_name(spec),
                      model=model, default_command=command == default_vllm_command(), settings=settings)
