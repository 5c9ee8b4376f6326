"""LangGraph machines agentbench evaluates and that applications import (``agentbench.graphs``).

``tool_loop(model, tools)`` builds the model -> tools -> model loop used by every scenario;
``router_graph``, ``fallback_graph`` and ``hierarchical_graph`` compose tool loops into
multi-model architectures (docs/architectures.md).
"""

from __future__ import annotations

from .fallback import REFUSAL, default_failure, fallback_graph
from .hierarchical import DELEGATION_NOTE, delegate_tool, hierarchical_graph
from .router import Route, RouterFn, llm_router, parse_route, router_graph, rules_router
from .state import ArchState, Event, usage_of
from .tool_loop import BINDING_KEY, META, LoopBinding, ToolLoopState, recursion_limit, steps_in_turn, tool_loop

__all__ = [
    "BINDING_KEY",
    "DELEGATION_NOTE",
    "META",
    "REFUSAL",
    "ArchState",
    "Event",
    "LoopBinding",
    "Route",
    "RouterFn",
    "ToolLoopState",
    "default_failure",
    "delegate_tool",
    "fallback_graph",
    "hierarchical_graph",
    "llm_router",
    "parse_route",
    "recursion_limit",
    "router_graph",
    "rules_router",
    "steps_in_turn",
    "tool_loop",
    "usage_of",
]
