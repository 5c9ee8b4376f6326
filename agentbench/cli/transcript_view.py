"""Showing one scenario run in the terminal: transcript summary, grades, timings."""

from __future__ import annotations

import json
from statistics import mean

from rich.markup import escape

from agentbench.cli.common import out, print_table
from agentbench.report.tables import Table
from agentbench.runner.records import ScenarioResult


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return escape(text if len(text) <= limit else text[: limit - 3] + "...")


def print_result(result: ScenarioResult) -> None:
    """Print a scenario run: header, turns with tool calls, faults, grades and timings."""
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    out.print(f"\n[bold]{result.scenario_id}[/bold] with [bold]{escape(result.model)}[/bold] "
              f"(repeat {result.repeat}): {verdict} score {result.score:.2f}, outcome {result.outcome}")
    for turn in result.turns:
        out.print(f"[cyan]turn {turn.index + 1}[/cyan] user: {_clip(turn.user)}")
        for call in (c for c in result.tool_calls if c.turn == turn.index):
            args = call.raw_args if call.raw_args is not None else json.dumps(call.args, ensure_ascii=False)
            style = "green" if call.status == "ok" else "yellow"
            out.print(f"  -> {escape(call.name)}({_clip(args, 100)}) [{style}]{call.status}[/{style}] "
                      f"{1000 * call.latency_s:.1f} ms: {_clip(call.result, 120)}")
        out.print(f"  answer: {_clip(turn.answer) or '[dim](none)[/dim]'}  "
                  f"[dim]({turn.steps} model calls, {turn.wall_s:.3f} s, {turn.outcome})[/dim]")
    for fault in result.faults:
        out.print(f"  [magenta]injected fault[/magenta] {fault['kind']} on turn {fault['turn'] + 1}: "
                  f"{escape(fault['detail'])} (expected grader: {fault['expected_grader']})")
    if result.error:
        out.print(f"[red]error:[/red] {escape(result.error.strip())}")
    grades = Table("Grades", ["grader", "passed", "score", "reason"])
    grades.rows = [[g.label, "PASS" if g.passed else "FAIL", f"{g.score:.2f}", g.reason] for g in result.grades]
    print_table(grades)
    calls = result.model_calls
    latency = f"{1000 * mean(c.latency_s for c in calls):.1f} ms mean" if calls else "-"
    ttfts = [c.ttft_s for c in calls if c.ttft_s is not None]
    ttft = f", TTFT {1000 * mean(ttfts):.1f} ms mean" if ttfts else ""
    tokens_in, tokens_out = result.tokens("input"), result.tokens("output")
    usage = f", tokens in/out {tokens_in}/{tokens_out}" if tokens_in is not None else ", tokens: not reported"
    out.print(f"[dim]timings: {result.wall_s:.3f} s wall, {len(calls)} model calls ({latency}{ttft}){usage}, "
              f"{len(result.tool_calls)} tool calls[/dim]")
