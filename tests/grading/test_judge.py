"""The optional LLM judge, with the OpenAI wire-format test server as the judge."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentbench.cli.app import main
from agentbench.errors import ScenarioError
from agentbench.grading.judge import CACHE_FILE, JudgeCache, judge_settings, judge_stats, parse_judgement
from agentbench.models.backends import make_backend
from agentbench.models.registry import ModelSpec, load_registry
from agentbench.report.summary import summarize
from agentbench.report.tables import judge_table, summary_table
from agentbench.runner.execute import run_scenario
from agentbench.runner.records import GradeRecord, ScenarioResult
from agentbench.scenario.loader import load_library
from agentbench.scenario.schema import JudgeRubric, Scenario
from agentbench.store import ResultStore
from agentbench.testing.openai_server import OpenAITestServer, Reply, scripted_responder

JUDGED = """\
id: judged_demo
title: A reply whose tone is judged
category: conversation
description: d
judge: {{rubric: "The conversation stays polite.", scale: pass_fail}}
turns:
  - user: Say hello.
    expect:
      answer: [{{contains: hello}}]
  - user: Now say goodbye.
    expect:
      answer: [{{contains: goodbye}}]
      judge: {{rubric: "The goodbye is friendly and short.", scale: [1, 5], pass_at: 4{extra}}}
solution:
  - answer: hello there
  - answer: goodbye, friend
"""


def _scenario(write_scenario: Callable[[str, str], Path], extra: str = "") -> Scenario:
    path = write_scenario(JUDGED.format(extra=extra), "judged.yaml")
    return load_library([path.parent]).get("judged_demo")


def _options(base_url: str, cache: Path | None) -> dict[str, Any]:
    spec = ModelSpec(key="judge-model", backend="openai", base_url=base_url, model_name="test-model")
    return {"judge": judge_settings(spec, cache).model_dump()}


def _run(scenario: Scenario, options: dict[str, Any]) -> ScenarioResult:
    backend = make_backend(load_registry()["reference"])
    return asyncio.run(run_scenario(scenario, backend, run_id="t", tool_options=options))


def _judge_grades(result: ScenarioResult) -> dict[int | None, GradeRecord]:
    return {g.turn: g for g in result.grades if g.grader == "judge"}


NUMERIC = JudgeRubric(rubric="r", scale=(1, 5))
PASS_FAIL = JudgeRubric(rubric="r", scale="pass_fail")


@pytest.mark.parametrize(("text", "rubric", "score", "reason"), [
    ('{"score": 4, "reason": "friendly"}', NUMERIC, 4.0, "friendly"),
    ('Sure.\n```json\n{"Score": "5", "explanation": "short"}\n```', NUMERIC, 5.0, "short"),
    ('{"score": 2, "reason": "draft"} then {"score": 3, "reason": "final"}', NUMERIC, 3.0, "final"),
    ("Reasoning... Score: 3", NUMERIC, 3.0, None),
    ("**Rating:** 4/5", NUMERIC, 4.0, None),
    ("I would give it 2 out of 5.", NUMERIC, 2.0, None),
    ("<think>Score: 1 at first</think>Score: 5", NUMERIC, 5.0, None),
    ("4", NUMERIC, 4.0, None),
    ("Verdict: PASS", PASS_FAIL, 1.0, None),
    ('{"score": "fail", "reason": "rude"}', PASS_FAIL, 0.0, "rude"),
    ('{"verdict": true}', PASS_FAIL, 1.0, ""),
])
def test_parse_forms(text: str, rubric: JudgeRubric, score: float, reason: str | None) -> None:
    found = parse_judgement(text, rubric)
    assert found is not None and found.score == score and found.clamped_from is None
    if reason is not None:
        assert found.reason == reason


def test_scores_outside_the_scale_are_clamped_and_noise_is_unreadable() -> None:
    high = parse_judgement('{"score": 9, "reason": "x"}', NUMERIC)
    low = parse_judgement("Score: 0", NUMERIC)
    assert high is not None and (high.score, high.clamped_from) == (5.0, 9.0)
    assert low is not None and (low.score, low.clamped_from) == (1.0, 0.0)
    for noise in ("I liked it.", "Score: 8/10", '{"reason": "no score"}', "maybe"):
        assert parse_judgement(noise, NUMERIC) is None, noise
    assert parse_judgement("it depends", PASS_FAIL) is None


def test_judge_blocks_are_strict_with_file_and_line(write_scenario: Callable[[str, str], Path]) -> None:
    path = write_scenario(JUDGED.format(extra=", pass_at: 9").replace("pass_at: 4, ", ""), "judged.yaml")
    with pytest.raises(ScenarioError) as caught:
        load_library([path.parent])
    message = str(caught.value)
    assert "judged.yaml:13" in message and "pass_at 9 is outside the scale [1, 5]" in message
    path.write_text(JUDGED.format(extra=", wieght: 2"), encoding="utf-8")
    with pytest.raises(ScenarioError, match="wieght"):
        load_library([path.parent])


def test_judged_grades_are_stored_informational_and_cached(write_scenario: Callable[[str, str], Path],
                                                            tmp_path: Path) -> None:
    scenario = _scenario(write_scenario)
    replies = [Reply(content='{"score": 3, "reason": "a bit curt"}'), Reply(content="Verdict: pass")]
    cache = tmp_path / CACHE_FILE
    with OpenAITestServer(scripted_responder(replies)) as server:
        first = _run(scenario, _options(server.base_url, cache))
        again = _run(scenario, _options(server.base_url, cache))
        requests = list(server.requests)
    assert len(requests) == 2  # the second run was answered from the cache
    turn, whole = _judge_grades(first)[1], _judge_grades(first)[None]
    assert (turn.passed, turn.score, turn.informational) == (False, 0.5, True)
    assert "3/5 (pass at 4): a bit curt" in turn.reason
    assert turn.detail is not None and turn.detail["replies"] == ['{"score": 3, "reason": "a bit curt"}']
    assert turn.detail["status"] == "judged" and turn.detail["cached"] is False
    assert (whole.passed, whole.score) == (True, 1.0)
    assert first.passed and first.score == 1.0  # informational: the failed judge grade does not count
    assert [g.model_dump(exclude={"detail"}) for g in again.grades] == [
        g.model_dump(exclude={"detail"}) for g in first.grades]
    assert _judge_grades(again)[1].detail["cached"] is True  # type: ignore[index]
    # What the judge saw: the rubric, the scale, and the conversation up to the judged turn.
    body = requests[0].messages[-1]["content"]
    assert "The goodbye is friendly and short." in body and "an integer from 1 (worst) to 5 (best)" in body
    assert "[Turn 2] User: Now say goodbye." in body and "Assistant: goodbye, friend" in body
    assert requests[0].body["temperature"] == 0.0
    assert JudgeCache(cache).get("no-such-key") is None


def test_an_unreadable_reply_is_retried_once_with_a_stricter_instruction(
        write_scenario: Callable[[str, str], Path]) -> None:
    scenario = _scenario(write_scenario)
    replies = [Reply(content="A lovely goodbye!"), Reply(content='{"score": 5, "reason": "warm"}'),
               Reply(content="I refuse to grade."), Reply(content="Still no."), ]
    with OpenAITestServer(scripted_responder(replies)) as server:
        result = _run(scenario, _options(server.base_url, None))
        requests = list(server.requests)
    assert len(requests) == 4
    assert "could not be read" in requests[1].messages[-1]["content"]
    assert requests[1].messages[-2] == {"role": "assistant", "content": "A lovely goodbye!"}
    turn, whole = _judge_grades(result)[1], _judge_grades(result)[None]
    assert turn.passed and turn.score == 1.0 and turn.detail is not None
    assert turn.detail["replies"] == ["A lovely goodbye!", '{"score": 5, "reason": "warm"}']
    assert whole.detail is not None and whole.detail["status"] == "unparseable"
    assert whole.detail["replies"] == ["I refuse to grade.", "Still no."]
    assert not whole.passed and whole.informational and "Still no." in whole.reason
    assert result.passed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_down_endpoint_is_recorded_and_the_other_grades_stand(write_scenario: Callable[[str, str], Path]) -> None:
    scenario = _scenario(write_scenario, extra=", required: true")
    options = _options(f"http://127.0.0.1:{_free_port()}/v1", None)
    options["judge"]["max_retries"] = 0
    result = _run(scenario, options)
    grades = _judge_grades(result)
    assert {g.detail["status"] for g in grades.values() if g.detail} == {"endpoint_error"}
    assert all(g.informational and "APIConnectionError" in g.reason for g in grades.values())
    assert result.outcome == "completed" and result.passed  # the model under test is not blamed
    # ... but the required (turn) rubric left out of pass/fail is counted and shown, never silent
    assert judge_stats([result], {scenario.id: scenario})["reference"].required_unscored == 1
    summary = summarize([result])
    assert summary.overall["reference"].judge_unscored == 1
    assert "required judge not scored 1" in summary_table(summary).rows[0][-1]
    judged = judge_table(judge_stats([result], {scenario.id: scenario}))
    assert judged.headers[-1] == "required, not scored" and judged.rows[0][-1] == "1"


def test_a_required_judge_counts_in_passed(write_scenario: Callable[[str, str], Path]) -> None:
    scenario = _scenario(write_scenario, extra=", required: true")
    replies = [Reply(content="Score: 2"), Reply(content="PASS")]
    with OpenAITestServer(scripted_responder(replies)) as server:
        result = _run(scenario, _options(server.base_url, None))
    turn = _judge_grades(result)[1]
    assert not turn.passed and not turn.informational and turn.score == 0.25
    assert not result.passed and [g.grader for g in result.failed_grades()] == ["judge"]


def test_cli_judge_option_stores_grades_and_reuses_the_cache(
        write_scenario: Callable[[str, str], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_scenario(JUDGED.format(extra=""), "judged.yaml").parent
    results = tmp_path / "results"
    replies = [Reply(content='{"score": 4, "reason": "fine"}'), Reply(content='{"score": "pass", "reason": "ok"}')]
    with OpenAITestServer(scripted_responder(replies)) as server:
        models = tmp_path / "models.yaml"
        models.write_text(f"my-judge: {{backend: openai, base_url: '{server.base_url}', model_name: test-model}}\n",
                          encoding="utf-8")
        args = ["run", "--scenarios", "judged_demo", "--models", "reference", "--judge", "my-judge",
                "--scenarios-dir", str(folder), "--models-file", str(models), "--results-dir", str(results),
                "--json", "--no-report"]
        assert main(args) == 0
        first = json.loads(capsys.readouterr().out)
        assert main(args) == 0
        second = json.loads(capsys.readouterr().out)
        calls = len(server.requests)
    assert calls == 2 and (results / CACHE_FILE).is_file()
    stored = list(ResultStore(results).results(second["run_id"]))
    grades = _judge_grades(stored[0])
    assert grades[1].detail is not None and grades[1].detail["cached"] is True and grades[1].passed
    assert first["summary"]["reference"]["judge"]["judged"] == 2
    # Without --judge the blocks are ignored and reported as not judged.
    assert main(args[:5] + args[7:]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["summary"]["reference"]["judge"] == {"judged": 0, "not_judged": 2, "passed": 0, "mean_score": None,
                                                      "unparseable": 0, "endpoint_errors": 0, "not_reached": 0,
                                                      "required_unscored": 0}


def test_a_judge_without_an_endpoint_is_a_clear_error(write_scenario: Callable[[str, str], Path],
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--scenarios", "tip_calculation", "--models", "reference", "--judge", "reference",
                 "--results-dir", str(tmp_path)])
    assert code == 1 and "a judge must be served over HTTP" in capsys.readouterr().err


def test_the_cache_closes_every_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    opened: list[sqlite3.Connection] = []
    real_connect = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        opened.append(real_connect(*args, **kwargs))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", connect)
    cache = JudgeCache(tmp_path / CACHE_FILE)
    cache.put("k", "judge", ["reply"])
    assert cache.get("k") == ["reply"] and cache.get("other") is None
    assert len(opened) == 4
    for connection in opened:  # a closed connection refuses work; an open one would answer
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            connection.execute("SELECT 1")


def test_unreadable_replies_are_not_cached(write_scenario: Callable[[str, str], Path], tmp_path: Path) -> None:
    scenario = _scenario(write_scenario)
    cache = tmp_path / CACHE_FILE
    unreadable = [Reply(content="no idea"), Reply(content="still no idea")] * 2
    later = [Reply(content='{"score": 5, "reason": "warm"}'), Reply(content="Verdict: pass")]
    with OpenAITestServer(scripted_responder(unreadable + later)) as server:
        first = _run(scenario, _options(server.base_url, cache))
        again = _run(scenario, _options(server.base_url, cache))
        asked = len(server.requests)
    assert {g.detail["status"] for g in _judge_grades(first).values() if g.detail} == {"unparseable"}
    assert asked == 6  # the second run asked again instead of reusing the unreadable replies
    assert {g.detail["status"] for g in _judge_grades(again).values() if g.detail} == {"judged"}
    assert [g.detail["cached"] for g in _judge_grades(again).values() if g.detail] == [False, False]
