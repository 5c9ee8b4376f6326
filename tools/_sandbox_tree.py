"""Walks a sandbox's workspace by directory descriptors, and everything built on those walks.

One job: the workspace tree as the parent sees it. :func:`_walk` visits a tree with
``openat``/``fstatat`` relative to open directory descriptors (no path longer than one name, links
never followed); on it rest the size, entry and depth accounting of the watchdog
(:func:`_workspace_over`), the removal of entries nested too deep (:func:`_prune`,
:func:`_remove_tree`), and, when agentbench runs as root, lending the workspace to
:data:`UNPRIVILEGED_UID` for a run and taking it back (:func:`_owned_by_sandbox`).
Private to :mod:`agentbench.tools.sandbox`, which re-exports the names it and its tests use.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sandbox import Limits

#: The uid (and gid) sandboxed programs run as when agentbench itself runs as root.
UNPRIVILEGED_UID = 65534
#: How a directory is opened while walking a tree: never through a link, never as a path.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: How a file is opened to read it back or to fix its mode (never through a link, never blocking).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
#: The most entries an ownership hand-over walks (the watchdog stops a run long before).
_OWNERSHIP_ENTRIES = 200_000


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


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything under it, whatever it holds: links are never followed and
    any depth works (see ``_remove_tree``). A missing ``path`` is fine."""
    parent = os.open(path.parent, _DIR_FLAGS)
    try:
        _remove_tree(parent, path.name)
    except FileNotFoundError:
        pass
    finally:
        os.close(parent)


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
