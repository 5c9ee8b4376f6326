"""Moves bytes in and out of a sandboxed run: input files, output files, and the output pipes.

One job: the run's I/O as the parent handles it. The read-only input folder is written before
the run (:func:`_write_inputs`); the output folder's named files are read back afterwards within
a byte cap (:func:`_read_outputs`); while the program runs, its stdout and stderr are read until
EOF or a limit (:func:`_pump`), kept head and tail within a cap (:class:`_Capture`), and drained
after the kill (:func:`_await_eof`).
Private to :mod:`agentbench.tools.sandbox`, which re-exports the names it and its tests use.
"""

from __future__ import annotations

import itertools
import os
import selectors
import stat
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ._sandbox_tree import _DIR_FLAGS, _FILE_FLAGS, _workspace_over

if TYPE_CHECKING:
    from .sandbox import Limits

#: How often the parent checks the workspace's size while a program runs.
POLL_S = 0.05
#: After the main process exits, how long to wait for the rest of its output (unsafe mode: a
#: background process may hold the pipes open).
DRAIN_GRACE_S = 0.5
#: After the kill, how long to wait for the killed processes to let go of the pipes.
KILL_GRACE_S = 2.0
#: The most files of the output folder read back when the caller names none.
_MAX_OUTPUT_FILES = 256


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


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the main process has exited, without reaping it: while it is a zombie its pid
    cannot be reused, so killing its process group afterwards cannot hit a stranger."""
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
