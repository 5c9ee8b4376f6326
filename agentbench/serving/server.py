"""One vLLM server process: start it, wait until healthy, read its startup figures, stop it cleanly.

The server runs in its own process group (its own session, so a terminal's Ctrl-C reaches only
agentbench, which then stops the group), writing stdout and stderr to a log file. ``start`` waits
for ``GET /health`` while following the log (phases are reported as they appear); a server that
exits while starting, or never becomes healthy, raises :class:`ServerStartError` naming the cause
(from known log signatures), the log's tail and a hint. ``stop`` sends SIGTERM to the group, waits,
sends SIGKILL after a grace period, waits until EVERY process of the group has exited, and then
confirms through NVML that the GPU memory this server added was given back.

Several servers may share the GPU (sleep mode, an architecture's members), and NVML may list no
per-process memory (containers, gVisor), so "given back" is judged on the device total: it must fall by
what this server added at its start (less what sleep mode gave back since), not back to the level
before the start, which other servers started or stopped since would make wrong.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from agentbench.errors import EndpointError
from agentbench.models.registry import ModelSpec
from agentbench.serving.launch import LaunchOptions, LaunchPlan, plan_launch
from agentbench.serving.startup_log import StartupFigures, StartupLog, diagnose
from agentbench.telemetry.nvml import open_device

__all__ = ["ServerError", "ServerStartError", "StopReport", "VLLMServer", "free_port", "group_pids", "preflight"]

GIB = 1024**3
_TAIL_LINES = 40
_live: set[VLLMServer] = set()  # servers to stop if agentbench exits without stopping them

# atexit cannot run when agentbench is SIGKILLed (a CI timeout, `timeout --kill-after`, the OOM killer), and
# a server in its own session outlives its parent, holding the GPU for the next run. So each server starts
# through this guard: it asks the kernel to SIGTERM it when its parent dies (PR_SET_PDEATHSIG survives
# execve), refuses to start if the parent is already gone, then becomes the server. -I: stdlib only.
_ORPHAN_GUARD = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.prctl(1, int(signal.SIGTERM), 0, 0, 0) != 0:\n"  # 1 = PR_SET_PDEATHSIG
    "    sys.stderr.write('agentbench: prctl(PR_SET_PDEATHSIG) failed; the server may outlive agentbench\\n')\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('agentbench exited before its vLLM server started')\n"
    "os.execvpe(sys.argv[2], sys.argv[2:], os.environ)\n"
)


def _last_lines(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def guarded_argv(argv: list[str]) -> list[str]:
    """``argv`` wrapped so the process gets SIGTERM when this process dies (Linux; unchanged elsewhere)."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-I", "-c", _ORPHAN_GUARD, str(os.getpid()), *argv]


class ServerError(EndpointError):
    """A server could not be started, stopped, put to sleep or woken (an infrastructure failure)."""


class ServerStartError(ServerError):
    """The server exited while starting, or did not become healthy in time."""

    def __init__(self, message: str, *, cause: str, hint: str, log_tail: str = "", log_path: Path | None = None):
        self.cause, self.hint, self.log_tail, self.log_path = cause, hint, log_tail, log_path
        super().__init__(message)


@dataclass
class StopReport:
    """How a stop went (stored with the run)."""

    stop_s: float  # SIGTERM -> every process of the group gone
    signal: str  # "SIGTERM", "SIGKILL" (the grace period ran out) or "none" (it had already exited)
    exit_code: int | None
    group_exited: bool
    memory_released: bool | None  # None: not checked (no NVML) -- see memory_note
    memory_release_s: float | None = None  # group gone -> the memory this server held given back
    memory_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def group_pids(pgid: int) -> set[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group still has members
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return set()
        return {pgid}
    pids: set[int] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it exited while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != "Z":
            pids.add(int(entry.name))
    return pids


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (bound the way vLLM binds it: SO_REUSEADDR, so a
    port left in TIME_WAIT by a stopped server counts as free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host or "0.0.0.0", port))
        except OSError:
            return True
    return False


def _vllm_importable(env: dict[str, str]) -> bool:
    if importlib.util.find_spec("vllm") is not None:
        return True
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return any((Path(p) / "vllm" / "__init__.py").is_file() for p in extra)


def preflight(plan: LaunchPlan) -> None:
    """Fail fast, before spawning anything, when the server obviously cannot start here.

    With the default command (this Python's ``-m vllm...``) vLLM must be importable and a GPU
    present. A custom ``--vllm-command`` only has to name an existing program: agentbench cannot
    tell what it needs.
    """
    problems: list[str] = []
    program = plan.argv[0]
    if shutil.which(program) is None and not Path(program).is_file():
        problems.append(f"the server command {program!r} was not found")
    if plan.default_command:
        if not _vllm_importable(plan.env):
            problems.append("vLLM is not installed for this Python (pip install vllm on a GPU machine), and no "
                            "--vllm-env PYTHONPATH=... points at one")
        if open_device() is None and shutil.which("nvidia-smi") is None:
            problems.append("no NVIDIA GPU is visible (no NVML device, no nvidia-smi)")
    if problems:
        raise ServerError("cannot start a vLLM server here: " + "; ".join(problems)
                          + ". Use --base-url to attach to a running server, or --vllm-command to start one "
                          "another way.")


class VLLMServer:
    """A vLLM OpenAI-compatible server for one registry entry; an async context manager.

    Args:
        spec: a ``backend: vllm`` entry (``KEY@VARIANT`` keys serve the variant).
        options: command-line overrides and how to run vLLM.
        log_path: the server's log file (default: ``log_dir/KEY.log``, ``log_dir`` default the
            current directory's ``agentbench-servers``).
        health_timeout_s: how long ``start`` waits for ``/health``.
        stop_grace_s: SIGTERM -> SIGKILL delay.
        memory_timeout_s / memory_tolerance_gib: how long ``stop`` waits for the GPU memory this
            server added to be given back, and how close counts.
        on_phase: called with each startup phase line (and a heartbeat while nothing happens).
    """

    def __init__(self, spec: ModelSpec, options: LaunchOptions | None = None, *, log_path: Path | None = None,
                 log_dir: Path | None = None, health_timeout_s: float = 900.0, stop_grace_s: float = 30.0,
                 memory_timeout_s: float = 60.0, memory_tolerance_gib: float = 0.5, gpu_index: int = 0,
                 on_phase: Callable[[str], None] | None = None, die_with_parent: bool = True) -> None:
        self.spec = spec
        # False only for `agentbench serve --detach`, whose server must outlive the command that started it.
        self.die_with_parent = die_with_parent
        self.options = options or LaunchOptions()
        safe = re.sub(r"[^A-Za-z0-9._@-]", "_", spec.key)
        self.log_path = log_path or (log_dir or Path("agentbench-servers")) / f"{safe}.log"
        self.health_timeout_s = health_timeout_s
        self.stop_grace_s = stop_grace_s
        self.memory_timeout_s = memory_timeout_s
        self.memory_tolerance_gib = memory_tolerance_gib
        self.gpu_index = gpu_index
        self.on_phase = on_phase or (lambda _line: None)
        self.plan: LaunchPlan | None = None
        self.last_stop: StopReport | None = None
        self._log = StartupLog()
        self._proc: subprocess.Popen[bytes] | None = None
        self._baseline: int | None = None  # device memory in use just before the start
        self._held: int | None = None  # what this server adds to it: measured when healthy, updated by sleep/wake
        self._pids_seen: set[int] = set()
        self._pid: int | None = None  # kept after the stop, for the record

    # -- state -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``http://host:port/v1``); known once ``start`` has planned the launch."""
        if self.plan is None:
            raise RuntimeError("the server has not been started")
        return self.plan.base_url

    @property
    def root_url(self) -> str:
        """``http://host:port`` (health, sleep and wake routes live there)."""
        return self.base_url.removesuffix("/v1")

    @property
    def startup(self) -> StartupFigures:
        """The figures parsed from the startup log so far (plus ``ready_s``, measured here)."""
        return self._log.figures

    @property
    def pid(self) -> int | None:
        """The server's process id (also its process group id)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once the server process has exited."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def describe(self) -> dict[str, Any]:
        """Settings, startup figures and the last stop, for storing with a run."""
        data: dict[str, Any] = {"key": self.spec.key, "log": str(self.log_path), "startup": self.startup.to_dict()}
        if self._held is not None:
            data["gpu_memory_held_gib"] = round(self._held / GIB, 2)
        if self.plan is not None:
            data.update(base_url=self.plan.base_url, settings=self.plan.settings)
        if self._pid is not None:
            data["pid"] = self._pid
        if self.last_stop is not None:
            data["stop"] = self.last_stop.to_dict()
        return data

    # -- start -------------------------------------------------------------------------------

    def _model_override(self) -> str | None:
        if not self.options.synthetic:
            return None
        from agentbench.serving.synth import cached_synthetic_model  # the synthetic-model writer

        # A path that depends only on the content, so vLLM's compile cache (keyed by it) is reused.
        return str(cached_synthetic_model(self.spec))

    async def start(self) -> None:
        """Launch the server and wait until it answers ``/health`` (``ServerStartError`` otherwise)."""
        if self._proc is not None:
            raise RuntimeError("a VLLMServer is started once")
        port = self.options.port or free_port(self.options.host or "127.0.0.1")
        plan = plan_launch(self.spec, self.options, port=port)
        preflight(plan)  # before writing or spawning anything
        if self.options.port is not None and port_in_use(self.options.host, port):
            # Otherwise /health would be answered at once by whatever listens there, while our vLLM exits.
            raise ServerStartError(f"vLLM server for {self.spec.key!r}: port {port} on {self.options.host or '0.0.0.0'}"
                                   " is already in use; nothing was started",
                                   cause="the port is already in use",
                                   hint="pick another --port, leave it out for a free one, or stop what listens there")
        model = self._model_override()
        self.plan = plan if model is None else plan_launch(self.spec, self.options, port=port, model=model)
        self._baseline = self._device_used()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"# agentbench: {' '.join(self.plan.argv)}\n".encode())
            log.flush()
            # Popen runs in the event loop's thread, which lives as long as the run: PDEATHSIG fires on the
            # death of the spawning thread, so it must not be a short-lived worker thread.
            argv = guarded_argv(self.plan.argv) if self.die_with_parent else self.plan.argv
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, env={**os.environ, **self.plan.env},
                                          start_new_session=True)
        self._pid = self._proc.pid
        _live.add(self)
        try:
            await self._wait_healthy()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self._terminate))  # never leave a half-started server
            raise

    async def _wait_healthy(self) -> None:
        assert self._proc is not None
        started = time.monotonic()
        deadline = started + self.health_timeout_s
        offset, partial, heartbeat = 0, b"", started
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                offset, partial = self._follow_log(offset, partial)
                self._pids_seen |= group_pids(self._proc.pid)
                code = self._proc.poll()
                if code is not None:
                    self._follow_log(offset, partial, final=True)
                    raise self._start_failure(f"exited with code {code} while starting")
                if await self._healthy(client) and await self._serves_us(client):
                    self._follow_log(offset, partial)
                    code = self._proc.poll()
                    if code is not None:  # something answered, but not us: we exited meanwhile
                        self._follow_log(offset, partial, final=True)
                        raise self._start_failure(f"exited with code {code} while another process answered on "
                                                  f"its port")
                    self._held = self._memory_added()
                    self.startup.ready_s = round(time.monotonic() - started, 2)
                    self.on_phase(f"ready on {self.base_url} after {self.startup.ready_s} s")
                    return
                now = time.monotonic()
                if now > deadline:
                    raise self._start_failure(f"did not become healthy within {self.health_timeout_s:g} s",
                                              timed_out=True)
                if now - heartbeat >= 30:
                    heartbeat = now
                    self.on_phase(f"still starting ({now - started:.0f} s)")
                await asyncio.sleep(0.25)

    async def _healthy(self, client: httpx.AsyncClient) -> bool:
        try:
            response = await client.get(f"{self.root_url}/health")
        except httpx.HTTPError:
            return False  # not listening yet
        return response.status_code == 200

    async def _serves_us(self, client: httpx.AsyncClient) -> bool:
        """Whether ``/v1/models`` lists our served name (False while it does not answer yet; True when the
        server has no such route, as a custom ``--vllm-command`` may not); another server answering raises."""
        assert self.plan is not None
        try:
            response = await client.get(f"{self.base_url}/models")
            names = [str(m.get("id")) for m in response.json().get("data", [])]
        except httpx.HTTPError:
            return False
        except (ValueError, AttributeError, TypeError):  # not an OpenAI model list
            return response.status_code == 404
        if response.status_code != 200:
            return response.status_code == 404
        if self.plan.served_model_name not in names:
            raise ServerStartError(
                f"vLLM server for {self.spec.key!r}: another server answers on port {self.plan.port} (it serves "
                f"{', '.join(names) or 'no model'}, not {self.plan.served_model_name!r})\n  log: {self.log_path}",
                cause="another server answers on the port", hint="pick another --port, or stop what listens there",
                log_tail=self.log_tail(), log_path=self.log_path)
        return True

    def _memory_added(self) -> int | None:
        """Device memory in use now less the pre-start level: what this server holds once healthy."""
        used = self._device_used()
        if used is None or self._baseline is None:
            return None
        return max(0, used - self._baseline)

    def _follow_log(self, offset: int, partial: bytes, final: bool = False) -> tuple[int, bytes]:
        """Parse the log lines written since ``offset``; report phases; keep an unfinished line
        (``final``: the writer is gone, so parse it too)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                data = log.read()
        except OSError:
            return offset, partial
        *lines, rest = (partial + data).split(b"\n")
        if final and rest:
            lines, rest = [*lines, rest], b""
        for line in lines:
            phase = self._log.feed(line.decode("utf-8", "replace"))
            if phase is not None:
                self.on_phase(phase)
        return offset + len(data), rest

    def log_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log."""
        return _last_lines(self._log_text(), lines)

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def _start_failure(self, what: str, timed_out: bool = False) -> ServerStartError:
        text = self._log_text()  # read once: the diagnosis and the tail come from the same text
        if timed_out:
            last = self._log.phases[-1] if self._log.phases else "none"
            cause, hint = (f"not healthy after {self.health_timeout_s:g} s (last phase seen: {last})",
                           "a cold start of an 8B model takes 50-90 s on an H200; raise --health-timeout, or read "
                           "the log for a hang")
        else:
            found = diagnose(text)
            cause, hint = found.cause, found.hint
        tail = _last_lines(text, _TAIL_LINES)
        message = (f"vLLM server for {self.spec.key!r} {what}: {cause}\n  hint: {hint}\n  log: {self.log_path}\n"
                   f"--- last lines of the log ---\n{tail}")
        return ServerStartError(message, cause=cause, hint=hint, log_tail=tail, log_path=self.log_path)

    # -- sleep mode --------------------------------------------------------------------------

    async def _post(self, route: str, params: dict[str, str] | None = None) -> None:
        async with httpx.AsyncClient(timeout=600.0) as client:
            try:
                response = await client.post(f"{self.root_url}{route}", params=params)
            except httpx.HTTPError as exc:
                raise ServerError(f"{self.spec.key}: POST {route} failed: {exc}") from exc
        if response.status_code == 404:
            raise ServerError(f"{self.spec.key}: POST {route} is not served: start the server with sleep mode "
                              "(--enable-sleep-mode and VLLM_SERVER_DEV_MODE=1; `--switch sleep` does both)")
        if response.status_code != 200:
            raise ServerError(f"{self.spec.key}: POST {route} answered HTTP {response.status_code}: "
                              f"{response.text[:300]}")

    async def is_sleeping(self) -> bool:
        """``GET /is_sleeping``."""
        async with httpx.AsyncClient(timeout=30.0) as client:
            try:
                response = await client.get(f"{self.root_url}/is_sleeping")
                response.raise_for_status()
                return bool(response.json()["is_sleeping"])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                raise ServerError(f"{self.spec.key}: GET /is_sleeping failed: {exc}") from exc

    async def sleep(self, level: int = 1) -> float:
        """Put the server to sleep (level 1: weights to CPU memory, KV cache dropped); seconds taken,
        until ``/is_sleeping`` confirms."""
        before = self._device_used()
        start = time.perf_counter()
        await self._post("/sleep", {"level": str(level)})
        if not await self.is_sleeping():
            raise ServerError(f"{self.spec.key}: /sleep returned but /is_sleeping says it is awake")
        seconds = time.perf_counter() - start
        self._track(before, self._device_used())  # vLLM frees the memory before /sleep answers
        return seconds

    async def wake_up(self) -> float:
        """Wake the server; seconds taken, until ``/is_sleeping`` confirms."""
        before = self._device_used()
        start = time.perf_counter()
        await self._post("/wake_up")
        if await self.is_sleeping():
            raise ServerError(f"{self.spec.key}: /wake_up returned but /is_sleeping says it still sleeps")
        seconds = time.perf_counter() - start
        self._track(before, self._device_used())
        return seconds

    def _device_used(self) -> int | None:
        device = open_device(self.gpu_index)
        return device.memory_used() if device is not None else None

    def _track(self, before: int | None, after: int | None) -> None:
        """Sleep gives memory back, waking takes it again: keep what this server holds up to date."""
        if self._held is None or before is None or after is None:
            self._held = None  # unknown from now on: the stop falls back to the pre-start level
            return
        self._held = max(0, self._held + after - before)

    # -- stop --------------------------------------------------------------------------------

    async def stop(self) -> StopReport | None:
        """Stop the server's whole process group and confirm its GPU memory was released.

        Returns ``None`` when it was never started (or already stopped)."""
        return await asyncio.shield(asyncio.to_thread(self._terminate))

    def stop_sync(self) -> StopReport | None:
        """:meth:`stop` for synchronous callers (exit handlers)."""
        return self._terminate()

    def detach(self) -> None:
        """Leave the server running after agentbench exits (``agentbench serve --detach``)."""
        _live.discard(self)
        self._proc = None

    def _terminate(self) -> StopReport | None:
        proc = self._proc
        if proc is None:
            return None
        self._proc = None
        _live.discard(self)
        pgid = proc.pid
        alive = bool(group_pids(pgid)) or proc.poll() is None
        before = self._device_used() if alive else None  # the level the memory this server holds must leave
        start = time.monotonic()
        used = "none"
        if alive:
            used = "SIGTERM"
            _signal_group(pgid, signal.SIGTERM)
            if not _wait_group(proc, pgid, self.stop_grace_s):
                used = "SIGKILL"
                _signal_group(pgid, signal.SIGKILL)
        exited = _wait_group(proc, pgid, 30.0)
        stop_s = time.monotonic() - start
        released, release_s, note = self._confirm_memory_released(before)
        self.last_stop = StopReport(round(stop_s, 3), used, proc.poll(), exited, released,
                                    None if release_s is None else round(release_s, 3), note)
        return self.last_stop

    def _release_target(self, before: int | None) -> tuple[int, str] | str:
        """The device memory level that means "released", with how it was found; or why it cannot be judged.

        ``before``: the level just before the stop (``None``: the server had already exited)."""
        if before is not None and self._held is not None:
            return before - self._held, (f"{before / GIB:.2f} GiB before the stop less the {self._held / GIB:.2f} GiB "
                                         "this server held")
        others = [s for s in _live if s is not self and s.gpu_index == self.gpu_index]
        if self._baseline is None:
            return "not checked: NVML is unavailable"
        if others:  # the pre-start level is only valid while no other server of ours shares the GPU
            return (f"not checked: the server's share is unknown (it had exited before the stop, or NVML failed), and "
                    f"{', '.join(s.spec.key for s in others)} share the GPU")
        return self._baseline, f"baseline {self._baseline / GIB:.2f} GiB"

    def _confirm_memory_released(self, before: int | None = None) -> tuple[bool | None, float | None, str]:
        device = open_device(self.gpu_index)
        if device is None:
            return None, None, "not checked: NVML is unavailable"
        target = self._release_target(before)
        if isinstance(target, str):
            return None, None, target
        level, how = target
        limit = level + int(self.memory_tolerance_gib * GIB)
        start = time.monotonic()
        while True:
            # Process ids often do not match (containers list host pids; gVisor lists none): the total decides.
            used, procs = device.memory_used(), device.process_memory() or {}
            ours = {pid: n for pid, n in procs.items() if pid in self._pids_seen}
            if used is not None and used <= limit and not ours:
                return True, time.monotonic() - start, ""
            if time.monotonic() - start > self.memory_timeout_s:
                gib = "?" if used is None else f"{used / GIB:.2f}"
                return False, None, (f"GPU memory still {gib} GiB, expected at most {limit / GIB:.2f} GiB ({how}, "
                                     f"tolerance {self.memory_tolerance_gib:g} GiB; server processes listed: "
                                     f"{sorted(ours)}) after {self.memory_timeout_s:g} s")
            time.sleep(0.2)

    async def __aenter__(self) -> VLLMServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group(proc: subprocess.Popen[bytes], pgid: int, timeout: float) -> bool:
    """Wait until the leader is reaped and no process of the group is left; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        proc.poll()  # reap the leader (a zombie leader would otherwise linger)
        if proc.returncode is not None and not group_pids(pgid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


@atexit.register
def _stop_leftovers() -> None:
    """Stop servers agentbench started and did not stop (an exception, Ctrl-C mid-start)."""
    for server in list(_live):
        with contextlib.suppress(Exception):
            print(f"agentbench: stopping the vLLM server for {server.spec.key} (pid {server.pid})", file=sys.stderr)
            server.stop_sync()
