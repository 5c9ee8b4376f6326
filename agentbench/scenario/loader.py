"""Loading scenarios: one file with every problem located, and the library of all scenarios.

The library is the built-in scenarios plus every ``*.yaml`` under the user's directories
(``--scenarios-dir`` and the ``AGENTBENCH_SCENARIOS_DIR`` environment variable, ``os.pathsep``
separated). A user scenario whose id is already taken is an error, never a silent override.
"""

from __future__ import annotations

import difflib
import os
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from agentbench.errors import Problem, ScenarioError
from agentbench.scenario.consistency import consistency_problems
from agentbench.scenario.schema import Scenario
from agentbench.scenario.suites import SUITES_FILE, Suite, parse_suites
from agentbench.scenario.yaml_source import DataPath, SourceDoc, parse_yaml

ENV_SCENARIOS_DIR = "AGENTBENCH_SCENARIOS_DIR"


def parse_scenario(text: str, file: str) -> tuple[Scenario | None, list[Problem]]:
    """Parse and validate one scenario; return it (None when invalid) and every problem."""
    doc, problems = parse_yaml(text, file)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, [*problems, doc.problem((), "a scenario file holds one mapping (id: ..., title: ...)")]
    try:
        scenario = Scenario.model_validate(doc.data).with_source(file)
    except ValidationError as exc:
        return None, problems + _validation_problems(exc, doc)
    problems += consistency_problems(scenario, doc)
    return (None if problems else scenario), problems


def load_scenario_file(path: Path) -> Scenario:
    """Load one scenario file; ``ScenarioError`` listing every problem if it is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {path}: {exc}") from None
    scenario, problems = parse_scenario(text, str(path))
    if scenario is None:
        raise ScenarioError(f"invalid scenario file {path}", problems)
    return scenario


def scenario_files(paths: Iterable[Path]) -> list[Path]:
    """The scenario files named by ``paths``: files as given, directories searched recursively."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.y*ml") if p.name != SUITES_FILE)
        else:
            files.append(path)
    return files


def validate_paths(paths: Sequence[Path]) -> tuple[int, list[Problem]]:
    """Validate every scenario file under ``paths``; return (files checked, problems)."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    files = scenario_files(paths)
    for file in files:
        if not file.exists():
            problems.append(Problem(str(file), 1, 1, "", "no such file or directory"))
            continue
        try:
            scenario = load_scenario_file(file)
        except ScenarioError as exc:
            problems += exc.problems or [Problem(str(file), 1, 1, "", str(exc))]
            continue
        if scenario.id in seen:
            problems.append(Problem(str(file), 1, 1, "id", f"duplicate id {scenario.id!r} (also in {seen[scenario.id]})"))
        seen[scenario.id] = str(file)
    return len(files), problems


def _validation_problems(exc: ValidationError, doc: SourceDoc) -> list[Problem]:
    problems = []
    for err in exc.errors():
        path = _data_path(doc.data, err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = _unknown_key_message(path)
        elif err["type"] == "missing":
            message = f"missing required field {path[-1]!r}"
            path = path[:-1] if path[-1:] == (err["loc"][-1],) else path
            problems.append(doc.problem(path, message))
            continue
        problems.append(doc.problem(path, message))
    return problems


def _data_path(data: Any, loc: tuple[Any, ...]) -> DataPath:
    """The part of a pydantic error location that exists in the data (drops union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif part == loc[-1] and isinstance(part, str) and not part.startswith(("function-", "json-")):
            path.append(part)  # a missing field: keep its name
            break
        else:
            continue
        path.append(part)
    return tuple(path)


def _unknown_key_message(path: DataPath) -> str:
    key = path[-1]
    allowed = _allowed_keys(Scenario, path[:-1])
    if not allowed:
        return f"unknown key {key!r}"
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"


def _allowed_keys(model: type[BaseModel], path: DataPath) -> list[str]:
    """The field names of the model that sits at ``path`` under ``model``."""
    current: Any = model
    for part in path:
        if typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]  # a list index or a mapping key
            continue
        found = current if _is_model(current) else _inner_model(current)
        if found is None or part not in found.model_fields:
            return []
        current = found.model_fields[part].annotation
    found = current if _is_model(current) else _inner_model(current)
    return sorted(found.model_fields) if found is not None else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _inner_model(tp: Any) -> Any:
    """The model inside ``list[M]``, ``dict[str, M]`` or ``M | None``."""
    for arg in reversed(typing.get_args(tp)):
        if _is_model(arg):
            return arg
    return None


@dataclass
class ScenarioLibrary:
    """Every known scenario by id, with where each came from, and the named suites."""

    scenarios: dict[str, Scenario] = field(default_factory=dict)
    suites: dict[str, Suite] = field(default_factory=dict)

    def get(self, scenario_id: str) -> Scenario:
        """The scenario ``scenario_id``; ``ScenarioError`` with suggestions otherwise."""
        if scenario_id in self.scenarios:
            return self.scenarios[scenario_id]
        close = difflib.get_close_matches(scenario_id, list(self.scenarios), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ScenarioError(f"unknown scenario {scenario_id!r}{hint} (see `agentbench scenarios list`)")

    def suite(self, name: str) -> list[Scenario]:
        """The scenarios of the suite ``name``, in id order."""
        if name not in self.suites:
            raise ScenarioError(f"unknown suite {name!r}; suites: {', '.join(sorted(self.suites))}")
        ids = self.suites[name].select(self.scenarios.values())
        if not ids:
            raise ScenarioError(f"suite {name!r} selects no scenario")
        return [self.scenarios[i] for i in ids]

    def matching(self, pattern: str) -> list[Scenario]:
        """The scenarios whose id matches a glob pattern (comma-separated patterns allowed)."""
        ids = Suite(description="", scenarios=pattern.split(",")).select(self.scenarios.values())
        if not ids:
            raise ScenarioError(f"no scenario id matches {pattern!r}")
        return [self.scenarios[i] for i in ids]


def builtin_dir() -> Path:
    """The folder of the built-in scenarios (inside the installed package)."""
    return Path(str(resources.files("agentbench.builtin_scenarios")))


def user_dirs(extra: Sequence[Path] = ()) -> list[Path]:
    """User scenario folders: ``extra`` then those in ``AGENTBENCH_SCENARIOS_DIR``."""
    from_env = [Path(p) for p in os.environ.get(ENV_SCENARIOS_DIR, "").split(os.pathsep) if p]
    return [*extra, *from_env]


def load_library(extra_dirs: Sequence[Path] = ()) -> ScenarioLibrary:
    """Load built-in and user scenarios; ``ScenarioError`` listing every problem found."""
    library = ScenarioLibrary()
    problems: list[Problem] = []
    origin: dict[str, str] = {}
    for folder in [builtin_dir(), *user_dirs(extra_dirs)]:
        if not folder.is_dir():
            raise ScenarioError(f"scenario directory {folder} does not exist")
        for file in scenario_files([folder]):
            try:
                scenario = load_scenario_file(file)
            except ScenarioError as exc:
                problems += exc.problems or [Problem(str(file), 1, 1, "", str(exc))]
                continue
            if scenario.id in origin:
                problems.append(Problem(str(file), 1, 1, "id", f"scenario id {scenario.id!r} is already "
                                        f"defined in {origin[scenario.id]}; ids must be unique"))
                continue
            origin[scenario.id] = str(file)
            library.scenarios[scenario.id] = scenario
        library.suites.update(parse_suites(folder / SUITES_FILE, library.suites, problems))
    if problems:
        raise ScenarioError("the scenario library has problems", problems)
    return library
