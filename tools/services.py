"""Registry of simulated stateful services (weather, email, calendar, ...) behind the API tools.

A service is created fresh for every scenario run from the scenario's seed
(``state: {email: {...}}``), lives in ``ToolContext.state[name]`` where its tools find it, and
exposes ``snapshot()``: its final state as collections of JSON records, which graders inspect
(``checks.state``). Two runs never share a service instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from agentbench.errors import ConfigError


class Service(Protocol):
    """What every simulated service offers graders."""

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The service's state: collection name -> JSON records."""
        ...


@dataclass(frozen=True)
class ServiceSpec:
    """A registered service: its seed schema and how to build an instance from a seed."""

    name: str
    seed_model: type[BaseModel]
    create: Callable[[Any], Service]
    description: str = ""


_SERVICES: dict[str, ServiceSpec] = {}


def register_service(spec: ServiceSpec) -> ServiceSpec:
    """Register a service (one line in the service's module)."""
    if spec.name in _SERVICES:
        raise ValueError(f"service {spec.name!r} is registered twice")
    _SERVICES[spec.name] = spec
    return spec


def service_names() -> list[str]:
    """Names of every registered service, sorted."""
    return sorted(_SERVICES)


def service_spec(name: str) -> ServiceSpec:
    """The registered service ``name``; ``ConfigError`` naming the known ones otherwise."""
    try:
        return _SERVICES[name]
    except KeyError:
        known = ", ".join(service_names()) or "none"
        raise ConfigError(f"unknown service {name!r}; known services: {known}") from None


def create_services(seeds: Mapping[str, Any], needed: Iterable[str] = ()) -> dict[str, Service]:
    """Fresh instances of every seeded or needed service (a needed one without seed gets the
    seed model's defaults)."""
    services: dict[str, Service] = {}
    for name in sorted({*seeds, *needed}):
        spec = service_spec(name)
        services[name] = spec.create(spec.seed_model.model_validate(seeds.get(name) or {}))
    return services


def snapshots(state: Mapping[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The snapshot of every service in a run's ``ToolContext.state``."""
    return {name: svc.snapshot() for name, svc in state.items() if hasattr(svc, "snapshot")}
