"""Scenario workspaces: a fresh temporary folder per run, seeded with the scenario's files."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from agentbench.errors import ScenarioError


def seed_workspace(root: Path, files: dict[str, str]) -> None:
    """Write each ``relative path -> text`` into ``root`` (parents created)."""
    for name, text in files.items():
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts:
            raise ScenarioError(f"workspace path {name!r} must be relative and stay inside the workspace")
        target = root.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
