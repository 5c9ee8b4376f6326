"""Hierarchy / delegation: a primary agent plans and hands self-contained tasks to worker agents.

```python
coder = tool_loop(code_model, [run_python], system="You write and run Python.")
graph = hierarchical_graph(planner_model, {"coder": ("writes and runs Python code", coder)},
                           tools=[web_search], system="You are a research assistant.")
state = await graph.ainvoke({"messages": [HumanMessage("Plot the primes below 100")]})
```

The primary is an ordinary tool loop whose extra tools are ``delegate_to_<worker>``. Calling one
runs that worker on a fresh conversation holding only the task, and returns the worker's final
answer as the tool result. The worker's transcript and cost travel on the ``ToolMessage`` as its
``artifact`` (a ``delegate`` event), so the runner can account for them without putting the
worker's messages into the primary's context.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Checkpointer
from pydantic import BaseModel, Field

from agentbench.errors import ToolError

from .state import Event, final_answer, inner_config, message_dict, usage_of
from .tool_loop import recursion_limit, tool_loop

_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DELEGATION_NOTE = (
    "You can delegate work with the delegate_to_<worker> tools. A worker sees only the task you "
    "give it, not this conversation: write each task so it stands alone, with every input and "
    "constraint it needs and the form of the answer you want back. Check what workers return and "
    "integrate it into your own answer to the user."
)


class DelegateArgs(BaseModel):
    """Arguments of a delegate tool."""

    task: str = Field(description=(
        "The complete, self-contained task for the worker: what to do, every input, file name, value and "
        "constraint it needs, and what to return. The worker cannot see this conversation."
    ))


def delegate_tool(name: str, description: str, worker: CompiledStateGraph[Any, Any, Any, Any], *,
                  max_steps: int = 10) -> BaseTool:
    """A tool ``delegate_to_<name>`` that runs ``worker`` on ``[HumanMessage(task)]`` and returns its answer.

    The tool answers ``(answer, artifact)`` (``response_format="content_and_artifact"``): the
    artifact is a ``delegate`` event with the worker's outcome, its usage (calls, tokens, model
    time) and its messages as simple dicts. A worker that raises becomes a ``ToolError`` (the
    primary reads it as an error result); the error carries the same event as ``.artifact``, with
    what the worker did before it failed unknown.
    """
    tool_name = f"delegate_to_{name}"
    if not _TOOL_NAME.match(tool_name):
        raise ValueError(f"worker name {name!r} does not make a valid tool name ({tool_name!r})")
    limit = recursion_limit(max_steps)

    async def delegate(task: str, config: RunnableConfig) -> tuple[str, Event]:
        start = time.perf_counter()
        try:
            config = inner_config(config, recursion_limit=limit)
            state = await worker.ainvoke({"messages": [HumanMessage(task)]}, config)
        except Exception as exc:  # any worker failure is news for the primary, not a crash of the run
            error = ToolError(f"the {name} worker failed: {type(exc).__name__}: {exc}")
            error.artifact = {"kind": "delegate", "worker": name, "task": task, "outcome": "error",  # type: ignore[attr-defined]
                              "error": str(error), "wall_s": time.perf_counter() - start}
            raise error from exc
        messages = state["messages"][1:]  # the task itself is the tool call's argument
        outcome = state.get("outcome", "completed")
        answer = final_answer(messages) if outcome == "completed" else ""
        artifact: Event = {"kind": "delegate", "worker": name, "task": task, "outcome": outcome,
                           "usage": usage_of(messages), "wall_s": time.perf_counter() - start,
                           "messages": [message_dict(m) for m in messages]}
        return answer or f"(the {name} worker gave no answer; it ended with outcome {outcome!r})", artifact

    return StructuredTool.from_function(
        coroutine=delegate, name=tool_name, args_schema=DelegateArgs, response_format="content_and_artifact",
        description=f"Delegate a self-contained task to the {name} worker: {description}. "
                    f"Returns the worker's final answer.",
    )


def hierarchical_graph(
    primary_model: BaseChatModel,
    workers: Mapping[str, tuple[str, CompiledStateGraph[Any, Any, Any, Any]]],
    tools: Sequence[BaseTool] = (),
    *,
    system: str | None = None,
    max_steps: int = 10,
    worker_max_steps: int | None = None,
    checkpointer: Checkpointer = None,
    name: str = "hierarchical",
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The primary's tool loop, with ``tools`` plus one ``delegate_to_<name>`` tool per worker.

    ``workers`` maps names to ``(description, compiled worker graph)``. ``system`` gets a short
    note on delegation appended. ``max_steps`` bounds the primary's calls per turn;
    ``worker_max_steps`` (default: ``max_steps``) sets the recursion limit a worker runs under
    (its own step limit is the one its tool loop was built with). The state is the tool loop's;
    delegations are on the ``ToolMessage`` artifacts.
    """
    delegates = [delegate_tool(worker_name, description, graph, max_steps=worker_max_steps or max_steps)
                 for worker_name, (description, graph) in workers.items()]
    clash = {t.name for t in tools} & {d.name for d in delegates}
    if clash:
        raise ValueError(f"tool names clash with delegate tools: {sorted(clash)}")
    prompt = f"{system}\n\n{DELEGATION_NOTE}" if system else DELEGATION_NOTE
    return tool_loop(primary_model, [*tools, *delegates], system=prompt, max_steps=max_steps,
                     checkpointer=checkpointer, name=name)


__all__ = ["DELEGATION_NOTE", "DelegateArgs", "delegate_tool", "hierarchical_graph"]
