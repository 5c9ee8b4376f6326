"""The tool registry: every tool is registered by name and bound to a run's context on demand.

A tool is one module that defines an argument model and an implementation and registers them
with :func:`register_tool`; ``tools/__init__.py`` imports the module (the one registration line).
Scenarios name the tools they use; :func:`build_tools` turns names into LangChain tools bound to
one scenario run's workspace, so two runs never share state.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from agentbench.errors import ConfigError

#: What a tool implementation may return: text, or JSON-serialisable data.
ToolResult = str | int | float | bool | None | dict[str, Any] | list[Any]
ToolImpl = Callable[["ToolContext", Any], ToolResult | Awaitable[ToolResult]]


@dataclass
class ToolContext:
    """What a tool may touch during one scenario run.

    ``workspace`` is the only directory file tools may read or write. ``state`` holds per-run
    mutable state of stateful tools (e.g. simulated APIs), keyed by tool family; graders read it.
    ``options`` carries run-level settings (e.g. limits) that a tool may honour.
    """

    workspace: Path
    state: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool: its public name, description, argument schema and implementation."""

    name: str
    description: str
    args_schema: type[BaseModel]
    impl: ToolImpl
    group: str = "general"
    blocking: bool = True
    service: str | None = None  # the simulated service this tool acts on (see tools/services.py)

    def bind(self, ctx: ToolContext) -> BaseTool:
        """Return a LangChain tool whose calls run against ``ctx``.

        A synchronous ``blocking`` tool runs in a worker thread (it may wait on a process or
        the network); a non-blocking one (quick local work) runs inline on the event loop,
        which saves a thread hop per call.
        """
        schema, impl = self.args_schema, self.impl
        if inspect.iscoroutinefunction(impl):

            async def run_coroutine(**kwargs: Any) -> str:
                return render_result(await impl(ctx, schema(**kwargs)))

            return StructuredTool.from_function(
                coroutine=run_coroutine, name=self.name, description=self.description,
                args_schema=schema, infer_schema=False,
            )

        def run_sync(**kwargs: Any) -> str:
            return render_result(impl(ctx, schema(**kwargs)))  # type: ignore[arg-type]

        async def run_inline(**kwargs: Any) -> str:
            return run_sync(**kwargs)

        return StructuredTool.from_function(
            func=run_sync, coroutine=None if self.blocking else run_inline, name=self.name,
            description=self.description, args_schema=schema, infer_schema=False,
        )

    def openai_schema(self) -> dict[str, Any]:
        """The tool as an OpenAI ``tools`` entry (what an OpenAI-compatible server receives)."""
        return convert_to_openai_tool(
            StructuredTool.from_function(
                func=lambda **_: "", name=self.name, description=self.description,
                args_schema=self.args_schema, infer_schema=False,
            )
        )


_REGISTRY: dict[str, ToolSpec] = {}


def register_tool(
    name: str, args_schema: type[BaseModel], description: str, *, group: str = "general",
    blocking: bool = True, service: str | None = None,
) -> Callable[[ToolImpl], ToolImpl]:
    """Decorator registering ``impl(ctx, args)`` as the tool ``name``.

    The description is what the model reads: say what the tool does, when to use it, and what it
    returns. Field descriptions of ``args_schema`` become the JSON schema's descriptions. Set
    ``blocking=False`` only for synchronous tools that never wait (quick local work). A tool of a
    simulated service names it in ``service`` and finds its instance in ``ctx.state[service]``.
    """

    def decorate(impl: ToolImpl) -> ToolImpl:
        if name in _REGISTRY:
            raise ValueError(f"tool {name!r} is registered twice")
        _REGISTRY[name] = ToolSpec(name, description.strip(), args_schema, impl, group, blocking, service)
        return impl

    return decorate


def tool_spec(name: str) -> ToolSpec:
    """The registered tool ``name``; ``ConfigError`` naming the known tools otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown tool {name!r}; known tools: {', '.join(tool_names())}") from None


def tool_names() -> list[str]:
    """Names of every registered tool, sorted."""
    return sorted(_REGISTRY)


def all_tool_specs() -> list[ToolSpec]:
    """Every registered tool, sorted by name."""
    return [_REGISTRY[n] for n in tool_names()]


def build_tools(names: Iterable[str], ctx: ToolContext) -> list[BaseTool]:
    """LangChain tools for ``names``, bound to one run's context."""
    return [tool_spec(n).bind(ctx) for n in names]


def services_needed(names: Iterable[str]) -> list[str]:
    """The simulated services the tools ``names`` act on (each once, in order)."""
    return list(dict.fromkeys(s for s in (tool_spec(n).service for n in names) if s))


def render_result(result: ToolResult) -> str:
    """Text the model sees for a tool's result: strings as they are, data as compact JSON."""
    if isinstance(result, str):
        return result
    return json.dumps(result, ensure_ascii=False, sort_keys=False, default=str)
