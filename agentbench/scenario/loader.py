"""Loading scenarios: one file with every problem located, and the library of all scenarios.

The library is the built-in scenarios plus every ``*.yaml`` under the user's directories
(``--scenarios-dir`` and the ``AGENTBENCH_SCENARIOS_DIR`` environment variable, ``os.pathsep``
separated). A user scenario whose id is already taken is an error, never a silent override.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from agentbench.errors import Problem, ScenarioError
from agentbench.scenario.consistency import consistency_problems
from agentbench.scenario.problems import validation_problems
from agentbench.scenario.schema import Scenario
from agentbench.scenario.suites import SUITES_FILE, Suite, parse_suites
from agentbench.scenario.yaml_source import parse_yaml

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
        return None, sorted(problems + validation_problems(exc, doc, Scenario), key=lambda p: (p.line, p.column))
    problems += consistency_problems(scenario, doc)
    return (None if problems else scenario), sorted(problems, key=lambda p: (p.line, p.column))


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
            message = f"duplicate id {scenario.id!r} (also in {seen[scenario.id]})"
            problems.append(Problem(str(file), 1, 1, "id", message))
        seen[scenario.id] = str(file)
    return len(files), problems


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
