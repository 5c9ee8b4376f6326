"""Helpers for tests of the simulated services: a context like the runner builds, and a caller."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentbench.tools import ToolContext, create_services, tool_spec


def make_ctx(tmp_path: Path, seeds: dict[str, Any], needed: tuple[str, ...] = ()) -> ToolContext:
    """A context with fresh services built from ``seeds`` (as the runner builds them)."""
    return ToolContext(workspace=tmp_path, state=dict(create_services(seeds, needed)))


def caller(ctx: ToolContext) -> Callable[..., Any]:
    """``call(tool, **args)``: invoke the bound tool and parse its JSON result."""

    def call(tool: str, **args: Any) -> Any:
        return json.loads(tool_spec(tool).bind(ctx).invoke(args))

    return call
