"""Code tools: ``run_python`` and ``run_tests``, both executed in the bubblewrap sandbox.

The sandbox (:mod:`.sandbox`) is the security boundary: no network, a read-only system, only
the workspace writable, resource limits, a wall-clock limit. When it is unavailable the tools
refuse with instructions, unless the run allows unsafe execution
(``ctx.options["allow_unsafe_code"]``, the CLI's ``--unsafe-no-sandbox``); every result then says
``"sandbox": "none (unsafe)"``.

:func:`run_pytest` is public for graders (hidden tests): it runs pytest on a workspace and parses
the JUnit XML report, never pytest's text output.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agentbench.errors import ToolError

from . import _safe_paths as sp
from . import sandbox
from .registry import ToolContext, register_tool

DEFAULT_TIMEOUT_S = 10.0
#: The most a model may ask for with ``timeout_s`` (a run option can raise it).
DEFAULT_MAX_TIMEOUT_S = 60.0
MAX_CODE_BYTES = 256 * 1024
#: How much of pytest's text output ``run_tests`` returns (the end: the summary lives there).
OUTPUT_TAIL_CHARS = 8000
_JUNIT = "junit.xml"


class RunPythonArgs(BaseModel):
    code: str = Field(description="A complete Python 3 program. Print what you want to see.")
    timeout_s: float | None = Field(
        default=None, gt=0, description="Wall-clock limit in seconds; omit for the default (10 s)."
    )


class RunTestsArgs(BaseModel):
    path: str = Field(
        default=".", description="Test file or directory relative to the workspace; '.' (default) runs all."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="Wall-clock limit in seconds; omit for the default (10 s)."
    )


@dataclass(frozen=True)
class PytestReport:
    """The outcome of one pytest run, from its JUnit XML report."""

    passed: int
    failed: int
    errors: int
    skipped: int
    failing: tuple[str, ...]  # node ids of failed and erroring tests, e.g. "test_x.py::test_y"
    exit_code: int | None  # pytest's exit status; None if it was killed (time limit)
    output: str  # the tail of pytest's text output
    sandbox: str
    timed_out: bool = False
    duration_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def collected(self) -> int:
        """Test cases in the report."""
        return self.passed + self.failed + self.errors + self.skipped

    @property
    def all_passed(self) -> bool:
        """At least one test passed and none failed or errored (skips alone do not pass)."""
        return self.passed > 0 and self.failed == 0 and self.errors == 0 and self.collected > 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (what ``run_tests`` returns)."""
        data = asdict(self)
        data["failing"] = list(self.failing)
        data["notes"] = list(self.notes)
        data["collected"] = self.collected
        data["all_passed"] = self.all_passed
        return data


# --------------------------------------------------------------------------- options


def _timeout(ctx: ToolContext, requested: float | None) -> float:
    """The wall-clock limit: the model's request (capped), else the run's default."""
    default = _positive(ctx.options.get("code_timeout_s"), DEFAULT_TIMEOUT_S)
    cap = max(default, _positive(ctx.options.get("max_code_timeout_s"), DEFAULT_MAX_TIMEOUT_S))
    return default if requested is None else min(float(requested), cap)


def _positive(value: object, default: float) -> float:
    """``value`` if it is a positive number, else ``default``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        return default
    return float(value)


def _allow_unsafe(ctx: ToolContext) -> bool:
    return ctx.options.get("allow_unsafe_code") is True


# --------------------------------------------------------------------------- run_python


def run_code(workspace: Path, code: str, *, timeout_s: float = DEFAULT_TIMEOUT_S,
             allow_unsafe: bool = False) -> dict[str, Any]:
    """Run ``code`` as a Python program in the sandbox, cwd = the workspace; the tool's result."""
    data = code.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_CODE_BYTES:
        raise ToolError(f"code is {len(data)} bytes; the limit is {MAX_CODE_BYTES}; write modules to files instead")
    result = sandbox.run(
        lambda layout: [sys.executable, f"{layout.inputs}/main.py"], workspace,
        inputs={"main.py": data}, limits=sandbox.Limits(wall_s=timeout_s), allow_unsafe=allow_unsafe,
    )
    return {
        "exit_code": result.exit_code,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "timed_out": result.timed_out,
        "duration_s": result.duration_s,
        "sandbox": result.sandbox,
    }


@register_tool(
    "run_python",
    RunPythonArgs,
    """Run a Python 3 program and return its output.
The program runs in an isolated sandbox with the workspace as its current directory: it can read
and write workspace files and import modules saved there, but has no network access, and only the
standard library and pytest are installed. Limits: 10 s by default (set timeout_s to change it),
1 GiB of memory per process, 16 MiB per file written; output over 64 KiB is truncated.
Returns JSON: "exit_code" (0 on success, null if killed), "stdout", "stderr" (tracebacks appear
here), "timed_out", "duration_s", "sandbox".
Example: {"code": "import math\\nprint(math.sqrt(2))"}""",
    group="code",
    blocking=True,
)
def run_python(ctx: ToolContext, args: RunPythonArgs) -> dict[str, Any]:
    """Run ``args.code`` in the sandbox."""
    return run_code(ctx.workspace, args.code, timeout_s=_timeout(ctx, args.timeout_s),
                    allow_unsafe=_allow_unsafe(ctx))


# --------------------------------------------------------------------------- run_tests


def _targets(workspace: Path, targets: list[str] | None) -> list[str]:
    """Validated pytest targets: relative paths inside the workspace that exist (no links)."""
    checked = []
    for target in targets or ["."]:
        file_part, sep, rest = target.partition("::")  # keep a node id's "::test_name" suffix
        wpath = sp.parse_path(file_part, allow_root=True)
        here = sp.workspace_root(workspace)
        for i in range(len(wpath.parts)):
            try:
                st = os.lstat(os.path.join(here, *wpath.parts[: i + 1]))
            except FileNotFoundError:
                raise ToolError(f"'{wpath.shown}' does not exist in the workspace") from None
            except OSError as exc:  # e.g. "a.py/x": a file used as a directory
                raise ToolError(f"'{wpath.shown}' cannot be used as a test path: {exc.strerror}") from None
            if stat.S_ISLNK(st.st_mode):
                raise ToolError(f"'{wpath.shown}' goes through a symbolic link; links are not followed")
        checked.append(wpath.shown + sep + rest)
    return checked


def run_pytest(
    workspace: Path, targets: list[str] | None = None, *, timeout_s: float = 60.0, allow_unsafe: bool = False,
    hardened: bool = False,
) -> PytestReport:
    """Run pytest on ``targets`` (paths relative to ``workspace``; default: all) in the sandbox.

    Counts come from pytest's JUnit XML report. ``ToolError`` for a bad target, a missing pytest
    or an unavailable sandbox (unless ``allow_unsafe``). ``hardened`` is for graders running
    hidden tests on a model's workspace: the workspace's ``conftest.py`` files, pytest
    configuration and startup hooks (``sitecustomize.py``, a shadowing ``pytest.py``) are ignored,
    so a model cannot make failing tests report success that way.
    """
    if importlib.util.find_spec("pytest") is None:
        raise ToolError("pytest is not installed in agentbench's Python environment")
    checked = _targets(workspace, targets)

    # -I keeps the workspace off sys.path at start-up; pytest still puts the tests' folder on it.
    guards = ["--noconftest", "-c", "/dev/null"] if hardened else []

    def command(layout: sandbox.Layout) -> list[str]:
        return [
            sys.executable, *(["-I"] if hardened else []), "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "junit_family=xunit1", f"--junitxml={layout.outputs}/{_JUNIT}", f"--rootdir={layout.workspace}",
            "--color=no", "--continue-on-collection-errors", *guards, *checked,
        ]

    # Plugins installed beside agentbench (pytest-asyncio: a second of start-up) stay off: the
    # workspace's tests get plain pytest, the same on every machine.
    result = sandbox.run(command, workspace, limits=sandbox.Limits(wall_s=timeout_s),
                         env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, allow_unsafe=allow_unsafe, outputs=(_JUNIT,))
    output = (result.stdout + ("\n" + result.stderr if result.stderr.strip() else "")).strip()
    if len(output) > OUTPUT_TAIL_CHARS:
        output = f"[... {len(output) - OUTPUT_TAIL_CHARS} characters omitted ...]\n" + output[-OUTPUT_TAIL_CHARS:]
    counts, failing, notes = parse_junit(result.outputs.get(_JUNIT))
    return PytestReport(
        passed=counts["passed"], failed=counts["failed"], errors=counts["errors"], skipped=counts["skipped"],
        failing=tuple(failing), exit_code=result.exit_code, output=output, sandbox=result.sandbox,
        timed_out=result.timed_out, duration_s=result.duration_s, notes=tuple(notes),
    )


def parse_junit(xml: bytes | None) -> tuple[dict[str, int], list[str], list[str]]:
    """Counts (passed, failed, errors, skipped), failing node ids and notes from a JUnit report."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    if not xml:
        return counts, [], ["pytest wrote no JUnit report (it crashed, was killed or found nothing to run)"]
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        return counts, [], [f"pytest's JUnit report is not valid XML: {exc}"]
    failing: list[str] = []
    for case in root.iter("testcase"):
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            counts["failed"] += 1
        elif "error" in kinds:
            counts["errors"] += 1
        elif "skipped" in kinds:
            counts["skipped"] += 1
            continue
        else:
            counts["passed"] += 1
            continue
        failing.append(_node_id(case))
    return counts, failing, []


def _node_id(case: ET.Element) -> str:
    """pytest's node id of a test case (``file::Class::name``) from its xunit1 attributes.

    pytest derives ``classname`` from the node id (``path.to.file.Class``) and adds the file's
    path (``file``, xunit1), so the part of ``classname`` after the file's dotted path is the
    class chain. A collection error has no class: it names the file itself.
    """
    file = case.get("file", "")
    classname, name = case.get("classname", ""), case.get("name", "")
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file.replace("/", ".")
    classes = classname[len(module) + 1 :].split(".") if classname.startswith(module + ".") else []
    if not classname and name.replace(".", "/") in (file, file[:-3]):
        return file  # collection error of the file itself
    return "::".join([file, *[c for c in classes if c], name])


@register_tool(
    "run_tests",
    RunTestsArgs,
    """Run the pytest tests in the workspace (or in one file or directory) and report the results.
Runs in the same isolated sandbox as run_python. Give path relative to the workspace, e.g.
'tests/test_app.py' or 'tests/test_app.py::test_add'; '.' (default) runs every test.
Returns JSON: "passed", "failed", "errors", "skipped", "failing" (the node ids of failed tests,
e.g. "test_app.py::test_add"), "exit_code", "output" (the end of pytest's output, with the
assertion details), "all_passed", "timed_out", "sandbox".""",
    group="code",
    blocking=True,
)
def run_tests(ctx: ToolContext, args: RunTestsArgs) -> dict[str, Any]:
    """Run pytest on ``args.path`` in the sandbox and return the structured report."""
    report = run_pytest(ctx.workspace, [args.path], timeout_s=_timeout(ctx, args.timeout_s),
                        allow_unsafe=_allow_unsafe(ctx))
    return report.to_dict()
