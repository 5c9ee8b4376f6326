"""Every third-party module agentbench imports at module level is a runtime dependency.

The Quickstart installs agentbench without extras (`pip install .`) and runs the CLI, which imports most of
the package at start-up; the test suite runs with the test extras installed, so a module-level import of
an extra's package would pass every other test and still break the first command a user types (it did:
the bench client's aiohttp). Imports inside functions are lazy (optional features) and are not checked.
"""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

import agentbench
import agentbench.graphs
from agentbench.tools import registry as tools_registry

# tools/ and graphs/ live beside agentbench/ in a checkout (an editable install maps them in).
_PACKAGE_DIRS = sorted({Path(agentbench.__file__).parent, Path(tools_registry.__file__).parent,
                        Path(agentbench.graphs.__file__).parent})


def _module_level_imports(path: Path) -> set[str]:
    """Top-level names imported at module level (not inside functions, classes or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Try):  # `try: import x except ImportError:` is an optional import
            continue
    return names


def _runtime_distributions() -> set[str]:
    """The distributions agentbench requires without extras (normalised names)."""
    required = metadata.requires("agentbench") or []
    plain = [r for r in required if "extra ==" not in r]
    return {_normalise(r.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip())
            for r in plain}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def test_module_level_imports_are_runtime_dependencies() -> None:
    runtime = _runtime_distributions()
    providers = metadata.packages_distributions()
    stdlib = set(sys.stdlib_module_names)
    missing: dict[str, set[str]] = {}
    for folder in _PACKAGE_DIRS:
        for path in folder.rglob("*.py"):
            for name in _module_level_imports(path):
                if name in stdlib or name == "agentbench" or name.startswith("_"):
                    continue
                dists = {_normalise(d) for d in providers.get(name, [])}
                if not dists & runtime:
                    missing.setdefault(f"{name} ({', '.join(sorted(dists)) or 'not installed'})", set()).add(
                        str(path.relative_to(folder.parent)))
    assert missing == {}, "imported at module level but not a runtime dependency: " + repr(missing)


def test_the_check_sees_a_module_level_import(tmp_path: Path) -> None:
    """The AST walk finds module-level imports and leaves function-level (lazy) ones alone."""
    source = tmp_path / "m.py"
    source.write_text("import aiohttp\nfrom yaml import safe_load\n\ndef f():\n    import matplotlib\n")
    assert _module_level_imports(source) == {"aiohttp", "yaml"}
