"""Moving the GPU from one model to the next: cold restart, or vLLM sleep mode.

``restart`` (the default) keeps one server at a time: the idle one is stopped, its GPU memory
confirmed released (NVML), then the next one starts. ``sleep`` keeps servers resident, each with
its own ``--gpu-memory-utilization`` share, started with ``--enable-sleep-mode`` and
``VLLM_SERVER_DEV_MODE=1``: the idle one is put to sleep (``POST /sleep?level=1``: weights to CPU
memory, KV cache dropped) and the next one woken (``POST /wake_up``), each confirmed with ``GET
/is_sleeping``. Every switch is timed; :meth:`ModelSwitcher.write` stores the times, the servers'
settings and startup figures as JSON (a run keeps them in ``runs/<id>/serving.json``).

A model's backend *acquires* its server before its scenarios and *releases* it after; a released
server stays up until another model needs the GPU, so two models acquired together (the members
of an architecture) are both served. Servers held at once must share the GPU: ``together`` (the most
servers one model holds at once) splits the memory share in restart mode as sleep mode does, and a
server that would not fit beside the ones in use is refused before it is spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec
from agentbench.serving.launch import LaunchOptions, effective_utilization, serve_spec
from agentbench.serving.server import ServerError, VLLMServer

__all__ = ["SWITCH_MODES", "ModelSwitcher", "SwitchMode", "SwitchRecord", "active_switcher", "serving_session"]

SwitchMode = Literal["restart", "sleep"]
SWITCH_MODES: tuple[str, ...] = ("restart", "sleep")
#: GPU memory shared by servers held at once: the resident ones in sleep mode, an architecture's members in
#: restart mode (split evenly unless --gpu-memory-utilization).
SLEEP_MODE_TOTAL_UTILIZATION = 0.9
#: More than this summed --gpu-memory-utilization cannot start: vLLM refuses when free memory is below its share.
_MAX_TOTAL_UTILIZATION = 1.0


@dataclass
class SwitchRecord:
    """One switch: what left the GPU, what came onto it, and how long each part took (seconds)."""

    to_model: str
    mode: str
    how: str  # "cold start", "wake" or "already awake"
    from_models: list[str] = field(default_factory=list)
    stop_s: float | None = None  # restart: SIGTERM -> group gone
    memory_release_s: float | None = None  # restart: group gone -> GPU memory back to the baseline
    memory_released: bool | None = None
    sleep_s: float | None = None  # sleep: POST /sleep -> /is_sleeping true, summed over idle servers
    wake_s: float | None = None  # sleep: POST /wake_up -> /is_sleeping false
    start_s: float | None = None  # a cold start: launch -> healthy
    total_s: float = 0.0  # the whole switch, as a caller waits for it

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy without the parts that did not happen."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class ModelSwitcher:
    """Serves registry entries one after another on one GPU (``mode``: restart or sleep).

    ``expected_models``: how many servers sleep mode keeps resident (their shares split 0.9 of the GPU);
    ``together``: the most servers one model holds at once (an architecture's launched vllm members),
    which restart mode splits 0.9 over. An explicit ``--gpu-memory-utilization`` (``options``) wins.
    """

    def __init__(self, mode: SwitchMode = "restart", options: LaunchOptions | None = None, *,
                 log_dir: Path | None = None, record_path: Path | None = None, expected_models: int = 1,
                 together: int = 1, on_phase: Callable[[str, str], None] | None = None,
                 **server_kwargs: Any) -> None:
        if mode not in SWITCH_MODES:
            raise ConfigError(f"--switch must be one of {', '.join(SWITCH_MODES)}, not {mode!r}")
        self.mode = mode
        self.options = options or LaunchOptions()
        if mode == "sleep":
            self.options = replace(self.options, sleep_mode=True)
        self.log_dir = log_dir
        self.record_path = record_path
        self.expected_models = max(1, expected_models)
        self.together = max(1, together)
        self.on_phase = on_phase or (lambda _key, _line: None)
        self.server_kwargs = server_kwargs
        self.servers: dict[str, VLLMServer] = {}
        self.records: list[SwitchRecord] = []
        self._in_use: dict[str, int] = {}
        self._sleeping: set[str] = set()
        self._stopped: list[VLLMServer] = []  # kept so their logs, figures and stop reports are stored
        self._lock = asyncio.Lock()

    def _options_for(self, spec: ModelSpec) -> LaunchOptions:
        if self.options.gpu_memory_utilization is not None or (self.mode == "restart" and self.together == 1):
            return self.options
        sharing = max(self.expected_models, self.together) if self.mode == "sleep" else self.together
        serve, _ = serve_spec(spec)
        share = round(SLEEP_MODE_TOTAL_UTILIZATION / sharing, 2)
        return replace(self.options, gpu_memory_utilization=min(serve.gpu_memory_utilization, share))

    def _check_fits(self, spec: ModelSpec, options: LaunchOptions) -> None:
        """Refuse, before spawning, a server whose share cannot fit beside the awake servers still held."""
        awake = {k: s for k, s in self.servers.items() if k not in self._sleeping}
        if not awake:
            return
        shares = {k: effective_utilization(s.spec, s.options) for k, s in awake.items()}
        wanted = effective_utilization(spec, options)
        total = sum(shares.values()) + wanted
        if total <= _MAX_TOTAL_UTILIZATION:
            return
        held = ", ".join(f"{k} ({v:g})" for k, v in shares.items())
        fair = round(SLEEP_MODE_TOTAL_UTILIZATION / (len(awake) + 1), 2)
        raise ServerError(f"cannot start {spec.key} (gpu_memory_utilization {wanted:g}) beside {held}, still in use: "
                          f"together they ask for {total:.2f} of the GPU. Servers held at once (an architecture's "
                          f"members) must share it: pass --gpu-memory-utilization {fair:g}, or --switch sleep")

    async def acquire(self, spec: ModelSpec) -> VLLMServer:
        """The server of ``spec``, healthy and awake; idle servers make room first (stopped or put to sleep)."""
        async with self._lock:
            start = time.perf_counter()
            idle = [k for k, s in self.servers.items() if k != spec.key and not self._in_use.get(k)
                    and k not in self._sleeping]
            record = SwitchRecord(to_model=spec.key, mode=self.mode, how="already awake", from_models=idle)
            for key in reversed(idle):  # newest first: the reverse of the start order
                await self._evict(key, record)
            server = self.servers.get(spec.key)
            if server is not None and spec.key in self._sleeping:
                record.how, record.wake_s = "wake", round(await server.wake_up(), 3)
                self._sleeping.discard(spec.key)
            elif server is None:
                options = self._options_for(spec)
                self._check_fits(spec, options)
                server = VLLMServer(spec, options, log_dir=self.log_dir,
                                    on_phase=lambda line: self.on_phase(spec.key, line), **self.server_kwargs)
                record.how = "cold start"
                began = time.perf_counter()
                try:
                    await server.start()
                except BaseException:
                    self._stopped.append(server)
                    self.write()
                    raise
                self.servers[spec.key] = server
                record.start_s = round(time.perf_counter() - began, 3)
            self._in_use[spec.key] = self._in_use.get(spec.key, 0) + 1
            record.total_s = round(time.perf_counter() - start, 3)
            self.records.append(record)
            self.write()
            return server

    async def _evict(self, key: str, record: SwitchRecord) -> None:
        server = self.servers[key]
        if self.mode == "sleep" and server.running:
            slept = await server.sleep(1)
            record.sleep_s = round((record.sleep_s or 0.0) + slept, 3)
            self._sleeping.add(key)
            return
        report = await server.stop()
        del self.servers[key]
        self._stopped.append(server)
        if report is not None:
            record.stop_s = round((record.stop_s or 0.0) + report.stop_s, 3)
            if report.memory_release_s is not None:
                record.memory_release_s = round((record.memory_release_s or 0.0) + report.memory_release_s, 3)
            if report.memory_released is not None and record.memory_released is not False:
                record.memory_released = report.memory_released
            if report.memory_released is False:
                self.write()
                raise ServerError(f"GPU memory of {key} was not released ({report.memory_note}); not starting "
                                  f"{record.to_model} on a GPU that may still be full")

    async def release(self, spec: ModelSpec) -> None:
        """``spec``'s backend is done with its server for now; it stays up until the GPU is needed."""
        async with self._lock:
            count = self._in_use.get(spec.key, 0)
            self._in_use[spec.key] = max(0, count - 1)

    async def switch_to(self, spec: ModelSpec) -> VLLMServer:
        """Release every server in use and acquire ``spec``'s (a timed switch, for benchmarks)."""
        async with self._lock:
            self._in_use.clear()
        return await self.acquire(spec)

    async def close(self) -> None:
        """Stop every server."""
        async with self._lock:
            await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """:meth:`close` for synchronous callers (also safe after the event loop has gone)."""
        for key, server in reversed(list(self.servers.items())):  # newest first
            server.stop_sync()
            self._stopped.append(self.servers.pop(key))
        self._sleeping.clear()
        self.write()

    def to_dict(self) -> dict[str, Any]:
        """The switch times and every server's settings, startup figures and stop report."""
        servers = [s.describe() for s in [*self._stopped, *self.servers.values()]]
        return {"mode": self.mode, "switches": [r.to_dict() for r in self.records], "servers": servers}

    def write(self) -> None:
        """Store :meth:`to_dict` at ``record_path`` (atomically), when one was given."""
        if self.record_path is None:
            return
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.record_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.to_dict(), indent=2, default=str), encoding="utf-8")
        temporary.replace(self.record_path)


#: The switcher of the run in progress; ``VLLMBackend`` uses it when set (``serving_session``).
active_switcher: contextvars.ContextVar[ModelSwitcher | None] = contextvars.ContextVar("active_switcher",
                                                                                        default=None)


@contextlib.contextmanager
def serving_session(switcher: ModelSwitcher) -> Iterator[ModelSwitcher]:
    """Make ``switcher`` the one vLLM backends use inside the block; stop its servers on the way out
    (also on Ctrl-C or an error)."""
    token = active_switcher.set(switcher)
    try:
        yield switcher
    finally:
        active_switcher.reset(token)
        switcher.close_sync()
