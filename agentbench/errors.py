"""Errors, grouped by audience.

- ``ScenarioError`` / ``ConfigError``: the user's input is wrong; the message says what and where.
- ``ToolError``: shown to the model as the tool's result; never crashes a run.
- ``EndpointError``: the model server is down or answered 4xx/5xx; recorded as the scenario's
  outcome and the suite goes on.

Anything else is a bug and fails loudly.
"""

from __future__ import annotations

from dataclasses import dataclass


class AgentbenchError(Exception):
    """Base class of every error agentbench raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One problem in a user's file, located precisely (1-based line and column)."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ScenarioError(AgentbenchError):
    """A scenario file (or a reference to a scenario) is invalid; carries every problem found."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        self.problems = list(problems or [])
        detail = "\n".join(str(p) for p in self.problems)
        super().__init__(f"{message}\n{detail}" if detail else message)


class ConfigError(AgentbenchError):
    """A configuration value (model registry, CLI option, results directory) is invalid."""


class ToolError(AgentbenchError):
    """A tool could not do what the model asked; the message is returned to the model."""


class EndpointError(AgentbenchError):
    """The model endpoint failed (connection refused, timeout, HTTP 4xx/5xx)."""
