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
(head and tail, with a marker), and watches the workspace's size.

When this process runs as root, the sandbox runs as an unprivileged uid
(:data:`UNPRIVILEGED_UID`): the kernel never enforces ``RLIMIT_NPROC`` for uid 0, so a fork bomb
would otherwise be unbounded. The workspace is handed to that uid for the run and back afterwards,
and the directories are passed to bubblewrap as open descriptors, since that uid cannot traverse
``/root`` or pytest's ``/tmp/pytest-of-root``.

Without a usable bubblewrap, :func:`prepare` refuses with instructions, unless the caller allows
unsafe execution: then the program runs directly (same launcher, limits and timeout, no
isolation) and every result says ``"sandbox": "none (unsafe)"``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from agentbench.errors import ToolError

#: bubblewrap's path; tests point it elsewhere to simulate a machine without it.
BWRAP_PATH: str = shutil.which("bwrap") or "/usr/bin/bwrap"
#: Where the workspace appears inside the sandbox.
SANDBOX_WORKSPACE = "/workspace"
#: Where read-only inputs (the program text) and writable outputs (a JUnit file) appear inside.
SANDBOX_IO = "/run/agentbench"
#: The uid (and gid) sandboxed programs run as when agentbench itself runs as root.
UNPRIVILEGED_UID = 65534
SANDBOX_NAME = "bubblewrap"
UNSAFE_NAME = "none (unsafe)"
#: How often the parent checks the workspace's size while a program runs.
POLL_S = 0.05
#: After the main process exits, how long to wait for the rest of its output (unsafe mode: a
#: background process may hold the pipes open).
DRAIN_GRACE_S = 0.5
#: After the kill, how long to wait for the killed processes to let go of the pipes.
KILL_GRACE_S = 2.0
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
    limits: Limits | None = None,
    env: dict[str, str] | None = None,
    allow_unsafe: bool = False,
) -> SandboxResult:
    """Run ``command(layout)`` in the sandbox with cwd = the workspace.

    ``inputs`` become read-only files under ``layout.inputs``; files the program writes under
    ``layout.outputs`` come back in ``result.outputs``; ``env`` adds environment variables.
    Raises ``ToolError`` if the sandbox is unavailable and ``allow_unsafe`` is false.
    """
    kind = prepare(allow_unsafe)
    limits = limits or Limits()
    bwrap = BWRAP_PATH if kind == SANDBOX_NAME else None
    return _run(bwrap, workspace, command, inputs or {}, limits, env or {})


def _run(
    bwrap: str | None, workspace: Path, command: Callable[[Layout], list[str]],
    inputs: dict[str, bytes], limits: Limits, env: dict[str, str] | None = None,
) -> SandboxResult:
    """Set up the I/O directories and ownership, run, collect outputs, restore ownership."""
    workspace = Path(os.path.realpath(workspace))
    workspace.mkdir(parents=True, exist_ok=True)
    drop = bwrap is not None and os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="agentbench-io-") as io:
        io_dir = Path(io)
        io_dir.chmod(0o755)  # the sandbox's uid must reach in/ and out/
        _write_inputs(io_dir / "in", inputs)
        (io_dir / "out").mkdir()
        with _owned_by_sandbox([workspace, io_dir / "out"], drop):
            if bwrap is None:
                layout = Layout(str(workspace), str(io_dir / "in"), str(io_dir / "out"))
                argv = _launcher(command(layout), limits)
                result = _execute(argv, workspace, limits, UNSAFE_NAME, {**_environment(str(workspace)), **(env or {})})
            else:
                layout = Layout(SANDBOX_WORKSPACE, f"{SANDBOX_IO}/in", f"{SANDBOX_IO}/out")
                binds, pairs = _plan_binds(workspace, io_dir, drop)
                argv = _bwrap_argv(bwrap, binds, limits, env or {}) + _launcher(command(layout), limits)
                argv = _stage0(pairs, argv) if drop else argv
                result = _execute(argv, workspace, limits, SANDBOX_NAME, {})
        outputs = _read_outputs(io_dir / "out")
    return SandboxResult(**{**result.__dict__, "outputs": outputs})


def _write_inputs(in_dir: Path, inputs: dict[str, bytes]) -> None:
    """Write the input files, readable (not writable) by the sandbox's uid."""
    in_dir.mkdir()
    for name, data in inputs.items():
        if "/" in name or name in ("", ".", ".."):
            raise ValueError(f"bad input file name {name!r}")
        path = in_dir / name
        path.write_bytes(data)
        path.chmod(0o644)
    in_dir.chmod(0o755)


def _read_outputs(out_dir: Path, limit: int = 16 * 1024**2) -> dict[str, bytes]:
    """Regular files directly in ``out_dir`` (links not followed), at most ``limit`` bytes each."""
    found: dict[str, bytes] = {}
    with os.scandir(out_dir) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as f:
                    found[entry.name] = f.read(limit)
    return found


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


# --------------------------------------------------------------------------- ownership (root only)


def _entries(root: Path, limit: int = 200_000) -> Iterator[tuple[str, os.stat_result]]:
    """``root`` and everything under it (links not followed), with their ``lstat``."""
    stack = [str(root)]
    seen = 0
    while stack and seen < limit:
        path = stack.pop()
        try:
            st = os.lstat(path)
        except OSError:
            continue
        seen += 1
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError), os.scandir(path) as it:
                stack.extend(e.path for e in it)


@contextlib.contextmanager
def _owned_by_sandbox(roots: list[Path], drop: bool) -> Iterator[None]:
    """When the sandbox runs as :data:`UNPRIVILEGED_UID`, lend it ``roots`` for the run.

    Files with several hard links stay as they are: another link may be outside the workspace.
    Afterwards everything the sandbox uid owns goes back to the owner of each root, without
    set-id bits.
    """
    if not drop:
        yield
        return
    owners = {}
    for root in roots:
        st = os.lstat(root)
        owners[root] = (st.st_uid, st.st_gid)
        for path, est in _entries(root):
            if stat.S_ISDIR(est.st_mode) or (stat.S_ISREG(est.st_mode) and est.st_nlink == 1):
                os.chown(path, UNPRIVILEGED_UID, UNPRIVILEGED_UID, follow_symlinks=False)
    try:
        yield
    finally:
        for root, (uid, gid) in owners.items():
            for path, est in _entries(root):
                if est.st_uid == UNPRIVILEGED_UID or est.st_gid == UNPRIVILEGED_UID:
                    with contextlib.suppress(OSError):
                        os.chown(path, uid, gid, follow_symlinks=False)
                        if not stat.S_ISLNK(est.st_mode) and est.st_mode & (stat.S_ISUID | stat.S_ISGID):
                            os.chmod(path, stat.S_IMODE(est.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))


# --------------------------------------------------------------------------- the process


class _Capture:
    """Keeps the first and last ``limit / 2`` bytes of a stream and counts the rest."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        """Record ``chunk``; memory stays bounded by about twice the limit."""
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    def text(self) -> str:
        """The kept bytes as text, with a marker where bytes were dropped."""
        tail = bytes(self.tail[-self.tail_limit :]) if self.tail_limit else b""
        omitted = self.total - len(self.head) - len(tail)
        if omitted <= 0:
            return (bytes(self.head) + tail).decode("utf-8", errors="replace")
        marker = f"\n[... output truncated: {omitted} bytes omitted ...]\n"
        return bytes(self.head).decode("utf-8", "replace") + marker + tail.decode("utf-8", "replace")


def _execute(argv: list[str], workspace: Path, limits: Limits, kind: str, env: dict[str, str]) -> SandboxResult:
    """Start ``argv`` in its own session (environment ``env``: bubblewrap sets the program's own),
    read its output until it ends or a limit is hit."""
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        cwd=workspace, env=env,
        start_new_session=True,  # one process group to kill on timeout
    )
    out, err = _Capture(limits.output_bytes), _Capture(limits.output_bytes)
    try:
        limit = _pump(proc, {proc.stdout: out, proc.stderr: err}, start, limits, workspace)
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
            f"{limits.workspace_bytes} bytes or {limits.workspace_entries} entries]"
        )
    elif timed_out:
        stderr += f"\n[sandbox: the program was killed after {limits.wall_s:g} s (time limit)]"
    return SandboxResult(
        exit_code=None if limit else exit_code, stdout=out.text(), stderr=stderr, timed_out=timed_out,
        duration_s=round(time.monotonic() - start, 3), sandbox=kind, limit=limit,
    )


def _pump(
    proc: subprocess.Popen[bytes], captures: dict[object, _Capture], start: float, limits: Limits,
    watch: Path,
) -> str | None:
    """Read both pipes until EOF; return the limit that stopped the run (``"time"``,
    ``"workspace"``) or ``None``."""
    deadline = start + limits.wall_s
    exited_at: float | None = None
    next_check = start + POLL_S
    with selectors.DefaultSelector() as sel:
        for stream in captures:
            sel.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
        while sel.get_map():
            now = time.monotonic()
            if now >= deadline:
                return "time"
            if exited_at is None and _has_exited(proc):
                exited_at = now
            if exited_at is not None and now - exited_at > DRAIN_GRACE_S:
                return None  # a leftover background process holds the pipes: stop listening
            if now >= next_check:
                next_check = now + POLL_S
                if _workspace_over(watch, limits):
                    return "workspace"
            for key, _ in sel.select(min(deadline - now, POLL_S)):
                chunk = os.read(key.fd, 65536)
                if chunk:
                    captures[key.fileobj].add(chunk)
                else:
                    sel.unregister(key.fileobj)
    return None


def _await_eof(streams: list[IO[bytes] | None], timeout: float = KILL_GRACE_S) -> None:
    """Discard output until every writer has closed the pipes (up to ``timeout``): in the sandbox,
    every process holds them unless it closed them, so this waits for the killed pid namespace
    to be torn down before the call returns."""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        for stream in streams:
            if stream is not None and not stream.closed:
                sel.register(stream, selectors.EVENT_READ)
        while sel.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(left):
                if not os.read(key.fd, 65536):
                    sel.unregister(key.fileobj)


def _workspace_over(workspace: Path, limits: Limits) -> bool:
    """Whether the workspace holds more than its byte or entry limit (allocated blocks count)."""
    used = entries = 0
    for _, st in _entries(workspace, limit=limits.workspace_entries + 1):
        entries += 1
        used += st.st_blocks * 512
        if used > limits.workspace_bytes:
            return True
    return entries > limits.workspace_entries


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the main process has exited, without reaping it: while it is a zombie its pid
    cannot be reused, so killing its process group afterwards cannot hit a stranger."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group: bubblewrap (its pid namespace then dies with it), or in unsafe
    mode whatever the program left in its group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
