"""``build_agent``: the production agent, from the same graphs and tools the testbed evaluated.

```python
from agentbench import build_agent

agent = build_agent("qwen3-8b-local", ["calculator", "read_file", "write_file"],
                    workspace="work", system="You are a careful assistant.", checkpointer="memory")
state = await agent.ainvoke({"messages": [("user", "What is 15% of 67.50?")]},
                            {"configurable": {"thread_id": "user-42"}, "recursion_limit": 40})
```

``model`` is a registry key (``arch:NAME`` for an architecture), a registry entry, or any
LangChain chat model. For multi-turn memory pass ``checkpointer="memory"`` or any LangGraph
checkpointer (for SQLite: ``AsyncSqliteSaver`` from ``langgraph-checkpoint-sqlite``, installed with
the ``agent`` extra) and a ``thread_id``. Stream with ``agent.astream(..., stream_mode=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver

from agentbench.errors import ConfigError
from agentbench.graphs import tool_loop
from agentbench.models.backends import make_backend
from agentbench.models.registry import ModelSpec, load_registry, resolve_model
from agentbench.tools import ToolContext, build_tools, create_services, services_needed


def _tools(tools: Sequence[str | BaseTool], workspace: Path | None, state: Mapping[str, Any]) -> list[BaseTool]:
    """Registered tool names bound to one workspace and fresh services; LangChain tools as given."""
    names = [t for t in tools if isinstance(t, str)]
    if names and workspace is None:
        raise ConfigError("agentbench tools need a workspace folder: build_agent(..., workspace='work')")
    built: dict[str, BaseTool] = {}
    if names:
        assert workspace is not None
        workspace.mkdir(parents=True, exist_ok=True)
        context = ToolContext(workspace=workspace, state=dict(create_services(state, services_needed(names))))
        built = {t.name: t for t in build_tools(names, context)}
    return [built[t] if isinstance(t, str) else t for t in tools]


def _spec(model: str | ModelSpec, models_file: Path | None) -> ModelSpec:
    if isinstance(model, ModelSpec):
        if model.backend == "architecture" and not model.members:
            return resolve_model(model.key, {**load_registry(models_file), model.key: model})
        return model
    return resolve_model(model, load_registry(models_file))


def build_agent(
    model: str | ModelSpec | BaseChatModel,
    tools: Sequence[str | BaseTool] = (),
    *,
    workspace: str | Path | None = None,
    state: Mapping[str, Any] | None = None,
    system: str | None = None,
    max_steps: int = 10,
    checkpointer: Any = None,
    models_file: str | Path | None = None,
) -> Any:
    """A compiled LangGraph agent: the tool loop (or the architecture) agentbench evaluates.

    ``tools`` are registered tool names (bound to ``workspace`` and to simulated services seeded
    from ``state``) and/or LangChain tools. ``checkpointer``: ``"memory"`` or a LangGraph
    checkpointer. Returns the compiled graph; its state has ``messages`` and ``outcome``.
    """
    saver = InMemorySaver() if checkpointer == "memory" else checkpointer
    bound = _tools(tools, Path(workspace) if workspace is not None else None, state or {})
    if not isinstance(model, BaseChatModel):
        spec = _spec(model, Path(models_file) if models_file else None)
        backend = make_backend(spec)
        if spec.backend == "architecture":
            return backend.agent(bound, system=system, max_steps=max_steps, checkpointer=saver).graph
        model = backend.chat_model(None)
    return tool_loop(model, bound, system=system, max_steps=max_steps, checkpointer=saver)
