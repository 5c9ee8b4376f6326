"""Named suites: sets of scenarios defined in ``suites.yaml`` next to the scenarios.

```yaml
smoke:
  description: one quick scenario per category
  scenarios: [tip_calculation, "file_*"]   # ids or glob patterns
  tags: [smoke]                            # and/or every scenario with one of these tags
```
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbench.errors import Problem
from agentbench.scenario.problems import validation_problems
from agentbench.scenario.schema import Category, Scenario
from agentbench.scenario.yaml_source import parse_yaml

SUITES_FILE = "suites.yaml"


class Suite(BaseModel):
    """A named selection of scenarios: by id pattern, tag or category (a union of all three)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    scenarios: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    categories: list[Category] = Field(default_factory=list)

    def select(self, scenarios: Iterable[Scenario]) -> list[str]:
        """Ids of the scenarios this suite selects, sorted."""
        chosen = [
            s.id for s in scenarios
            if any(fnmatch.fnmatchcase(s.id, p.strip()) for p in self.scenarios)
            or set(s.tags) & set(self.tags)
            or s.category in self.categories
        ]
        return sorted(chosen)


def parse_suites(path: Path, existing: dict[str, Suite], problems: list[Problem]) -> dict[str, Suite]:
    """Suites defined in ``path`` (none if the file is absent); problems are appended."""
    if not path.is_file():
        return {}
    doc, found = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    problems += found
    if doc is None or not isinstance(doc.data, dict):
        if doc is not None:
            problems.append(doc.problem((), "suites.yaml holds a mapping: suite name -> definition"))
        return {}
    suites: dict[str, Suite] = {}
    for name, body in doc.data.items():
        if name in existing:
            problems.append(doc.problem((name,), f"suite {name!r} is already defined"))
            continue
        try:
            suites[str(name)] = Suite.model_validate(body)
        except ValidationError as exc:
            problems += validation_problems(exc, doc, Suite, (name,))
    return suites
