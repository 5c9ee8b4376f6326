"""Runs untrusted (model-written) programs in a bubblewrap sandbox with resource limits.

What the sandboxed program sees (see ``docs/sandbox.md`` for the full list of flags):

* its own user, pid, network, IPC, UTS and cgroup namespaces (no network at all: only a loopback
  device of its own), its own session, and it dies with its parent;
* a read-only root made of ``/usr`` (plus the ``/bin``, ``/lib*``, ``/sbin`` links or binds), the
  Python installation prefix (``sys.base_prefix``) and the virtual environment (``sys.prefix``),
  each bound on its own, never their parents: the agentbench checkout, ``/etc``, ``/root`` and
  ``/home`` are invisible;
* the run's workspace, writable, at :data:`SANDBOX_WORKSPACE`; fresh size-capped tmpfs at ``/tmp``
  and ``/dev/shm``; its own ``/proc``; a minimal ``/dev``; a cleared environment.

Inside, :mod:`._sandbox_launcher` sets the rlimits (CPU seconds, address space, processes, file
size, open files) and execs the program. The parent enforces the wall-clock limit (killing the
whole process group; the pid namespace takes every descendant with it), caps the output it keeps
(head and tail, with a marker), and watches the size, entry count and depth of the workspace and
the output folder together (walking them by directory descriptors, so no path is too long to
count). After the run, anything nested deeper than the depth limit is removed, and only the
output files the caller names are read back, within a byte cap.

When this process runs as root, the sandbox runs as an unprivileged uid
(:data:`UNPRIVILEGED_UID`): the kernel never enforces ``RLIMIT_NPROC`` for uid 0, so a fork bomb
would otherwise be unbounded. The workspace is handed to that uid for the run and back afterwards,
and the directories are passed to bubblewrap as open descriptors, since that uid cannot traverse
``/root`` or pytest's ``/tmp/pytest-of-root``.

Without a usable bubblewrap, :func:`prepare` refuses with instructions, unless the caller allows
unsafe execution: then the program runs directly (same launcher, limits and timeout, no
isolation) and every result says ``"sandbox": "none (unsafe)"``.

This module's one job is the run: the public API, bubblewrap's command line and stage 0, and the
process. Workspace walks, accounting, pruning and ownership are in :mod:`._sandbox_tree`; the
input and output folders and the output pipes in :mod:`._sandbox_io` (names in use re-exported here).
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agentbench.errors import ToolError

# Re-exported: the public constants, and the private names tests reach into, stay importable here.
from ._sandbox_io import (  # noqa: F401  (re-exported)
    _MAX_OUTPUT_FILES,
    DRAIN_GRACE_S,
    KILL_GRACE_S,
    POLL_S,
    _await_eof,
    _Capture,
    _check_name,
    _pump,
    _read_outputs,
    _write_inputs,
)
from ._sandbox_tree import (  # noqa: F401  (re-exported)
    UNPRIVILEGED_UID,
    _owned_by_sandbox,
    _prune,
    _remove_tree,
    _walk,
    _WalkState,
    _workspace_over,
)

#: bubblewrap's path; tests point it elsewhere to simulate a machine without it.
BWRAP_PATH: str = shutil.which("bwrap") or "/usr/bin/bwrap"
#: Where the workspace appears inside the sandbox.
SANDBOX_WORKSPACE = "/workspace"
#: Where read-only inputs (the program text) and writable outputs (a JUnit file) appear inside.
SANDBOX_IO = "/run/agentbench"
SANDBOX_NAME = "bubblewrap"
UNSAFE_NAME = "none (unsafe)"
#: Top-level entries of ``/`` mirrored into the sandbox (as a symlink if one on the host).
_ROOT_ENTRIES = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_LAUNCHER_SOURCE = (Path(__file__).with_name("_sandbox_launcher.py")).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run."""

    wall_s: float = 10.0
    address_space: int = 1024**3  # bytes per process (RLIMIT_AS)
    nproc: int = 64  # processes and threads of the sandbox's uid in its user namespace
    file_size: int = 16 * 1024**2  # bytes per file written (RLIMIT_FSIZE)
    open_files: int = 256
    output_bytes: int = 64 * 1024  # kept per stream (stdout, stderr)
    workspace_bytes: int = 64 * 1024**2  # the workspace's total size; the run is killed above it
    workspace_entries: int = 20_000  # files and directories in the workspace
    workspace_depth: int = 64  # directory levels below the workspace; deeper entries are removed
    outputs_bytes: int = 16 * 1024**2  # read back from the output folder, all files together
    tmp_bytes: int = 64 * 1024**2  # size of the sandbox's /tmp (memory-backed)

    @property
    def cpu_s(self) -> int:
        """CPU seconds: the wall limit rounded up plus one, so busy loops also die by SIGXCPU."""
        return math.ceil(self.wall_s) + 1


@dataclass(frozen=True)
class Layout:
    """Paths as the program sees them: the workspace and the input/output directories."""

    workspace: str
    inputs: str
    outputs: str


@dataclass(frozen=True)
class SandboxResult:
    """What a sandboxed run did."""

    exit_code: int | None  # None if it was killed before exiting on its own
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    sandbox: str  # SANDBOX_NAME or UNSAFE_NAME
    limit: str | None = None  # the parent-enforced limit that ended the run, if any
    outputs: dict[str, bytes] = field(default_factory=dict)  # files the program left in outputs


# --------------------------------------------------------------------------- availability

_FIX_HINT = (
    "Install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`) and enable unprivileged "
    "user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1` on Debian kernels, "
    "`sysctl -w user.max_user_namespaces=15000`, and on Ubuntu 24.04+ "
    "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or run with "
    "--unsafe-no-sandbox to execute model code WITHOUT isolation."
)


def sandbox_status() -> tuple[bool, str]:
    """Whether the bubblewrap sandbox works here, and why not if it does not.

    Checked by actually starting an empty sandbox with the real flags (once per bubblewrap path).
    """
    return _probe(BWRAP_PATH)


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str) -> tuple[bool, str]:
    """Start ``true`` in a sandbox built with ``bwrap``; (ok, reason)."""
    if not os.access(bwrap, os.X_OK):
        return False, f"bubblewrap is not installed ({bwrap} not found). {_FIX_HINT}"
    with tempfile.TemporaryDirectory(prefix="agentbench-probe-") as tmp:
        try:
            result = _run(bwrap, Path(tmp), lambda _: ["/bin/sh", "-c", "exit 0"], {}, Limits(wall_s=20.0))
        except OSError as exc:
            return False, f"bubblewrap could not start: {exc}. {_FIX_HINT}"
    if result.exit_code != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return False, f"bubblewrap cannot create a sandbox here ({detail}). {_FIX_HINT}"
    return True, f"bubblewrap works ({bwrap})"


def prepare(allow_unsafe: bool) -> str:
    """The sandbox kind a run will use; ``ToolError`` with the fix if none is allowed."""
    ok, reason = sandbox_status()
    if ok:
        return SANDBOX_NAME
    if allow_unsafe:
        return UNSAFE_NAME
    raise ToolError(f"code execution is unavailable: the sandbox does not work. {reason}")


# --------------------------------------------------------------------------- running


def run(
    command: Callable[[Layout], list[str]],
    workspace: Path,
    *,
    inputs: dict[str, bytes] | None = None,
    outputs: Sequence[str] | None = None,
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
    allow_unsafe: bool = False,
) -> SandboxResult:
    """Run ``command(layout)`` in the sandbox with cwd = the workspace.

    ``inputs`` become read-only files under ``layout.inputs``. Of the files the program writes
    under ``layout.outputs``, those named in ``outputs`` (``None``: any, up to
    :data:`_MAX_OUTPUT_FILES`) come back in ``result.outputs``, at most ``limits.outputs_bytes``
    together; the output folder counts against the workspace limits while the program runs.
    ``env`` adds environment variables. Raises ``ToolError`` if the sandbox is unavailable and
    ``allow_unsafe`` is false.
    """
    kind = prepare(allow_unsafe)
    limits = limits or Limits()
    bwrap = BWRAP_PATH if kind == SANDBOX_NAME else None
    return _run(bwrap, workspace, command, inputs or {}, limits, env or {}, outputs=outputs)


def _run(
    bwrap: str | None, workspace: Path, command: Callable[[Layout], list[str]],
    inputs: dict[str, bytes], limits: Limits, env: dict[str, str] | None = None,
    outputs: Sequence[str] | None = None,
) -> SandboxResult:
    """Set up the I/O directories and ownership, run, collect outputs, restore ownership."""
    for name in outputs or ():
        _check_name(name, "output")
    workspace = Path(os.path.realpath(workspace))
    workspace.mkdir(parents=True, exist_ok=True)
    drop = bwrap is not None and os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="agentbench-io-") as io:
        io_dir = Path(io)
        io_dir.chmod(0o755)  # the sandbox's uid must reach in/ and out/
        _write_inputs(io_dir / "in", inputs)
        (io_dir / "out").mkdir()
        watched = [workspace, io_dir / "out"]
        with _owned_by_sandbox(watched, drop):
            try:
                if bwrap is None:
                    layout = Layout(str(workspace), str(io_dir / "in"), str(io_dir / "out"))
                    argv = _launcher(command(layout), limits)
                    result = _execute(argv, watched, limits, UNSAFE_NAME,
                                      {**_environment(str(workspace)), **(env or {})})
                else:
                    layout = Layout(SANDBOX_WORKSPACE, f"{SANDBOX_IO}/in", f"{SANDBOX_IO}/out")
                    binds, pairs = _plan_binds(workspace, io_dir, drop)
                    argv = _bwrap_argv(bwrap, binds, limits, env or {}) + _launcher(command(layout), limits)
                    argv = _stage0(pairs, argv) if drop else argv
                    result = _execute(argv, watched, limits, SANDBOX_NAME, {})
            finally:
                # Before ownership goes back and before anyone cleans up recursively: nothing may
                # stay deeper than the depth limit (a program can nest faster than the watchdog polls).
                pruned = sum(_prune(root, limits.workspace_depth) for root in watched)
        found = _read_outputs(io_dir / "out", outputs, limits.outputs_bytes)
    stderr = result.stderr
    if pruned:
        stderr += (f"\n[sandbox: {pruned} entries nested deeper than {limits.workspace_depth} levels "
                   "were removed from the workspace]")
    return SandboxResult(**{**result.__dict__, "stderr": stderr, "outputs": found})


def _launcher(target: list[str], limits: Limits) -> list[str]:
    """The command that sets ``limits`` and execs ``target`` (``-I -S``: fast, no site code)."""
    values = [limits.cpu_s, limits.address_space, limits.nproc, limits.file_size, limits.open_files]
    return [sys.executable, "-I", "-S", "-c", _LAUNCHER_SOURCE, *map(str, values), "--", *target]


def _environment(workspace: str) -> dict[str, str]:
    """The program's whole environment (nothing of the parent's is passed on)."""
    venv_bin = os.path.join(sys.prefix, "bin")
    return {
        "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        "PYTHONPATH": workspace,  # the model's own modules import from anywhere, as in a project
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",  # output written before a timeout kill is not lost
    }


def _python_dirs() -> list[str]:
    """The Python installation and virtual environment directories, without duplicates or nesting."""
    dirs: list[str] = []
    for d in sorted({os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)}, key=len):
        if d == "/" or d.startswith("/usr/") or d == "/usr":
            continue  # a system Python: already inside the /usr bind
        if not any(d.startswith(parent + "/") for parent in dirs):
            dirs.append(d)
    return dirs


def _bwrap_argv(bwrap: str, binds: list[tuple[str, str, bool]], limits: Limits, env: dict[str, str]) -> list[str]:
    """bubblewrap's command line; ``binds`` are (host source, sandbox destination, writable)."""
    argv = [
        bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
        "--new-session", "--hostname", "sandbox", "--clearenv",
    ]
    for key, value in {**_environment(SANDBOX_WORKSPACE), **env}.items():
        argv += ["--setenv", key, value]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in _ROOT_ENTRIES:
        host = f"/{name}"
        if os.path.islink(host):
            argv += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            argv += ["--ro-bind", host, host]
    argv += [
        "--proc", "/proc", "--dev", "/dev",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/tmp",
        "--size", str(limits.tmp_bytes), "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",  # bubblewrap's /dev is an unbounded tmpfs; its devices still work
    ]
    for source, dest, writable in binds:
        argv += ["--bind" if writable else "--ro-bind", source, dest]
    return [*argv, "--remount-ro", "/", "--chdir", SANDBOX_WORKSPACE, "--"]


def _plan_binds(workspace: Path, io_dir: Path, drop: bool) -> tuple[list[tuple[str, str, bool]], list[str]]:
    """What bubblewrap binds, and (when dropping root) the stage-0 re-binds that make it reachable.

    An unprivileged uid cannot traverse ``/root`` (the Python prefix) or ``/tmp/pytest-of-root``
    (a workspace), so as root, stage 0 first binds each such directory onto an empty directory in
    ``io_dir``, in a private mount namespace, and bubblewrap binds it from there.
    """
    wanted = [(d, d, False) for d in _python_dirs()] + [(str(workspace), SANDBOX_WORKSPACE, True)]
    binds: list[tuple[str, str, bool]] = []
    stage0: list[str] = []
    for i, (source, dest, writable) in enumerate(wanted):
        if drop:
            mountpoint = io_dir / f"mnt{i}"
            mountpoint.mkdir()
            stage0 += [source, str(mountpoint)]
            source = str(mountpoint)
        binds.append((source, dest, writable))
    binds += [(str(io_dir / "in"), f"{SANDBOX_IO}/in", False), (str(io_dir / "out"), f"{SANDBOX_IO}/out", True)]
    return binds, stage0


def _stage0(pairs: list[str], argv: list[str]) -> list[str]:
    """As root: the command that makes the re-binds, becomes :data:`UNPRIVILEGED_UID` and execs
    ``argv`` (bubblewrap). ``RLIMIT_NPROC`` is never enforced for uid 0, so without this a fork
    bomb would be bounded only by the time limit."""
    return [sys.executable, "-I", "-S", "-c", _STAGE0_SOURCE, str(UNPRIVILEGED_UID), str(len(pairs) // 2),
            *pairs, *argv]


_STAGE0_SOURCE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def check(result, what):
    if result != 0:
        sys.stderr.write(f"sandbox stage 0: {what}: {os.strerror(ctypes.get_errno())}\\n")
        sys.exit(126)
uid, count = int(sys.argv[1]), int(sys.argv[2])
pairs, argv = sys.argv[3:3 + 2 * count], sys.argv[3 + 2 * count:]
check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
check(libc.mount(b"none", b"/", None, 16384 | 262144, None), "make mounts private")  # MS_REC|MS_PRIVATE
for source, target in zip(pairs[::2], pairs[1::2]):
    check(libc.mount(source.encode(), target.encode(), None, 4096 | 16384, None), "bind " + source)
os.setgroups([])
os.setgid(uid)
os.setuid(uid)
os.execv(argv[0], argv)
"""


# --------------------------------------------------------------------------- the process


def _execute(argv: list[str], watched: list[Path], limits: Limits, kind: str, env: dict[str, str]) -> SandboxResult:
    """Start ``argv`` in its own session (environment ``env``: bubblewrap sets the program's own;
    cwd: the workspace, ``watched[0]``), read its output until it ends or a limit is hit (the
    ``watched`` directories together hold too much)."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=watched[0], env=env,
        start_new_session=True,  # one process group to kill on timeout
    )
    out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
    try:
        limit = _pump(proc, {proc.stdout: out, proc.stderr: err}, start, limits, watched)
    finally:
        _kill_group(proc)
        _await_eof([proc.stdout, proc.stderr])
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    exit_code = proc.wait()
    timed_out = limit == "time"
    stderr = err.text()
    if limit == "workspace":
        stderr += (
            f"\n[sandbox: the program was killed: the workspace grew over its limit of "
            f"{limits.workspace_bytes} bytes, {limits.workspace_entries} entries or {limits.workspace_depth} "
            "levels (the output folder counts too), or held an entry the watchdog could not examine]"
        )
    elif timed_out:
        stderr += f"\n[sandbox: the program was killed after {limits.wall_s:g} s (time limit)]"
    return SandboxResult(
        exit_code=None if limit else exit_code, stdout=out.text(), stderr=stderr, timed_out=timed_out,
        duration_s=round(time.monotonic() - start, 3), sandbox=kind, limit=limit,
    )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group: bubblewrap (its pid namespace then dies with it), or in unsafe
    mode whatever the program left in its group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
