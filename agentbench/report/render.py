"""Writing a run's report: Markdown and a self-contained HTML page (no external assets)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from agentbench.grading.fc_metrics import library_scenarios
from agentbench.report.tables import Table, report_tables
from agentbench.runner.records import ScenarioResult
from agentbench.store import RunPlan

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:0.5rem 0 1.5rem}th,td{border:1px solid #ccc;padding:4px 8px;
text-align:left;vertical-align:top;font-size:14px}th{background:#f3f3f3}
td.pass{color:#11602d}td.fail{color:#a11}p.note{color:#555;font-size:13px}code{background:#f6f6f6}
"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, intro: Sequence[str], tables: Sequence[Table]) -> str:
    """The report as GitHub-flavoured Markdown."""
    lines = [f"# {title}", "", *intro, ""]
    for table in tables:
        lines += [f"## {table.title}", ""]
        if not table.rows:
            lines += ["(none)", ""]
            continue
        lines.append("| " + " | ".join(table.headers) + " |")
        lines.append("|" + "---|" * len(table.headers))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
        lines += ["", f"_{table.note}_", ""] if table.note else [""]
    return "\n".join(lines)


def _html_cell(text: str) -> str:
    css = " class=pass" if text.startswith(("PASS", "ok")) else " class=fail" if text.startswith(
        ("FAIL", "MISSED", "FALSE")) else ""
    return f"<td{css}>{html.escape(text)}</td>"


def render_html(title: str, intro: Sequence[str], tables: Sequence[Table]) -> str:
    """The report as one HTML page with inline CSS."""
    parts = [f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<p>{html.escape(line)}</p>" for line in intro]
    for table in tables:
        parts.append(f"<h2>{html.escape(table.title)}</h2>")
        if not table.rows:
            parts.append("<p>(none)</p>")
            continue
        head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
        body = "".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in table.rows)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if table.note:
            parts.append(f"<p class=note>{html.escape(table.note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def run_intro(plan: RunPlan, results: Sequence[ScenarioResult]) -> list[str]:
    """The lines that say what a run was."""
    return [
        f"Run {plan.run_id}, started {plan.created_at[:19].replace('T', ' ')} UTC "
        f"(agentbench {plan.agentbench_version}).",
        f"Models: {', '.join(plan.models)}. Scenarios: {len(plan.scenario_ids)}"
        f"{f' ({plan.selection})' if plan.selection else ''}. Repeats: {plan.repeats}. "
        f"Results stored: {len(results)} of {len(plan.work_items())}.",
        *([f"Run-level tool settings: {tools}."] if (tools := {k: v for k, v in plan.tool_options.items()
                                                                if k != "judge"}) else []),
        *([f"LLM judge: {judge.get('model')} ({judge.get('model_name')} at {judge.get('base_url')})."]
          if (judge := plan.tool_options.get("judge")) else []),
        *(["WARNING: model-written code ran WITHOUT the sandbox (--unsafe-no-sandbox)."]
          if plan.tool_options.get("allow_unsafe_code") else []),
    ]


def write_report(plan: RunPlan, results: Sequence[ScenarioResult], out_dir: Path,
                 results_root: Path | None = None) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; return their paths. ``results_root``
    (the store's folder) supplies bench results for the performance criteria."""
    tables = report_tables(results, plan.models, plan.model_specs, library_scenarios(plan.scenarios_dirs),
                           results_root, plan.scenario_hashes)
    title = f"agentbench report: {plan.run_id}"
    intro = run_intro(plan, results)
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown, page = out_dir / "report.md", out_dir / "report.html"
    markdown.write_text(render_markdown(title, intro, tables), encoding="utf-8")
    page.write_text(render_html(title, intro, tables), encoding="utf-8")
    return markdown, page
