"""The results store: an append-only JSONL transcript per run plus a SQLite index of all runs.

Layout under the results directory (default ``./agentbench-results``)::

    index.sqlite                 runs and one row per scenario result (for listing and queries)
    runs/<run_id>/plan.json      what the run was asked to do (models, scenarios, repeats, ...)
    runs/<run_id>/results.jsonl  one ScenarioResult per line: the source of truth

Crash safety: a result is appended to the JSONL file and fsynced before its index row is
committed. After ``kill -9`` the JSONL may end in a partial line (dropped on resume) or hold
results the index lacks (re-indexed on resume), so nothing stored is lost, duplicated or re-run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentbench.errors import ConfigError
from agentbench.runner.records import ScenarioResult

DEFAULT_RESULTS_DIR = Path("agentbench-results")
ENV_RESULTS_DIR = "AGENTBENCH_RESULTS_DIR"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL,
    models TEXT NOT NULL, scenarios INTEGER NOT NULL, repeats INTEGER NOT NULL, finished_at TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL, model TEXT NOT NULL, scenario_id TEXT NOT NULL, repeat INTEGER NOT NULL,
    category TEXT NOT NULL, outcome TEXT NOT NULL, passed INTEGER NOT NULL, score REAL NOT NULL,
    wall_s REAL NOT NULL, steps INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
    started_at TEXT NOT NULL,
    PRIMARY KEY (run_id, model, scenario_id, repeat)
);
"""


class RunPlan(BaseModel):
    """What a run was asked to do; stored so ``--resume`` repeats exactly that."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    created_at: str
    models: list[str]
    model_specs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    scenario_ids: list[str]
    # sha256 of each scenario's content at run time (agentbench.grading.drift); None: an older run
    scenario_hashes: dict[str, str] | None = None
    repeats: int = Field(default=1, ge=1)
    concurrency: int = Field(default=4, ge=1)
    workers: int = Field(default=1, ge=1)
    selection: str = ""
    scenarios_dirs: list[str] = Field(default_factory=list)
    models_file: str | None = None
    tool_options: dict[str, Any] = Field(default_factory=dict)
    agentbench_version: str = ""

    def work_items(self) -> list[tuple[str, str, int]]:
        """Every (model, scenario, repeat) the run must produce, in a stable order."""
        return [(m, s, r) for m in self.models for s in self.scenario_ids for r in range(self.repeats)]


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the microsecond: runs started within one second (scripts, tests)
    must still sort in the order they were created (``latest_run_id``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261126-190501-3f9a``."""
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def results_dir(option: Path | None) -> Path:
    """The results directory: the option, else ``AGENTBENCH_RESULTS_DIR``, else the default."""
    return option or Path(os.environ.get(ENV_RESULTS_DIR) or DEFAULT_RESULTS_DIR)


class ResultStore:
    """Reads and writes runs under one results directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            (root / "runs").mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(root / "index.sqlite", timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the results directory {root}: {exc}") from None

    def close(self) -> None:
        """Close the index."""
        self._db.close()

    def _run_dir(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise ConfigError(f"invalid run id {run_id!r}")
        return self.root / "runs" / run_id

    def create_run(self, plan: RunPlan) -> None:
        """Record a new run's plan."""
        folder = self._run_dir(plan.run_id)
        folder.mkdir(parents=True, exist_ok=False)
        temporary = folder / "plan.json.tmp"
        temporary.write_text(plan.model_dump_json(indent=2), encoding="utf-8")
        temporary.replace(folder / "plan.json")  # atomic: a plan is complete or absent
        with self._db:
            self._db.execute(
                "INSERT INTO runs VALUES (?, ?, 'running', ?, ?, ?, NULL)",
                (plan.run_id, plan.created_at, ",".join(plan.models), len(plan.scenario_ids), plan.repeats),
            )

    def plan(self, run_id: str) -> RunPlan:
        """The stored plan of ``run_id``; ``ConfigError`` if there is no such run."""
        path = self._run_dir(run_id) / "plan.json"
        if not path.is_file():
            raise ConfigError(f"no run {run_id!r} in {self.root} (see `agentbench runs list`)")
        try:
            return RunPlan.model_validate_json(path.read_text(encoding="utf-8"))
        except ValidationError as exc:
            raise ConfigError(f"{path}: not a valid run plan: {exc}") from None

    def _jsonl(self, run_id: str) -> Path:
        return self._run_dir(run_id) / "results.jsonl"

    def recover(self, run_id: str) -> set[tuple[str, str, int]]:
        """Repair a run after a crash and return the keys of the results it already has."""
        path = self._jsonl(run_id)
        if path.exists():
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end != len(data):  # a write cut off by the crash: the result was never complete
                with open(path, "r+b") as handle:
                    handle.truncate(end)
        results = list(self.results(run_id))
        with self._db:
            for result in results:
                self._index(result)
            self._db.execute("UPDATE runs SET status='running', finished_at=NULL WHERE run_id=?", (run_id,))
        return {r.key for r in results}

    def append(self, result: ScenarioResult, line: str | None = None) -> None:
        """Store one result durably (JSONL first, then the index).

        ``line`` is the result's JSON when the caller already has it (a worker process sent
        it), which saves serialising it again.
        """
        line = (line or result.model_dump_json()).rstrip("\n") + "\n"
        with open(self._jsonl(result.run_id), "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        with self._db:
            self._index(result)

    def _index(self, r: ScenarioResult) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.run_id, r.model, r.scenario_id, r.repeat, r.category, r.outcome, int(r.passed), r.score,
             r.wall_s, r.steps, r.tokens("input"), r.tokens("output"), r.started_at),
        )

    def finish_run(self, run_id: str, status: str) -> None:
        """Mark a run ``completed`` or ``interrupted``."""
        with self._db:
            self._db.execute("UPDATE runs SET status=?, finished_at=? WHERE run_id=?", (status, now_iso(), run_id))

    def results(self, run_id: str) -> Iterator[ScenarioResult]:
        """The run's results in the order they were stored."""
        path = self._jsonl(run_id)
        if not self._run_dir(run_id).is_dir():
            raise ConfigError(f"no run {run_id!r} in {self.root} (see `agentbench runs list`)")
        if not path.exists():
            return
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    break  # an unfinished write; `recover` drops it
                try:
                    yield ScenarioResult.model_validate(json.loads(line))
                except (ValueError, ValidationError) as exc:
                    raise ConfigError(f"{path}:{number}: not a valid result record: {exc}") from None

    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with its result counts."""
        rows = self._db.execute(
            "SELECT r.run_id, r.created_at, r.status, r.models, r.scenarios, r.repeats, r.finished_at,"
            " COUNT(x.run_id), COALESCE(SUM(x.passed), 0) FROM runs r LEFT JOIN results x"
            " ON x.run_id = r.run_id GROUP BY r.run_id ORDER BY r.created_at DESC, r.run_id DESC"
        ).fetchall()
        keys = ("run_id", "created_at", "status", "models", "scenarios", "repeats", "finished_at",
                "results", "passed")
        return [dict(zip(keys, row)) for row in rows]

    def latest_run_id(self) -> str:
        """The newest run's id; ``ConfigError`` if there is none."""
        runs = self.runs()
        if not runs:
            raise ConfigError(f"no runs in {self.root} yet; start one with `agentbench run`")
        return str(runs[0]["run_id"])
