"""Scenario workspaces: a fresh temporary folder per run, seeded with the scenario's files.

The model's code may leave symlinks in a workspace (it runs in the sandbox, where a link to a
host path is harmless); agentbench itself, running with the user's rights, must never follow
one. Writing here therefore refuses any path with a symlink component, and removal (the
sandbox's descriptor-based remover) never follows links and survives any depth.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path, PurePosixPath

from agentbench.errors import ScenarioError
from agentbench.tools._sandbox_tree import remove_tree as _remove_tree


def _open_parent(root: Path, parts: tuple[str, ...]) -> int:
    """A descriptor of the folder ``root/parts`` (created as needed) reached without following links."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, dir_fd=fd)
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_inside(root: Path, name: str, text: str) -> None:
    """Write ``text`` to ``root/name`` without following any symlink (an existing link is replaced)."""
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ScenarioError(f"workspace path {name!r} must be relative and stay inside the workspace")
    try:
        parent = _open_parent(root, relative.parts[:-1])
    except OSError as exc:
        raise ScenarioError(f"cannot create the folders of {name!r} in the workspace: {exc}") from None
    try:
        leaf = relative.parts[-1]
        try:
            if stat.S_ISLNK(os.lstat(leaf, dir_fd=parent).st_mode):
                os.unlink(leaf, dir_fd=parent)
        except FileNotFoundError:
            pass
        fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644, dir_fd=parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
    finally:
        os.close(parent)


def seed_workspace(root: Path, files: dict[str, str]) -> None:
    """Write each ``relative path -> text`` into ``root`` (parents created, links never followed)."""
    for name, text in files.items():
        write_inside(root, name, text)


def copy_without_links(source: Path, target: Path) -> None:
    """Copy a workspace, leaving out every symlink (a link there may point anywhere on the host)."""

    def links(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if os.path.islink(os.path.join(folder, n))}

    shutil.copytree(source, target, symlinks=True, ignore=links)


def remove_tree(path: Path) -> None:
    """Delete a workspace whatever the model left in it (never follows links, any depth)."""
    _remove_tree(path)
