"""The public API: every exported name resolves; the install layout is namespaced."""

from __future__ import annotations

import importlib.metadata
import sys

import agentbench
import agentbench.graphs
import agentbench.testing
import agentbench.tools


def test_every_exported_name_resolves() -> None:
    for module in (agentbench, agentbench.graphs, agentbench.tools, agentbench.testing):
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{module.__name__}.{name}"


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        agentbench.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_tools_and_graphs_live_inside_the_agentbench_namespace() -> None:
    # The installed distribution (in site-packages), not a source tree's egg-info on sys.path.
    site = [p for p in sys.path if p.endswith("site-packages")]
    dist = next(d for d in importlib.metadata.distributions(path=site) if d.metadata["Name"] == "agentbench")
    installed = {str(f).split("/")[0] for f in dist.files or []}
    assert not installed & {"tools", "graphs", "scenarios", "data"}, installed  # nothing global
    assert agentbench.tools.__name__ == "agentbench.tools"
    assert agentbench.graphs.tool_loop.__module__ == "agentbench.graphs.tool_loop"


def test_builtin_scenarios_and_registry_ship_as_package_data() -> None:
    from agentbench.scenario.loader import builtin_dir

    assert (builtin_dir() / "suites.yaml").is_file()
    assert len(list(builtin_dir().glob("*.yaml"))) > 10
    assert "reference" in agentbench.load_registry()


def test_every_public_name_is_in_the_api_reference() -> None:
    from pathlib import Path

    reference = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    for module in (agentbench, agentbench.graphs, agentbench.tools, agentbench.testing):
        missing = [n for n in module.__all__ if f"`{n}" not in reference]
        assert not missing, f"{module.__name__}: {missing} not in docs/api.md"
