"""The optional LLM judge: a registered model scores answers against a rubric in the scenario.

Off by default. ``agentbench run --judge KEY`` (or ``agentbench scenario ... --judge KEY``) puts
the judge's settings into the run's options (:data:`JUDGE_OPTION`); :func:`judge_grades` then
asks the judge about every ``judge:`` block of the scenario (the whole conversation) and of its
turns (that turn's answer, in the context of the turns before it), and returns one ``judge``
grade per block. The judge's reply is parsed robustly (:func:`parse_judgement`), retried once
with a stricter instruction when unreadable, and cached in a SQLite file keyed by the judge
model, its settings, the rubric and the transcript's hash (:class:`JudgeCache`), so a second run
of the same transcript makes no HTTP call. Nothing here raises for a judge problem: an
unreadable reply or a failed endpoint is recorded in the grade (with the raw text or the error)
and the scenario's other grades stand. Judge grades are informational (not part of the run's
``passed`` and score) unless the rubric says ``required: true``. docs/metrics.md ("LLM judge").
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from pydantic import BaseModel, ConfigDict

from agentbench.errors import ConfigError
from agentbench.models.registry import ModelSpec
from agentbench.runner.records import GradeRecord, Outcome, ToolCallRecord, TurnRecord
from agentbench.scenario.schema import JUDGE_PASS_FAIL, JudgeRubric, Scenario

__all__ = [
    "CACHE_FILE",
    "JUDGE_OPTION",
    "JudgeCache",
    "JudgeSettings",
    "JudgeStats",
    "Judgement",
    "judge_blocks",
    "judge_grades",
    "judge_settings",
    "judge_stats",
    "parse_judgement",
]

#: The key of the judge's settings in a run's options (``RunPlan.tool_options``).
JUDGE_OPTION = "judge"
#: The cache's file name inside the results directory.
CACHE_FILE = "judge_cache.sqlite"
#: Part of every cache key: bump it when the prompt changes, so old replies are not reused.
PROMPT_VERSION = 1
_TOOL_RESULT_CHARS = 400  # a tool result shown to the judge is cut here: the answers are what is judged

_SYSTEM = ("You are an impartial, strict grader of an AI assistant's work. Apply the rubric exactly as "
           "written and nothing else. Reply with a single JSON object and no other text: "
           '{"score": <score>, "reason": "<one or two sentences>"}.')


class JudgeSettings(BaseModel):
    """How the judge is called (stored with the run's options, so a resumed run judges alike)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str  # the registry key
    model_name: str  # the name the server answers to
    base_url: str
    api_key_env: str | None = None
    temperature: float = 0.0
    max_tokens: int = 1024
    seed: int | None = 0
    timeout_s: float = 120.0
    max_retries: int = 1
    chat_template_kwargs: dict[str, Any] | None = None
    cache: str | None = None  # the SQLite cache file (None: no cache)

    def identity(self) -> dict[str, Any]:
        """What decides the judge's reply (the cache key's model part; the URL and cache are not)."""
        return {"model": self.model, "model_name": self.model_name, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "seed": self.seed, "chat_template_kwargs": self.chat_template_kwargs}


def judge_settings(spec: ModelSpec, cache: Path | None) -> JudgeSettings:
    """The judge's settings from its registry entry; ``ConfigError`` when it has no HTTP endpoint."""
    if spec.backend not in ("openai", "vllm"):
        raise ConfigError(f"--judge {spec.key!r}: a judge must be served over HTTP (backend openai or vllm), "
                          f"not {spec.backend}")
    if not spec.base_url:
        raise ConfigError(f"--judge {spec.key!r} has no base_url: start it (e.g. `agentbench serve {spec.key}`) "
                          "and pass its address with --judge-base-url")
    from agentbench.serving.launch import served_model_name  # the serving package is heavier than needed here

    name = served_model_name(spec) if spec.backend == "vllm" else (spec.model_name or spec.key)
    return JudgeSettings(model=spec.key, model_name=name, base_url=spec.base_url, api_key_env=spec.api_key_env,
                         temperature=spec.sampling.temperature, max_tokens=max(spec.sampling.max_tokens or 1024, 256),
                         seed=spec.sampling.seed, timeout_s=spec.timeout_s, max_retries=spec.max_retries,
                         chat_template_kwargs=spec.chat_template_kwargs,
                         cache=str(cache) if cache is not None else None)


# ---------------------------------------------------------------------------------------------
# Parsing the judge's reply
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Judgement:
    """A parsed reply: the score on the rubric's scale (1/0 for pass/fail) and the judge's reason."""

    score: float
    reason: str
    clamped_from: float | None = None  # the judge's own number when it was outside the scale


_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_SCORE_LINE = re.compile(r"\b(?:score|rating|grade)\**\s*(?:is|[:=])?\s*\**\s*" + _NUMBER
                         + r"(?:\s*(?:/|out of)\s*(\d+))?", re.I)
_FRACTION = re.compile(_NUMBER + r"\s*(?:/|out of)\s*(\d+)\b", re.I)
_VERDICT = re.compile(r"\b(?:score|verdict|result|grade|decision)\**\s*(?:is|[:=])?\s*\**\s*\"?(pass|fail)\b", re.I)
_SCORE_KEYS = ("score", "rating", "grade", "verdict", "result")
_REASON_KEYS = ("reason", "explanation", "rationale", "justification", "comment")
_WORDS = {"pass": 1.0, "passed": 1.0, "yes": 1.0, "true": 1.0, "fail": 0.0, "failed": 0.0, "no": 0.0,
          "false": 0.0}


def _json_objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in ``text`` (in code fences or prose), in order."""
    decoder, found = json.JSONDecoder(), []
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def _value_score(value: Any, pass_fail: bool) -> float | None:
    """A JSON value as a score: a number, a numeric string, or (pass/fail scale) a pass/fail word."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        word = value.strip().strip(".!").lower()
        if pass_fail and word in _WORDS:
            return _WORDS[word]
        try:
            return float(word)
        except ValueError:
            fraction = _FRACTION.fullmatch(word)
            return float(fraction.group(1)) if fraction else None
    return None


def _from_json(text: str, pass_fail: bool) -> Judgement | None:
    for obj in reversed(_json_objects(text)):  # the last object is the judge's final word
        lower = {str(k).lower(): v for k, v in obj.items()}
        for key in _SCORE_KEYS:
            score = _value_score(lower.get(key), pass_fail) if key in lower else None
            if score is not None:
                reason = next((str(lower[k]) for k in _REASON_KEYS if k in lower), "")
                return Judgement(score, reason)
    return None


def _from_text(text: str, high: int, pass_fail: bool) -> float | None:
    """``Score: 4`` / ``Rating = 4/5`` / ``4 out of 5`` / ``Verdict: PASS``: the last one given."""
    if pass_fail:
        verdicts = _VERDICT.findall(text)
        if verdicts:
            return _WORDS[verdicts[-1].lower()]
        word = re.sub(r"[^a-z]", "", text.lower())
        if word in _WORDS:
            return _WORDS[word]
    lines = [m for m in _SCORE_LINE.finditer(text) if m.group(2) is None or int(m.group(2)) == high]
    if lines:
        return float(lines[-1].group(1))
    fractions = [m for m in _FRACTION.finditer(text) if int(m.group(2)) == high]  # N/5 on a scale up to 5 only
    if fractions:
        return float(fractions[-1].group(1))
    bare = text.strip().strip(".")
    return float(bare) if re.fullmatch(_NUMBER, bare) else None


def parse_judgement(text: str, rubric: JudgeRubric) -> Judgement | None:
    """The score and reason in a judge's reply, clamped to the rubric's scale; None when unreadable.

    Read in this order: a JSON object with a ``score`` (or ``rating``/``grade``/``verdict``) and a
    ``reason`` (the last such object wins); ``Score: N`` (``Rating``, ``Grade``; ``N/HIGH``
    allowed); ``N/HIGH`` or ``N out of HIGH`` where HIGH is the scale's top; a bare number. On a
    pass/fail scale also ``pass``/``fail`` (``Verdict: PASS``, ``{"score": "fail"}``, ``true``).
    ``<think>`` blocks of reasoning models are ignored.
    """
    text = _THINK.sub("", text)
    pass_fail = rubric.scale == JUDGE_PASS_FAIL
    low, high = rubric.bounds
    found = _from_json(text, pass_fail)
    if found is None:
        score = _from_text(text, high, pass_fail)
        if score is None:
            return None
        found = Judgement(score, " ".join(text.split())[:500])
    clamped = float(min(max(found.score, low), high))
    return Judgement(clamped, found.reason, found.score if clamped != found.score else None)


# ---------------------------------------------------------------------------------------------
# The cache
# ---------------------------------------------------------------------------------------------


class JudgeCache:
    """Judge replies by key in a SQLite file (safe for several worker processes at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS judge_cache (key TEXT PRIMARY KEY, judge TEXT NOT NULL, "
                       "created REAL NOT NULL, replies TEXT NOT NULL)")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection that commits on success and is always closed (a plain ``with connect()``
        commits but leaves the connection, and its file handle, open)."""
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db

    def get(self, key: str) -> list[str] | None:
        """The judge's raw replies stored under ``key`` (None when not cached)."""
        with self._connect() as db:
            row = db.execute("SELECT replies FROM judge_cache WHERE key = ?", (key,)).fetchone()
        return None if row is None else list(json.loads(row[0]))

    def put(self, key: str, judge: str, replies: Sequence[str]) -> None:
        """Store the judge's raw replies under ``key``."""
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO judge_cache VALUES (?, ?, ?, ?)",
                       (key, judge, time.time(), json.dumps(list(replies))))


def cache_key(settings: JudgeSettings, rubric: JudgeRubric, task: str, transcript: str) -> str:
    """sha256 over the judge model and settings, the rubric, the task line and the transcript's hash."""
    data = {"v": PROMPT_VERSION, "judge": settings.identity(), "rubric": rubric.rubric,
            "scale": list(rubric.bounds) if rubric.scale != JUDGE_PASS_FAIL else JUDGE_PASS_FAIL, "task": task,
            "transcript_sha256": hashlib.sha256(transcript.encode()).hexdigest()}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Asking the judge
# ---------------------------------------------------------------------------------------------


def transcript_text(turns: Sequence[TurnRecord], tool_calls: Sequence[ToolCallRecord], upto: int) -> str:
    """The conversation up to turn ``upto`` (0-based, included) as the judge reads it."""
    lines = []
    for turn in turns[:upto + 1]:
        lines.append(f"[Turn {turn.index + 1}] User: {turn.user}")
        for call in (c for c in tool_calls if c.turn == turn.index):
            result = call.result if len(call.result) <= _TOOL_RESULT_CHARS else call.result[:_TOOL_RESULT_CHARS] + "..."
            lines.append(f"Assistant called {call.name}({json.dumps(call.args, default=str)}) -> "
                         f"{call.status}: {result}")
        lines.append(f"Assistant: {turn.answer}" if turn.outcome == "completed"
                     else f"Assistant: (no answer: {turn.outcome})")
    return "\n".join(lines)


def _scale_text(rubric: JudgeRubric) -> str:
    if rubric.scale == JUDGE_PASS_FAIL:
        return 'the string "pass" or "fail"'
    low, high = rubric.bounds
    return f"an integer from {low} (worst) to {high} (best)"


def _messages(rubric: JudgeRubric, task: str, transcript: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"Rubric:\n{rubric.rubric}\n\nThe score is {_scale_text(rubric)}.\n\n"
                                        f"{task}\n\nConversation:\n{transcript}\n\nReply with only the JSON "
                                        'object {"score": ..., "reason": ...}.'}]


def _stricter(rubric: JudgeRubric, reply: str) -> list[dict[str, str]]:
    example = '"pass"' if rubric.scale == JUDGE_PASS_FAIL else str(rubric.threshold)
    return [{"role": "assistant", "content": reply},
            {"role": "user", "content": "Your reply could not be read as a score. Reply with ONLY a JSON object "
                                        f'such as {{"score": {example}, "reason": "..."}}, where score is '
                                        f"{_scale_text(rubric)}, and no other text."}]


async def _ask(settings: JudgeSettings, messages: list[dict[str, str]]) -> str:
    """One chat completion from the judge; its text (reasoning blocks included, the parser drops them)."""
    import os

    api_key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else "EMPTY"
    extra = {"chat_template_kwargs": settings.chat_template_kwargs} if settings.chat_template_kwargs else None
    async with openai.AsyncOpenAI(base_url=settings.base_url, api_key=api_key or "EMPTY",
                                  timeout=settings.timeout_s, max_retries=settings.max_retries) as client:
        response = await client.chat.completions.create(
            model=settings.model_name, messages=messages,  # type: ignore[arg-type]
            temperature=settings.temperature, max_tokens=settings.max_tokens, seed=settings.seed, extra_body=extra)
    return (response.choices[0].message.content or "") if response.choices else ""


async def _replies(settings: JudgeSettings, rubric: JudgeRubric, task: str, transcript: str) -> tuple[list[str], bool]:
    """The judge's raw replies (one, or two after a retry) and whether they came from the cache."""
    cache = JudgeCache(Path(settings.cache)) if settings.cache else None
    key = cache_key(settings, rubric, task, transcript)
    if cache is not None and (stored := cache.get(key)) is not None:
        return stored, True
    messages = _messages(rubric, task, transcript)
    replies = [await _ask(settings, messages)]
    if parse_judgement(replies[0], rubric) is None:
        replies.append(await _ask(settings, [*messages, *_stricter(rubric, replies[0])]))
    if cache is not None and parse_judgement(replies[-1], rubric) is not None:
        cache.put(key, settings.model, replies)  # an unreadable judgement is asked again next time
    return replies, False


async def _judge(settings: JudgeSettings, rubric: JudgeRubric, turn: int | None, task: str,
                 transcript: str | None) -> GradeRecord:
    detail: dict[str, Any] = {"judge": settings.model, "model_name": settings.model_name,
                              "scale": JUDGE_PASS_FAIL if rubric.scale == JUDGE_PASS_FAIL else list(rubric.bounds),
                              "pass_at": rubric.threshold, "required": rubric.required}

    def grade(status: str, passed: bool, score: float, reason: str, counts: bool) -> GradeRecord:
        return GradeRecord(grader="judge", turn=turn, passed=passed, score=score, reason=reason,
                           informational=not counts, detail={"status": status, **detail})

    if transcript is None:  # the model never answered: a required judge fails it like any grader would
        return grade("not_reached", False, 0.0, "not judged: the turn was not completed", rubric.required)
    try:
        replies, cached = await _replies(settings, rubric, task, transcript)
    except (openai.APIError, OSError) as exc:  # the judge's endpoint, not the model under test
        detail["error"] = f"{type(exc).__name__}: {exc}"
        return grade("endpoint_error", False, 0.0, f"judge {settings.model} failed: {detail['error']}", False)
    detail.update(replies=replies, cached=cached)
    found = parse_judgement(replies[-1], rubric)
    if found is None:
        return grade("unparseable", False, 0.0, f"judge {settings.model}: reply unreadable after a retry "
                                                f"(raw: {replies[-1][:200]!r})", False)
    low, high = rubric.bounds
    detail.update(score=found.score, clamped_from=found.clamped_from)
    passed = found.score >= rubric.threshold
    shown = ("pass" if passed else "fail") if rubric.scale == JUDGE_PASS_FAIL else (
        f"{found.score:g}/{high} (pass at {rubric.threshold})")
    return grade("judged", passed, (found.score - low) / (high - low),
                 f"judge {settings.model}: {shown}: {found.reason or '(no reason given)'}", rubric.required)


def _targets(scenario: Scenario) -> list[tuple[int | None, JudgeRubric]]:
    found: list[tuple[int | None, JudgeRubric]] = [(t, turn.expect.judge) for t, turn in enumerate(scenario.turns)
                                                   if turn.expect.judge is not None]
    return found + ([(None, scenario.judge)] if scenario.judge is not None else [])


def judge_blocks(scenario: Scenario) -> int:
    """How many ``judge:`` blocks the scenario has (scenario level and turns)."""
    return len(_targets(scenario))


async def judge_grades(scenario: Scenario, turns: Sequence[TurnRecord], tool_calls: Sequence[ToolCallRecord],
                       outcome: Outcome, options: dict[str, Any] | None) -> list[GradeRecord]:
    """One ``judge`` grade per judge block of ``scenario``; none without judge settings (no --judge)."""
    if not options:
        return []
    settings = JudgeSettings.model_validate(options)
    grades = []
    for t, rubric in _targets(scenario):
        if t is None:
            whole = outcome == "completed" and len(turns) == len(scenario.turns)
            task = "Judge the assistant's handling of the whole conversation."
            text = transcript_text(turns, tool_calls, len(turns) - 1) if whole else None
        else:
            reached = t < len(turns) and turns[t].outcome == "completed"
            task = (f"Judge the assistant's final answer in turn {t + 1} (the last turn shown), in the context of "
                    "the conversation before it.")
            text = transcript_text(turns, tool_calls, t) if reached else None
        grades.append(await _judge(settings, rubric, t, task, text))
    return grades


@dataclass
class JudgeStats:
    """One model's judge grades: judged (a score was read), passed, the mean normalised score, and
    the blocks that were not judged (no --judge), unreadable, failed at the endpoint or not reached.
    ``required_unscored`` counts the ``required: true`` blocks among the unreadable and endpoint
    errors: their runs' pass/fail leaves out a rubric the scenario requires."""

    judged: int = 0
    passed: int = 0
    score_sum: float = 0.0
    not_judged: int = 0
    unparseable: int = 0
    endpoint_errors: int = 0
    not_reached: int = 0
    required_unscored: int = 0

    @property
    def mean_score(self) -> float | None:
        """Mean normalised (0..1) score over judged blocks."""
        return self.score_sum / self.judged if self.judged else None

    def as_json(self) -> dict[str, Any]:
        """The counts and the mean score, for ``--json``."""
        return {"judged": self.judged, "not_judged": self.not_judged, "passed": self.passed,
                "mean_score": self.mean_score, "unparseable": self.unparseable,
                "endpoint_errors": self.endpoint_errors, "not_reached": self.not_reached,
                "required_unscored": self.required_unscored}


def judge_stats(results: Sequence[Any], scenarios: Mapping[str, Scenario]) -> dict[str, JudgeStats]:
    """Per model, over runs of scenarios with judge blocks (``results`` are ``ScenarioResult``)."""
    stats: dict[str, JudgeStats] = {}
    for result in results:
        grades = [g for g in result.grades if g.grader == "judge"]
        scenario = scenarios.get(result.scenario_id)
        blocks = judge_blocks(scenario) if scenario is not None else len(grades)
        if not blocks:
            continue
        s = stats.setdefault(result.model, JudgeStats())
        s.not_judged += max(0, blocks - len(grades))
        for g in grades:
            status = (g.detail or {}).get("status", "judged")
            if status == "judged":
                s.judged += 1
                s.passed += g.passed
                s.score_sum += g.score
            else:
                field = {"unparseable": "unparseable", "endpoint_error": "endpoint_errors"}.get(status, "not_reached")
                setattr(s, field, getattr(s, field) + 1)
                s.required_unscored += field != "not_reached" and bool((g.detail or {}).get("required"))
    return stats
