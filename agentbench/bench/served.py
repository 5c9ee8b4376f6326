"""Bench a registry model that agentbench serves itself: start its vLLM server
(:class:`agentbench.serving.server.VLLMServer`), hand the bench its address, stop it, and keep the
server's startup figures and stop report for the stored result.

:func:`served` is one server for one bench; :func:`server_factory` is the factory the settings sweep
(:func:`agentbench.bench.sweep.run_settings_sweep`) calls once per grid setting.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from agentbench.bench.sweep import vllm_flags
from agentbench.models.registry import ModelSpec
from agentbench.serving.launch import LaunchOptions

__all__ = ["ServedModel", "options_for_settings", "served", "server_factory", "tokenizer_dir"]

# Sweep settings that are LaunchOptions fields (so the entry's own flag is replaced, not repeated).
_OPTION_FIELDS = {"gpu_memory_utilization": "gpu_memory_utilization", "max_model_len": "max_model_len",
                  "enforce_eager": "enforce_eager"}


@dataclasses.dataclass
class ServedModel:
    """A started server as the bench sees it; ``record`` is filled with ``VLLMServer.describe()``
    (settings, startup figures, and after the stop the stop report)."""

    base_url: str
    model: str
    model_dir: str  # what --model named: a repository id or a local folder (a synthetic model)
    max_model_len: int | None
    record: dict[str, Any] = dataclasses.field(default_factory=dict)


def options_for_settings(options: LaunchOptions, settings: Mapping[str, Any]) -> LaunchOptions:
    """``options`` with one sweep setting applied: ``gpu_memory_utilization``, ``max_model_len`` and
    ``enforce_eager`` replace the launch options' own values, the others become extra vLLM flags."""
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in settings.items():
        if key in _OPTION_FIELDS:
            fields[_OPTION_FIELDS[key]] = value
        else:
            extra[key] = value
    return dataclasses.replace(options, **fields, extra_args=(*options.extra_args, *vllm_flags(extra)))


def tokenizer_dir(model_dir: str) -> Path | None:
    """The served model's folder when it holds a tokenizer (a synthetic or local model): the bench then
    builds prompts exactly as ``vllm bench serve`` does. ``None`` for a repository id."""
    folder = Path(model_dir)
    if folder.is_dir() and ((folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file()):
        return folder
    return None


@contextlib.asynccontextmanager
async def served(spec: ModelSpec, options: LaunchOptions, *, log_dir: Path, health_timeout_s: float = 900.0,
                 on_phase: Callable[[str], None] | None = None) -> AsyncIterator[ServedModel]:
    """Start ``spec``'s vLLM server, yield where it listens, stop it (whole process group, GPU memory
    release checked) however the block ends. ``ServerStartError`` when it does not come up."""
    from agentbench.serving.server import VLLMServer  # the server module pulls in httpx and NVML

    server = VLLMServer(spec, options, log_dir=log_dir, health_timeout_s=health_timeout_s, on_phase=on_phase)
    handle: ServedModel | None = None
    try:
        await server.start()
        assert server.plan is not None
        limit = server.plan.settings.get("args")
        handle = ServedModel(base_url=server.base_url, model=server.plan.served_model_name,
                             model_dir=server.plan.model, max_model_len=_max_model_len(limit))
        yield handle
    finally:
        await server.stop()
        if handle is not None:
            handle.record = server.describe()


def _max_model_len(args: object) -> int | None:
    """The ``--max-model-len`` the server was started with (the last one wins, as in argparse)."""
    if not isinstance(args, list):
        return None
    value = None
    for flag, nxt in itertools.pairwise(args):
        if flag == "--max-model-len":
            value = int(nxt)
    return value


def server_factory(spec: ModelSpec, options: LaunchOptions, *, log_dir: Path, records: list[dict[str, Any]],
                   health_timeout_s: float = 900.0, on_phase: Callable[[str], None] | None = None
                   ) -> Callable[[dict[str, Any]], contextlib.AbstractAsyncContextManager[tuple[str, str]]]:
    """The sweep's server factory: each call serves ``spec`` with one grid setting applied and appends
    the server's record (startup figures, stop report; ``error`` and the log tail when it did not
    start) to ``records``, one entry per call, in grid order."""

    @contextlib.asynccontextmanager
    async def start(settings: dict[str, Any]) -> AsyncIterator[tuple[str, str]]:
        from agentbench.serving.server import ServerStartError

        folder = log_dir / f"setting-{len(records) + 1}"
        record: dict[str, Any] = {"settings": dict(settings)}
        records.append(record)
        handle: ServedModel | None = None
        try:
            async with served(spec, options_for_settings(options, settings), log_dir=folder,
                              health_timeout_s=health_timeout_s, on_phase=on_phase) as handle:
                yield handle.base_url, handle.model
        except ServerStartError as exc:
            record.update(error=str(exc), cause=exc.cause, log_tail=exc.log_tail)
            raise
        finally:
            if handle is not None:
                record.update(handle.record)

    return start
