"""Confinement of model-supplied paths to the workspace: the file tools' security boundary.

Policy, in order:

1. The path text is checked: relative, no ``..`` component, no NUL byte, no leading ``~``, not
   empty (the workspace root itself only where a caller allows it).
2. Symbolic links are never followed, whether they point inside or outside the workspace. The
   ``realpath`` of the path is computed only to word the refusal (leading outside vs. merely a
   link); the real guarantee comes from step 3.
3. Every component is opened from a descriptor of the workspace root with ``O_NOFOLLOW`` (and
   ``O_DIRECTORY`` for directories), so a component swapped for a symlink between the check and
   the use makes the open fail instead of escaping.
4. Only regular files are opened (no FIFOs, devices or sockets: opening is non-blocking), and a
   regular file with more than one hard link is refused, since its other name may lie outside the
   workspace.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agentbench.errors import ToolError

MAX_PATH_CHARS = 4096
MAX_COMPONENT_CHARS = 255
#: A walk stops after this many entries, so a hostile tree cannot make a listing unbounded.
WALK_LIMIT = 100_000

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO would otherwise block the tool forever before fstat can refuse it.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass(frozen=True)
class WorkspacePath:
    """A validated path: its components below the workspace root and the text to show the model."""

    parts: tuple[str, ...]

    @property
    def shown(self) -> str:
        """The normalised relative path, as messages show it (``.`` for the root)."""
        return "/".join(self.parts) or "."

    @property
    def name(self) -> str:
        """The last component (the file's own name)."""
        return self.parts[-1]

    @property
    def parent(self) -> tuple[str, ...]:
        """Components of the containing directory."""
        return self.parts[:-1]


def parse_path(path: str, *, allow_root: bool = False) -> WorkspacePath:
    """Check a model-supplied path and split it into components; ``ToolError`` if it is unsafe."""
    if not isinstance(path, str):
        raise ToolError("path must be a string")
    if "\x00" in path:
        raise ToolError(f"path {path!r} contains a NUL byte")
    if len(path) > MAX_PATH_CHARS:
        raise ToolError(f"path is {len(path)} characters long; the limit is {MAX_PATH_CHARS}")
    if path.startswith("~"):
        raise ToolError(
            f"path '{path}' starts with '~'; home directories are outside the workspace, "
            "use a path relative to the workspace"
        )
    if os.path.isabs(path) or path.startswith("\\"):
        raise ToolError(f"path '{path}' is absolute; use a path relative to the workspace")
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ToolError(
            f"path '{path}' contains '..'; use a path inside the workspace, "
            "relative and without '..'"
        )
    for part in parts:
        if len(part) > MAX_COMPONENT_CHARS:
            raise ToolError(f"path component {part[:40]!r}... is longer than {MAX_COMPONENT_CHARS}")
    if not parts and not allow_root:
        what = "empty" if not path.strip() else f"'{path}', the workspace root itself"
        raise ToolError(f"path is {what}; give a file path relative to the workspace")
    return WorkspacePath(parts)


def workspace_root(workspace: Path) -> str:
    """The workspace's real path, created if missing (the workspace itself is trusted)."""
    os.makedirs(workspace, exist_ok=True)
    return os.path.realpath(workspace)


def _refuse_link(root: str, parts: tuple[str, ...], shown: str) -> ToolError:
    """The error for a path that runs into a symbolic link, saying whether it leads outside."""
    real = os.path.realpath(os.path.join(root, *parts))
    if os.path.commonpath([root, real]) != root:
        return ToolError(f"path '{shown}' leads outside the workspace through a symbolic link")
    return ToolError(
        f"path '{shown}' goes through a symbolic link; symbolic links are not followed"
    )


@contextlib.contextmanager
def open_dir(
    workspace: Path, parts: tuple[str, ...], *, create: bool = False, shown: str = ""
) -> Iterator[int]:
    """Yield a descriptor of the directory ``parts`` under the workspace, walking without symlinks.

    With ``create``, missing directories are made (like ``mkdir -p``), still never through links.
    """
    root = workspace_root(workspace)
    shown = shown or ("/".join(parts) or ".")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            try:
                new_fd = _open_subdir(fd, part, create)
            except FileNotFoundError:
                raise ToolError(f"directory '{'/'.join(parts[: i + 1])}' does not exist") from None
            except OSError as exc:
                raise _dir_error(root, parts[: i + 1], shown, exc) from None
            os.close(fd)
            fd = new_fd
        yield fd
    finally:
        os.close(fd)


def _open_subdir(dir_fd: int, name: str, create: bool) -> int:
    """Open ``name`` under ``dir_fd`` as a directory (never through a link), making it if asked."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):  # a concurrent creator is fine
            os.mkdir(name, 0o777, dir_fd=dir_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _dir_error(root: str, parts: tuple[str, ...], shown: str, exc: OSError) -> ToolError:
    """Explain why a path component could not be opened as a directory."""
    here = os.path.join(root, *parts)
    if os.path.islink(here) or exc.errno == errno.ELOOP:
        return _refuse_link(root, parts, shown)
    if exc.errno == errno.ENOTDIR:
        return ToolError(f"'{'/'.join(parts)}' is not a directory (in path '{shown}')")
    return ToolError(f"cannot open directory '{'/'.join(parts)}': {exc.strerror}")


def open_file(workspace: Path, dir_fd: int, wpath: WorkspacePath, flags: int) -> int:
    """Open the last component of ``wpath`` under ``dir_fd``: a regular file with one link only.

    ``flags`` are the access flags (e.g. ``os.O_RDONLY``, ``os.O_RDWR | os.O_CREAT``); the caller
    owns the returned descriptor.
    """
    try:
        fd = os.open(wpath.name, flags | _FILE_FLAGS, 0o666, dir_fd=dir_fd)
    except FileNotFoundError:
        raise ToolError(f"file '{wpath.shown}' does not exist") from None
    except OSError as exc:
        raise _file_error(workspace, dir_fd, wpath, exc) from None
    try:
        check_regular(os.fstat(fd), wpath.shown)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _file_error(workspace: Path, dir_fd: int, wpath: WorkspacePath, exc: OSError) -> ToolError:
    """Explain why the final component could not be opened as a file."""
    try:
        st = os.stat(wpath.name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        st = None
    if exc.errno == errno.ELOOP or (st is not None and stat.S_ISLNK(st.st_mode)):
        return _refuse_link(workspace_root(workspace), wpath.parts, wpath.shown)
    if exc.errno == errno.EISDIR or (st is not None and stat.S_ISDIR(st.st_mode)):
        return ToolError(f"'{wpath.shown}' is a directory, not a file")
    if exc.errno == errno.ENXIO or (st is not None and not stat.S_ISREG(st.st_mode)):
        return ToolError(f"'{wpath.shown}' is not a regular file")
    return ToolError(f"cannot open '{wpath.shown}': {exc.strerror}")


def check_regular(st: os.stat_result, shown: str) -> None:
    """Refuse anything but a regular file with a single hard link."""
    if stat.S_ISDIR(st.st_mode):
        raise ToolError(f"'{shown}' is a directory, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise ToolError(f"'{shown}' is not a regular file")
    if st.st_nlink > 1:
        # Its other name may be outside the workspace: touching it would touch that file too.
        raise ToolError(
            f"'{shown}' has {st.st_nlink} hard links; files with several hard links are refused "
            "because another link may be outside the workspace"
        )


@dataclass(frozen=True)
class Entry:
    """One thing found while walking a directory."""

    path: str
    kind: str  # "file", "dir", "symlink" or "other"
    size: int


def walk(dir_fd: int, prefix: str = "", limit: int = WALK_LIMIT) -> Iterator[Entry]:
    """Every entry under ``dir_fd``, depth first, never following symbolic links.

    Stops after ``limit`` entries so a hostile tree cannot make a listing unbounded.
    """
    seen = 0
    stack: list[tuple[int, str]] = [(os.dup(dir_fd), prefix)]
    try:
        while stack and seen < limit:
            fd, base = stack.pop()
            try:
                for entry in _scan(fd, base):
                    seen += 1
                    yield entry
                    if entry.kind == "dir":
                        sub = _try_open_subdir(fd, entry.path.rsplit("/", 1)[-1])
                        if sub is not None:
                            stack.append((sub, entry.path))
                    if seen >= limit:
                        break
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)


def _scan(fd: int, base: str) -> list[Entry]:
    """The entries directly in ``fd``, sorted by name, classified without following links."""
    entries = []
    with os.scandir(fd) as it:
        for e in it:
            path = f"{base}/{e.name}" if base else e.name
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while listing
            if stat.S_ISLNK(st.st_mode):
                entries.append(Entry(path, "symlink", 0))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(Entry(path, "dir", 0))
            elif stat.S_ISREG(st.st_mode):
                entries.append(Entry(path, "file", st.st_size))
            else:
                entries.append(Entry(path, "other", 0))
    return sorted(entries, key=lambda en: en.path)


def _try_open_subdir(dir_fd: int, name: str) -> int | None:
    """Open a subdirectory met while walking; ``None`` if it vanished or became a link."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None


def tree_size(workspace: Path) -> int:
    """Total size in bytes of the regular files in the workspace (links not followed)."""
    with open_dir(workspace, ()) as fd:
        return sum(e.size for e in walk(fd) if e.kind == "file")
