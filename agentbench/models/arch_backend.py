"""The backend of architecture entries: member backends composed into one agent graph per run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from agentbench.errors import ConfigError
from agentbench.graphs import fallback_graph, hierarchical_graph, llm_router, router_graph, rules_router, tool_loop
from agentbench.models.architectures import (
    FallbackArchitecture,
    LlmRouter,
    RouterArchitecture,
    member_keys,
    tools_for,
)
from agentbench.models.backends import Agent, Backend, make_backend
from agentbench.models.registry import ModelSpec
from agentbench.scenario.schema import Scenario


class ArchitectureBackend(Backend):
    """Starts every member backend; builds the router, fallback or hierarchy graph per run."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        if spec.architecture is None:
            raise ConfigError(f"model {spec.key!r}: backend 'architecture' needs an 'architecture'")
        missing = [k for k in member_keys(spec.architecture) if k not in spec.members]
        if missing:
            raise ConfigError(f"architecture {spec.key!r}: members not resolved: {', '.join(missing)}")
        self.members: dict[str, Backend] = {k: make_backend(m) for k, m in spec.members.items()}

    async def start(self) -> None:
        started: list[Backend] = []
        try:
            for member in self.members.values():
                await member.start()
                started.append(member)
        except BaseException:
            for member in reversed(started):
                await member.stop()
            raise

    async def stop(self) -> None:
        for member in reversed(list(self.members.values())):
            await member.stop()

    def worker_spec(self) -> ModelSpec:
        return self.spec.model_copy(update={"members": {k: b.worker_spec() for k, b in self.members.items()}})

    def chat_model(self, scenario: Scenario | None, repeat: int = 0) -> BaseChatModel:
        raise ConfigError(f"{self.spec.key!r} is an architecture: it has no single chat model")

    def agent(self, tools: Sequence[BaseTool], *, system: str | None, max_steps: int,
              scenario: Scenario | None = None, repeat: int = 0, checkpointer: Any = None) -> Agent:
        arch = self.spec.architecture

        def loop(key: str, loop_tools: Sequence[BaseTool], loop_system: str | None = system) -> Any:
            model = self.members[key].chat_model(scenario, repeat)
            return tool_loop(model, loop_tools, system=loop_system, max_steps=max_steps, name=key)

        if isinstance(arch, RouterArchitecture):
            specialists = {route: loop(key, tools) for route, key in arch.specialists.items()}
            if isinstance(arch.router, LlmRouter):
                router = llm_router(self.members[arch.router.model].chat_model(scenario, repeat), arch.router.routes,
                                    arch.router.default)
            else:
                router = rules_router([(r.pattern, r.route) for r in arch.router.rules], arch.router.default)
            return Agent(router_graph(router, specialists, name=self.spec.key, checkpointer=checkpointer))
        if isinstance(arch, FallbackArchitecture):
            chain = [(key, loop(key, tools)) for key in arch.models]
            return Agent(fallback_graph(chain, timeout_s=arch.timeout_s, name=self.spec.key,
                                        checkpointer=checkpointer))
        assert arch is not None
        workers = {name: (w.description, loop(w.model, tools_for(w.tools, tools), loop_system=None))
                   for name, w in arch.workers.items()}
        primary = self.members[arch.primary].chat_model(scenario, repeat)
        return Agent(hierarchical_graph(primary, workers, tools, system=system, max_steps=max_steps,
                                        name=self.spec.key, checkpointer=checkpointer))
