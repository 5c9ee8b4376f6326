"""LangGraph machines agentbench evaluates and that applications import (``agentbench.graphs``).

``tool_loop(model, tools)`` builds the model -> tools -> model loop used by every scenario.
"""

from __future__ import annotations

from .tool_loop import BINDING_KEY, META, LoopBinding, ToolLoopState, recursion_limit, steps_in_turn, tool_loop

__all__ = [
    "BINDING_KEY",
    "META",
    "LoopBinding",
    "ToolLoopState",
    "recursion_limit",
    "steps_in_turn",
    "tool_loop",
]
