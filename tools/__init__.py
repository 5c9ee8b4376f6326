"""agentbench's real tools (installed as ``agentbench.tools``).

Importing this package registers the built-in tools; each import below is one tool module's
registration line.
"""

from __future__ import annotations

from .registry import (
    ToolContext,
    ToolResult,
    ToolSpec,
    all_tool_specs,
    build_tools,
    register_tool,
    render_result,
    tool_names,
    tool_spec,
)

from . import calculator, files  # noqa: E402,F401,I001  (registers the built-in tools)

__all__ = [
    "ToolContext",
    "ToolResult",
    "ToolSpec",
    "all_tool_specs",
    "build_tools",
    "register_tool",
    "render_result",
    "tool_names",
    "tool_spec",
]
