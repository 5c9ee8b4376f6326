"""agentbench's real tools (installed as ``agentbench.tools``).

Importing this package registers the built-in tools: each module below registers its tools when
imported, so adding a tool is one module plus one name in the import line.
"""

from __future__ import annotations

from . import apis, calculator, code, files, web_search  # registers the built-in tools
from .registry import (
    ToolContext,
    ToolResult,
    ToolSpec,
    all_tool_specs,
    build_tools,
    register_tool,
    render_result,
    services_needed,
    tool_names,
    tool_spec,
)
from .services import Service, ServiceSpec, create_services, register_service, service_names, service_spec, snapshots

__all__ = [
    "Service",
    "ServiceSpec",
    "ToolContext",
    "ToolResult",
    "ToolSpec",
    "all_tool_specs",
    "apis",
    "build_tools",
    "calculator",
    "code",
    "create_services",
    "files",
    "register_service",
    "register_tool",
    "render_result",
    "service_names",
    "service_spec",
    "services_needed",
    "snapshots",
    "tool_names",
    "tool_spec",
    "web_search",
]
