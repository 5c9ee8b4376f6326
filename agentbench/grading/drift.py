"""Has a scenario changed since a run? Content hashes stored with the run's plan, compared on recompute.

Metrics recomputed from stored results (function calling, the coherence of crashed runs, judge
block counts) read the scenarios' *current* expectations. A run stores :func:`scenario_hash` of
every scenario it ran (``RunPlan.scenario_hashes``); :func:`scenario_drift` compares them with the
library a report reads now, so a changed scenario is flagged and counted instead of silently
regraded. Runs made before hashes were stored say "unknown". docs/metrics.md ("Scenario changes").
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agentbench.runner.records import ScenarioResult
from agentbench.scenario.schema import Scenario

__all__ = ["ScenarioDrift", "scenario_drift", "scenario_hash"]


def scenario_hash(scenario: Scenario) -> str:
    """sha256 of the scenario's content: its fields as canonical JSON, defaults left out, so comments,
    formatting and a new optional field with a default do not count as a change."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass(frozen=True)
class ScenarioDrift:
    """Which scenarios of some results differ from the library now (each with its number of runs).

    ``changed``: stored hash differs from the current file's; ``missing``: no longer in the library
    (its metrics use the records alone); ``unknown``: the run stored no hash for it."""

    changed: Mapping[str, int]
    missing: Mapping[str, int]
    unknown: Mapping[str, int]

    @property
    def clean(self) -> bool:
        """Every scenario is known to be the one the run used."""
        return not (self.changed or self.missing or self.unknown)

    def note(self) -> str:
        """One sentence per kind of difference, for a table's note ('' when clean)."""
        parts = []
        for label, found in (("changed since the run", self.changed), ("no longer in the library", self.missing)):
            if found:
                parts.append(f"{len(found)} scenario(s) {label} ({sum(found.values())} runs: "
                             f"{', '.join(sorted(found))}): recomputed against the current library, not the run's")
        if self.unknown:
            parts.append(f"unknown whether {len(self.unknown)} scenario(s) changed since the run ("
                         f"{sum(self.unknown.values())} runs; the run stored no scenario hashes)")
        return "; ".join(parts) + ("." if parts else "")

    def as_json(self) -> dict[str, Any]:
        """Runs per scenario id, by kind of difference."""
        return {"changed": dict(self.changed), "missing": dict(self.missing), "unknown": dict(self.unknown)}


def scenario_drift(results: Iterable[ScenarioResult], scenarios: Mapping[str, Scenario],
                   hashes: Mapping[str, str] | None) -> ScenarioDrift:
    """Compare the scenarios of ``results`` with ``scenarios`` (the library now) through ``hashes``
    (the run's ``RunPlan.scenario_hashes``; None for a run that stored none)."""
    runs = Counter(r.scenario_id for r in results)
    changed, missing, unknown = {}, {}, {}
    for scenario_id, count in sorted(runs.items()):
        current = scenarios.get(scenario_id)
        stored = (hashes or {}).get(scenario_id)
        if current is None:
            missing[scenario_id] = count
        elif stored is None:
            unknown[scenario_id] = count
        elif stored != scenario_hash(current):
            changed[scenario_id] = count
    return ScenarioDrift(changed, missing, unknown)
