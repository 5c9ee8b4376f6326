"""Function-calling metrics, computed from stored results and the scenarios' expectations.

Nothing here is stored with a run: every number is recomputed from a result's tool-call records
and its scenario (looked up by id), so runs made before these metrics existed get them too. The
definitions, and exactly how calls are matched to expectations, are in docs/metrics.md
("Function calling"); in short, per turn:

* the calls compared are every call the model attempted in the turn, malformed ones included;
* expected calls come from ``expect.tool_calls``; in ``strict`` mode the i-th expected call is
  paired with the i-th call made, in the other modes a maximum bipartite matching pairs them,
  first on full matches (tool and every listed argument), then on the tool name alone among the
  calls left; ``subset`` expectations are an allow-list, so their calls are not required;
* a turn with ``expect.no_tool_calls`` counts as one expected abstention, kept only when the turn
  completed without a call (a run that crashed before the turn kept nothing).

Because the expectations are today's, :func:`fc_summary` also compares the run's stored scenario
hashes with the library (:mod:`agentbench.grading.drift`): a scenario changed since the run is
flagged and counted in ``FCSummary.drift``, never silently regraded.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from agentbench.errors import AgentbenchError
from agentbench.grading.drift import ScenarioDrift, scenario_drift
from agentbench.grading.matchers import Call, match_call, max_matching
from agentbench.report.stats import wilson_interval
from agentbench.runner.records import ScenarioResult, ToolCallRecord
from agentbench.scenario.schema import ExpectedCall, Scenario

__all__ = ["FCCounts", "FCSummary", "fc_counts", "fc_summary", "library_scenarios", "schema_errors"]


@dataclass
class FCCounts:
    """Function-calling counts over a group of turns (one run, or many runs added up)."""

    units: int = 0  # required expected calls + expected abstentions
    correct: int = 0  # units done right with no hallucinated or malformed call in their turn
    expected_calls: int = 0  # required expected calls
    name_matched: int = 0  # expected calls paired with a call to the right tool
    args_matched: int = 0  # expected calls paired with a call that matches every listed argument
    missing: int = 0  # expected calls left without any call to their tool
    abstentions: int = 0  # turns that expect no tool call
    abstained: int = 0  # ... of which made none
    calls: int = 0  # calls made
    malformed: int = 0  # arguments not a JSON object
    hallucinated: int = 0  # names the scenario does not offer
    schema_checked: int = 0  # well-formed calls to offered tools
    schema_valid: int = 0  # ... whose arguments fit the tool's JSON schema
    duplicates: int = 0  # identical calls in a turn beyond the times the gold calls that tool (at least once)
    redundant: int = 0  # duplicates plus the other calls beyond the gold solution's count

    def add(self, other: FCCounts) -> None:
        """Add another group's counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @staticmethod
    def _share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def accuracy(self) -> float | None:
        """Function-calling accuracy: correct units / units (None without units)."""
        return self._share(self.correct, self.units)

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        """95% Wilson score interval of the function-calling accuracy."""
        return wilson_interval(self.correct, self.units)

    @property
    def name_accuracy(self) -> float | None:
        """Expected calls made with the right tool / expected calls."""
        return self._share(self.name_matched, self.expected_calls)

    @property
    def argument_accuracy(self) -> float | None:
        """Expected calls with every listed argument right / expected calls made with the right tool."""
        return self._share(self.args_matched, self.name_matched)

    @property
    def schema_validity(self) -> float | None:
        """Calls whose arguments fit the tool's schema / well-formed calls to offered tools."""
        return self._share(self.schema_valid, self.schema_checked)

    def as_json(self) -> dict[str, Any]:
        """The counts and the derived rates, for ``--json``."""
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(accuracy=self.accuracy, accuracy_ci95=list(self.accuracy_ci) if self.units else None,
                    name_accuracy=self.name_accuracy, argument_accuracy=self.argument_accuracy,
                    schema_validity=self.schema_validity)
        return data


@cache
def _validator(tool: str) -> Draft202012Validator | None:
    """The JSON-schema validator of a registered tool's arguments (None for an unknown tool).

    The tool's OpenAI ``parameters`` schema, with ``additionalProperties: false`` at the top: an
    argument the tool does not declare is a function-calling error even where the tool ignores it.
    """
    from agentbench.tools import tool_spec  # the tool registry imports every tool module: only when needed

    try:
        schema = dict(tool_spec(tool).openai_schema()["function"]["parameters"])
    except AgentbenchError:
        return None
    schema.setdefault("additionalProperties", False)
    return Draft202012Validator(schema)


def schema_errors(tool: str, args: Mapping[str, Any]) -> list[str] | None:
    """Why ``args`` do not fit ``tool``'s JSON schema ([] when they do; None for an unknown tool)."""
    validator = _validator(tool)
    if validator is None:
        return None
    return [f"{'.'.join(map(str, e.absolute_path)) or 'arguments'}: {e.message}"
            for e in validator.iter_errors(dict(args))]


def _pairs(mode: str, expected: Sequence[ExpectedCall], actual: Sequence[Call]) -> tuple[int, int]:
    """(expected calls fully matched, expected calls matched on the tool name at least)."""
    if mode == "strict":
        full = sum(match_call(e, a).passed for e, a in zip(expected, actual))
        named = sum(e.name == a.name for e, a in zip(expected, actual))
        return full, named
    full_pairs = max_matching([[match_call(e, a).passed for a in actual] for e in expected])
    rest_e = [e for i, e in enumerate(expected) if i not in full_pairs]
    rest_a = [a for j, a in enumerate(actual) if j not in full_pairs.values()]
    name_pairs = max_matching([[e.name == a.name for a in rest_a] for e in rest_e])
    return len(full_pairs), len(full_pairs) + len(name_pairs)


def _call_key(call: ToolCallRecord) -> str:
    return call.name + json.dumps(call.args, sort_keys=True, default=str)


def _turn_counts(scenario: Scenario | None, t: int, calls: Sequence[ToolCallRecord],
                 offered: set[str] | None, reached: bool) -> FCCounts:
    counts = FCCounts(calls=len(calls))
    counts.malformed = sum(c.status == "malformed" for c in calls)
    unknown = [c.name not in offered if offered is not None else c.status == "unknown_tool" for c in calls]
    counts.hallucinated = sum(unknown)
    gold = scenario.solution[t].tool_calls if scenario is not None and t < len(scenario.solution) else None
    # The gold solution shows how often a tool needs calling in this turn (run the tests, fix, run them
    # again): an identical call repeated more often than that is a duplicate.
    allowed = Counter(c.name for c in gold or [])
    seen: Counter[str] = Counter()
    for call, is_unknown in zip(calls, unknown):
        if call.status == "malformed" or is_unknown:
            continue
        errors = schema_errors(call.name, call.args)
        if errors is not None:
            counts.schema_checked += 1
            counts.schema_valid += not errors
        key = _call_key(call)
        seen[key] += 1
        counts.duplicates += seen[key] > max(1, allowed[call.name])
    counts.redundant = counts.duplicates
    if gold is not None:
        distinct = len(calls) - counts.malformed - counts.hallucinated - counts.duplicates
        counts.redundant += max(0, distinct - len(gold))
    if scenario is None or t >= len(scenario.turns):
        return counts
    expect = scenario.turns[t].expect
    clean = counts.malformed == 0 and counts.hallucinated == 0
    if expect.no_tool_calls:
        counts.units = counts.abstentions = 1
        # a turn the run never completed (it crashed or its endpoint failed) kept no abstention
        counts.abstained = counts.correct = int(not calls and reached)
    elif expect.tool_calls is not None and expect.tool_calls.mode != "subset":
        expected = expect.tool_calls.calls
        full, named = _pairs(expect.tool_calls.mode, expected, [Call(c.name, c.args) for c in calls])
        counts.units = counts.expected_calls = len(expected)
        counts.args_matched, counts.name_matched, counts.missing = full, named, len(expected) - named
        counts.correct = full if clean else 0
    return counts


def fc_counts(result: ScenarioResult, scenario: Scenario | None) -> FCCounts:
    """One run's function-calling counts; without its scenario (no longer in the library) only
    what the records alone tell (calls, malformed, unknown tools, schema validity, duplicates)."""
    if scenario is not None and scenario.id != result.scenario_id:
        raise ValueError(f"scenario {scenario.id!r} is not the one of this result ({result.scenario_id!r})")
    offered = set(scenario.tools) if scenario is not None else None
    turns = len(scenario.turns) if scenario is not None else max((c.turn + 1 for c in result.tool_calls), default=0)
    total = FCCounts()
    for t in range(turns):
        reached = result.outcome == "completed" or (t < len(result.turns) and result.turns[t].outcome == "completed")
        total.add(_turn_counts(scenario, t, [c for c in result.tool_calls if c.turn == t], offered, reached))
    return total


@dataclass
class FCSummary:
    """Function-calling counts per model and per (model, category), and which scenarios differ
    from the ones the run used (``drift``)."""

    models: list[str]
    categories: list[str]
    overall: dict[str, FCCounts] = field(default_factory=dict)
    by_category: dict[tuple[str, str], FCCounts] = field(default_factory=dict)
    drift: ScenarioDrift = field(default_factory=lambda: ScenarioDrift({}, {}, {}))

    def as_json(self, model: str) -> dict[str, Any]:
        """One model's counts and rates, overall and by category, and the scenario differences."""
        by_category = {c: s.as_json() for (m, c), s in self.by_category.items() if m == model}
        return {**self.overall[model].as_json(), "by_category": by_category, "scenario_drift": self.drift.as_json()}


def fc_summary(results: Iterable[ScenarioResult], scenarios: Mapping[str, Scenario],
               model_order: Sequence[str] = (), scenario_hashes: Mapping[str, str] | None = None) -> FCSummary:
    """Add up :func:`fc_counts` per model and per (model, category). ``scenario_hashes`` are the
    run's (``RunPlan.scenario_hashes``; None when it stored none, so every scenario is "unknown")."""
    results = list(results)
    overall: dict[str, FCCounts] = {}
    by_category: dict[tuple[str, str], FCCounts] = {}
    for result in results:
        counts = fc_counts(result, scenarios.get(result.scenario_id))
        overall.setdefault(result.model, FCCounts()).add(counts)
        by_category.setdefault((result.model, result.category), FCCounts()).add(counts)
    models = [m for m in model_order if m in overall] + sorted(set(overall) - set(model_order))
    return FCSummary(models, sorted({c for _, c in by_category}), overall, by_category,
                     scenario_drift(results, scenarios, scenario_hashes))


def library_scenarios(dirs: Sequence[str | Path] = ()) -> dict[str, Scenario]:
    """The scenarios of the library a run used (built-in plus ``dirs``), by id; an empty mapping
    when that library cannot be loaded any more (the metrics then use the records alone)."""
    from agentbench.scenario.loader import load_library  # the loader imports the tool registry

    try:
        return dict(load_library([Path(d) for d in dirs]).scenarios)
    except AgentbenchError:
        return {}
