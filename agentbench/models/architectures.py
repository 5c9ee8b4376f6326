"""Multi-model architectures evaluated like models: a router over specialists, a fallback chain,
a primary agent that delegates to workers.

An architecture is a registry entry with ``backend: architecture`` whose ``architecture`` names
other registry entries (its members); ``--models arch:NAME`` (or just ``NAME``) runs it through the
same scenarios and graders as a single model. Member entries are resolved when the run is
planned and stored inside the entry (``members``), so workers and ``--resume`` need no registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # pragma: no cover
    from agentbench.models.registry import ModelSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Rule(_Strict):
    """Route to ``route`` when ``pattern`` (a regex) matches the latest user message."""

    pattern: str
    route: str


class RulesRouter(_Strict):
    """Route by regular expressions over the latest user message; ``default`` otherwise."""

    kind: Literal["rules"] = "rules"
    rules: list[Rule] = Field(default_factory=list)
    default: str


class LlmRouter(_Strict):
    """Ask a model (a registry key) to pick a route from their descriptions."""

    kind: Literal["llm"] = "llm"
    model: str
    routes: dict[str, str] = Field(description="route name -> what it is for (shown to the router model)")
    default: str


class RouterArchitecture(_Strict):
    """Design B: a routing node sends each turn to one specialist (route name -> model key)."""

    kind: Literal["router"] = "router"
    router: Annotated[RulesRouter | LlmRouter, Field(discriminator="kind")]
    specialists: dict[str, str] = Field(min_length=1)

    @model_validator(mode="after")
    def _routes_exist(self) -> RouterArchitecture:
        named = {self.router.default} | ({r.route for r in self.router.rules} if isinstance(self.router, RulesRouter)
                                         else set(self.router.routes))
        unknown = sorted(named - set(self.specialists))
        if unknown:
            raise ValueError(f"routes without a specialist: {', '.join(unknown)}")
        return self


class FallbackArchitecture(_Strict):
    """Try models in order when one fails (endpoint error, timeout, malformed output, refusal)."""

    kind: Literal["fallback"] = "fallback"
    models: list[str] = Field(min_length=2)
    timeout_s: float | None = Field(default=None, gt=0, description="per-attempt time limit")


class Worker(_Strict):
    """A worker the primary can delegate to: its model, what it is for, and its tools."""

    model: str
    description: str
    tools: list[str] | None = Field(default=None, description="default: the scenario's tools")


class HierarchicalArchitecture(_Strict):
    """Design C: a primary agent plans and delegates sub-tasks to worker agents (as tools)."""

    kind: Literal["hierarchical"] = "hierarchical"
    primary: str
    workers: dict[str, Worker] = Field(min_length=1)


Architecture = Annotated[RouterArchitecture | FallbackArchitecture | HierarchicalArchitecture,
                         Field(discriminator="kind")]


def member_keys(architecture: Any) -> list[str]:
    """Every registry key an architecture uses, in a stable order without repeats."""
    if isinstance(architecture, RouterArchitecture):
        keys = list(architecture.specialists.values())
        if isinstance(architecture.router, LlmRouter):
            keys.append(architecture.router.model)
    elif isinstance(architecture, FallbackArchitecture):
        keys = list(architecture.models)
    else:
        keys = [architecture.primary, *(w.model for w in architecture.workers.values())]
    return list(dict.fromkeys(keys))


def resolve_members(spec: ModelSpec, registry: dict[str, ModelSpec]) -> ModelSpec:
    """The entry with its member entries embedded (``ConfigError`` for unknown or nested ones)."""
    from agentbench.errors import ConfigError
    from agentbench.models.registry import resolve_model

    members: dict[str, ModelSpec] = {}
    for key in member_keys(spec.architecture):
        member = resolve_model(key, registry)
        if member.backend == "architecture":
            raise ConfigError(f"architecture {spec.key!r}: member {key!r} is itself an architecture")
        members[key] = member
    return spec.model_copy(update={"members": members})


def describe_spec(spec: Any) -> str:
    """One line for a stored entry (a dict, as plans keep them) or a ``ModelSpec``."""
    from agentbench.models.registry import ModelSpec

    return describe(spec if isinstance(spec, ModelSpec) else ModelSpec.model_validate(spec))


def describe(spec: ModelSpec) -> str:
    """One line: the design and its members."""
    arch = spec.architecture
    if isinstance(arch, RouterArchitecture):
        routes = ", ".join(f"{r}->{k}" for r, k in arch.specialists.items())
        return f"router ({arch.router.kind}): {routes}"
    if isinstance(arch, FallbackArchitecture):
        return "fallback: " + " -> ".join(arch.models)
    if isinstance(arch, HierarchicalArchitecture):
        return f"hierarchical: {arch.primary} delegating to " + ", ".join(
            f"{n} ({w.model})" for n, w in arch.workers.items())
    return "?"


def tools_for(names: Sequence[str] | None, scenario_tools: Sequence[Any]) -> list[Any]:
    """A worker's tools: the named subset of the scenario's bound tools (all when unnamed)."""
    if names is None:
        return list(scenario_tools)
    return [t for t in scenario_tools if t.name in set(names)]
