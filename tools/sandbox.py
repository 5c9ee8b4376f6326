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
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
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
from collections.abc import Callable, Iterator, Sequence
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
#: How a directory is opened while walking a tree: never through a link, never as a path.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: How a file is opened to read it back or to fix its mode (never through a link, never blocking).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
#: The most entries an ownership hand-over walks (the watchdog stops a run long before).
_OWNERSHIP_ENTRIES = 200_000
#: The most files of the output folder read back when the caller names none.
_MAX_OUTPUT_FILES = 256


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


def _check_name(name: str, what: str) -> None:
    """``ValueError`` unless ``name`` is a plain file name."""
    if "/" in name or "\0" in name or name in ("", ".", ".."):
        raise ValueError(f"bad {what} file name {name!r}")


def _write_inputs(in_dir: Path, inputs: dict[str, bytes]) -> None:
    """Write the input files, readable (not writable) by the sandbox's uid."""
    in_dir.mkdir()
    for name, data in inputs.items():
        _check_name(name, "input")
        path = in_dir / name
        path.write_bytes(data)
        path.chmod(0o644)
    in_dir.chmod(0o755)


def _read_outputs(out_dir: Path, names: Sequence[str] | None, limit: int) -> dict[str, bytes]:
    """The regular files ``names`` directly in ``out_dir`` (``None``: the first
    :data:`_MAX_OUTPUT_FILES` in name order), links not followed, at most ``limit`` bytes together;
    a file that is missing or not a regular file is left out."""
    found: dict[str, bytes] = {}
    dir_fd = os.open(out_dir, _DIR_FLAGS)
    try:
        if names is None:
            with os.scandir(dir_fd) as it:
                names = sorted(e.name for e in itertools.islice(it, _MAX_OUTPUT_FILES))
        for name in names:
            if limit <= 0:
                break
            try:
                fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    found[name] = f.read(limit)
                    limit -= len(found[name])
    finally:
        os.close(dir_fd)
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


# --------------------------------------------------------------------------- walking the tree


@dataclass
class _WalkState:
    """What a :func:`_walk` could not do."""

    errors: int = 0  # entries or directories that could not be examined (vanished ones aside)
    too_deep: bool = False  # an entry lies deeper than the depth limit
    truncated: bool = False  # the entry limit stopped the walk


def _walk(
    root: Path, state: _WalkState, *, max_depth: int, limit: int,
) -> Iterator[tuple[int, str, os.stat_result, int]]:
    """``root`` and everything under it, links not followed, as (directory descriptor, name,
    ``lstat``, depth); ``root`` itself comes first as (its own descriptor, ``"."``, ..., 0).

    Every look-up is relative to an open directory descriptor (``openat``/``fstatat`` with
    ``O_NOFOLLOW``): no path is longer than one name, so nothing hides beyond ``PATH_MAX``, and a
    directory swapped for a link while walking is never entered. Iterative: one descriptor is
    open per level of the current directory. Entries at ``max_depth + 1`` are yielded (so that
    they can be removed) and set ``state.too_deep``; nothing deeper is. An entry that vanishes
    meanwhile is skipped; any other failure counts in ``state.errors``. The descriptors are valid
    only until the generator resumes.
    """
    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return
    except OSError:
        state.errors += 1
        return
    refs = {root_fd: 1}  # open descriptor -> uses left (its listing, its subdirectories to visit)
    todo: list[tuple[int, str, int]] = []  # subdirectories to visit: (parent's descriptor, name, depth)

    def release(fd: int) -> None:
        refs[fd] -= 1
        if not refs[fd]:
            del refs[fd]
            os.close(fd)

    try:
        yield root_fd, ".", os.fstat(root_fd), 0
        seen = 1
        current: tuple[int, int] | None = (root_fd, 0)
        while current is not None or todo:
            if current is None:
                parent, name, depth = todo.pop()
                try:
                    fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
                except (FileNotFoundError, NotADirectoryError):
                    pass  # gone or no longer a directory since it was listed
                except OSError:
                    state.errors += 1
                else:
                    refs[fd] = 1
                    current = (fd, depth)
                finally:
                    release(parent)
                continue
            dir_fd, depth = current
            current = None
            try:
                with os.scandir(dir_fd) as it:
                    for entry in it:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        except OSError:
                            state.errors += 1
                            continue
                        seen += 1
                        if seen > limit:
                            state.truncated = True
                            return
                        if depth + 1 > max_depth:
                            state.too_deep = True
                        yield dir_fd, entry.name, st, depth + 1
                        if stat.S_ISDIR(st.st_mode) and depth + 1 <= max_depth:
                            refs[dir_fd] += 1
                            todo.append((dir_fd, entry.name, depth + 1))
            except OSError:
                state.errors += 1
            finally:
                release(dir_fd)
    finally:
        for fd in refs:
            os.close(fd)


def _prune(root: Path, max_depth: int) -> int:
    """Remove every entry of ``root`` deeper than ``max_depth`` levels; how many top entries went."""
    state = _WalkState()
    removed = 0
    for dir_fd, name, st, depth in _walk(root, state, max_depth=max_depth, limit=_OWNERSHIP_ENTRIES):
        if depth > max_depth:
            with contextlib.suppress(OSError):
                if stat.S_ISDIR(st.st_mode):
                    _remove_tree(dir_fd, name)
                else:
                    os.unlink(name, dir_fd=dir_fd)
                removed += 1
    return removed


def _remove_tree(parent_fd: int, name: str, budget: int = 1_000_000) -> None:
    """Remove the directory ``name`` of ``parent_fd`` and everything in it, however deep, without
    recursion and with three descriptors at most: the subdirectories of each child directory are
    renamed up into ``name`` itself (same file system), so the tree flattens as it empties.
    ``OSError`` if it cannot, or after ``budget`` operations (a program still writing into it)."""
    top = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    serial = 0
    try:
        while True:
            with os.scandir(top) as it:
                children = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            if not children:
                break
            for child, is_dir in children:
                budget -= 1
                if not is_dir:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(child, dir_fd=top)
                    continue
                fd = os.open(child, _DIR_FLAGS, dir_fd=top)
                try:
                    with os.scandir(fd) as it:
                        grandchildren = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
                    for grandchild, sub in grandchildren:
                        budget -= 1
                        if sub:  # hoist it into ``top`` under a fresh name
                            serial = _hoist(fd, grandchild, top, serial)
                        else:
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(grandchild, dir_fd=fd)
                finally:
                    os.close(fd)
                os.rmdir(child, dir_fd=top)
                if budget <= 0:
                    raise OSError(f"could not remove {name!r}: it keeps changing")
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=parent_fd)


def _hoist(src_fd: int, name: str, dst_fd: int, serial: int) -> int:
    """Rename the directory ``name`` of ``src_fd`` into ``dst_fd`` as ``.pruneN`` (the first free
    N above ``serial``); the last N tried."""
    for _ in range(1000):
        serial += 1
        try:
            os.rename(name, f".prune{serial}", src_dir_fd=src_fd, dst_dir_fd=dst_fd)
            return serial
        except FileNotFoundError:
            return serial  # gone already
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise
    raise OSError(f"no free name to move {name!r} to")


# --------------------------------------------------------------------------- ownership (root only)


def _chown_entry(dir_fd: int, name: str, st: os.stat_result, uid: int, gid: int, strip_setid: bool) -> None:
    """Give the entry ``name`` of ``dir_fd`` (``st``: its ``lstat``) to ``uid``:``gid``, without
    following links; with ``strip_setid``, clear set-id bits through a descriptor of the same file."""
    os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    setid = stat.S_ISUID | stat.S_ISGID
    if strip_setid and (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)) and st.st_mode & setid:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                os.fchmod(fd, stat.S_IMODE(now.st_mode) & ~setid)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _owned_by_sandbox(roots: list[Path], drop: bool) -> Iterator[None]:
    """When the sandbox runs as :data:`UNPRIVILEGED_UID`, lend it ``roots`` for the run.

    Files with several hard links stay as they are: another link may be outside the workspace.
    Afterwards everything the sandbox uid owns goes back to the owner of each root, without
    set-id bits. Every change is made relative to an open directory descriptor, never through a
    path (see :func:`_walk`).
    """
    if not drop:
        yield
        return
    owners = {}
    for root in roots:
        st = os.lstat(root)
        owners[root] = (st.st_uid, st.st_gid)
        for dir_fd, name, est, _ in _walk(root, _WalkState(), max_depth=sys.maxsize, limit=_OWNERSHIP_ENTRIES):
            if stat.S_ISDIR(est.st_mode) or (stat.S_ISREG(est.st_mode) and est.st_nlink == 1):
                os.chown(name, UNPRIVILEGED_UID, UNPRIVILEGED_UID, dir_fd=dir_fd, follow_symlinks=False)
    try:
        yield
    finally:
        for root, (uid, gid) in owners.items():
            for dir_fd, name, est, _ in _walk(root, _WalkState(), max_depth=sys.maxsize, limit=_OWNERSHIP_ENTRIES):
                if est.st_uid == UNPRIVILEGED_UID or est.st_gid == UNPRIVILEGED_UID:
                    with contextlib.suppress(OSError):
                        _chown_entry(dir_fd, name, est, uid, gid, strip_setid=True)


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


def _pump(
    proc: subprocess.Popen[bytes], captures: dict[object, _Capture], start: float, limits: Limits,
    watch: list[Path],
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


def _workspace_over(roots: list[Path], limits: Limits) -> bool:
    """Whether ``roots`` (the workspace and the output folder) together hold more than the byte
    or entry limit (allocated blocks count), nest deeper than the depth limit, or hold an entry
    that cannot be examined (it might hide anything)."""
    used = entries = 0
    for root in roots:
        state = _WalkState()
        for _, _, st, _ in _walk(root, state, max_depth=limits.workspace_depth,
                                 limit=limits.workspace_entries + 1 - entries):
            entries += 1
            used += st.st_blocks * 512
            if used > limits.workspace_bytes:
                return True
        if state.errors or state.too_deep or state.truncated:
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
