"""agentbench: a testbed for choosing the open LLMs to build an agent on.

The public API, for scripts and for building the final agent from the graphs and tools that
were evaluated::

    from agentbench import load_library, load_registry, make_backend, run_scenario
    from agentbench.graphs import tool_loop
    from agentbench.tools import build_tools, ToolContext

Names are imported on first use, so ``import agentbench`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "build_agent": "agentbench.agent",
    "AgentbenchError": "agentbench.errors",
    "ConfigError": "agentbench.errors",
    "EndpointError": "agentbench.errors",
    "Problem": "agentbench.errors",
    "ScenarioError": "agentbench.errors",
    "ToolError": "agentbench.errors",
    "Scenario": "agentbench.scenario.schema",
    "ScenarioLibrary": "agentbench.scenario.loader",
    "load_library": "agentbench.scenario.loader",
    "load_scenario_file": "agentbench.scenario.loader",
    "validate_paths": "agentbench.scenario.loader",
    "ModelSpec": "agentbench.models.registry",
    "load_registry": "agentbench.models.registry",
    "resolve_model": "agentbench.models.registry",
    "Backend": "agentbench.models.backends",
    "make_backend": "agentbench.models.backends",
    "ScenarioResult": "agentbench.runner.records",
    "run_scenario": "agentbench.runner.execute",
    "execute_plan": "agentbench.runner.suite",
    "make_plan": "agentbench.runner.suite",
    "ResultStore": "agentbench.store",
    "RunPlan": "agentbench.store",
    "summarize": "agentbench.report.summary",
    "write_report": "agentbench.report.render",
}

__all__ = [
    "AgentbenchError",
    "Backend",
    "ConfigError",
    "EndpointError",
    "ModelSpec",
    "Problem",
    "ResultStore",
    "RunPlan",
    "Scenario",
    "ScenarioError",
    "ScenarioLibrary",
    "ScenarioResult",
    "ToolError",
    "__version__",
    "build_agent",
    "execute_plan",
    "load_library",
    "load_registry",
    "load_scenario_file",
    "make_backend",
    "make_plan",
    "resolve_model",
    "run_scenario",
    "summarize",
    "validate_paths",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'agentbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from agentbench.agent import build_agent
    from agentbench.errors import AgentbenchError, ConfigError, EndpointError, Problem, ScenarioError, ToolError
    from agentbench.models.backends import Backend, make_backend
    from agentbench.models.registry import ModelSpec, load_registry, resolve_model
    from agentbench.report.render import write_report
    from agentbench.report.summary import summarize
    from agentbench.runner.execute import run_scenario
    from agentbench.runner.records import ScenarioResult
    from agentbench.runner.suite import execute_plan, make_plan
    from agentbench.scenario.loader import ScenarioLibrary, load_library, load_scenario_file, validate_paths
    from agentbench.scenario.schema import Scenario
    from agentbench.store import ResultStore, RunPlan
