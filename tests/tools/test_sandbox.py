"""Tests for the code tools' normal behaviour: run_python, run_tests, run_pytest, availability.

Every tool call goes through the registry and the bound LangChain tool, as a model's call would.
Tests that need the sandbox skip where bubblewrap does not work (test_sandbox_attacks.py has the
test that fails instead when CI is set).
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

import agentbench.tools.code as code_tools
from agentbench.errors import ToolError
from agentbench.tools import ToolContext, sandbox, tool_spec

needs_sandbox = pytest.mark.skipif(not sandbox.sandbox_status()[0], reason=sandbox.sandbox_status()[1])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


def call(tool: str, workspace: Path, args: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Call ``tool`` as a model would; the tool returns JSON text."""
    ctx = ToolContext(workspace=workspace, options=options)
    return json.loads(tool_spec(tool).bind(ctx).invoke(args))


def python(workspace: Path, code: str, **options: Any) -> dict[str, Any]:
    return call("run_python", workspace, {"code": textwrap.dedent(code)}, **options)


def test_tools_are_registered_in_the_code_group() -> None:
    assert tool_spec("run_python").group == "code"
    assert tool_spec("run_tests").group == "code"
    assert code_tools.run_python is not None


@needs_sandbox
def test_print_and_exit_code(workspace: Path) -> None:
    result = python(workspace, "print('hello')\nimport sys\nsys.exit(3)")
    assert result["stdout"] == "hello\n"
    assert result["exit_code"] == 3
    assert result["timed_out"] is False
    assert result["sandbox"] == "bubblewrap"
    assert result["duration_s"] > 0


@needs_sandbox
def test_exception_traceback_in_stderr(workspace: Path) -> None:
    result = python(workspace, "def f():\n    return 1 / 0\nf()")
    assert result["exit_code"] == 1
    assert "ZeroDivisionError" in result["stderr"]
    assert "return 1 / 0" in result["stderr"]  # the source line is shown


@needs_sandbox
def test_workspace_files_are_shared_with_the_host(workspace: Path) -> None:
    (workspace / "data.txt").write_text("from host")
    (workspace / "helper.py").write_text("def double(x):\n    return 2 * x\n")
    result = python(workspace, """
        import os
        print(open('data.txt').read(), os.getcwd())
        from helper import double
        print(double(21))
        os.makedirs('out', exist_ok=True)
        open('out/result.txt', 'w').write('from sandbox')
    """)
    assert result["stdout"].split("\n")[:2] == ["from host /workspace", "42"], result
    assert (workspace / "out" / "result.txt").read_text() == "from sandbox"
    # The files go back to the workspace owner (the sandbox may run as another uid under root).
    assert (workspace / "out" / "result.txt").stat().st_uid == workspace.stat().st_uid
    assert sorted(p.name for p in workspace.iterdir()) == ["data.txt", "helper.py", "out"]  # nothing left over


@needs_sandbox
def test_timeout_is_configurable(workspace: Path) -> None:
    result = python(workspace, "import time\nprint('started', flush=True)\ntime.sleep(30)", code_timeout_s=1)
    assert result["timed_out"] is True
    assert result["exit_code"] is None
    assert result["stdout"] == "started\n"  # output before the kill is kept
    assert "time limit" in result["stderr"]
    assert result["duration_s"] < 3
    quick = call("run_python", workspace, {"code": "import time; time.sleep(30)", "timeout_s": 0.5})
    assert quick["timed_out"] is True and quick["duration_s"] < 2.5


def test_timeout_option_resolution() -> None:
    ctx = ToolContext(workspace=Path("."), options={"code_timeout_s": 5})
    assert code_tools._timeout(ctx, None) == 5
    assert code_tools._timeout(ctx, 2) == 2
    assert code_tools._timeout(ctx, 10_000) == code_tools.DEFAULT_MAX_TIMEOUT_S
    assert code_tools._timeout(ToolContext(workspace=Path(".")), None) == code_tools.DEFAULT_TIMEOUT_S


@needs_sandbox
def test_output_is_truncated_with_a_marker(workspace: Path) -> None:
    result = python(workspace, "print('A' * 200_000)\nprint('END')")
    assert "[... output truncated:" in result["stdout"]
    assert result["stdout"].rstrip().endswith("END")  # the tail is kept
    assert len(result["stdout"]) < 70_000


def test_code_size_limit(workspace: Path) -> None:
    with pytest.raises(ToolError, match="limit"):
        code_tools.run_code(workspace, "#" * (code_tools.MAX_CODE_BYTES + 1))


# --------------------------------------------------------------------------- run_tests

PASSING = """
def test_one():
    assert 1 + 1 == 2

def test_two(tmp_path):
    (tmp_path / "x").write_text("ok")
"""

FAILING = """
import pytest

def test_good():
    assert True

def test_bad():
    assert [1, 2] == [1, 3]

class TestGroup:
    @pytest.mark.parametrize("n", [1, 2])
    def test_param(self, n):
        assert n == 1

@pytest.mark.skip(reason="not now")
def test_skipped():
    pass
"""


@needs_sandbox
def test_run_tests_passing(workspace: Path) -> None:
    (workspace / "test_ok.py").write_text(PASSING)
    result = call("run_tests", workspace, {})
    assert (result["passed"], result["failed"], result["errors"], result["skipped"]) == (2, 0, 0, 0)
    assert result["failing"] == []
    assert result["exit_code"] == 0
    assert result["all_passed"] is True
    assert result["sandbox"] == "bubblewrap"
    assert sorted(p.name for p in workspace.iterdir()) == ["test_ok.py"]  # no cache, no junit file left


@needs_sandbox
def test_run_tests_failing_names_the_failures(workspace: Path) -> None:
    (workspace / "tests").mkdir()
    (workspace / "tests" / "test_mix.py").write_text(FAILING)
    (workspace / "tests" / "test_broken.py").write_text("import not_a_module\n")
    result = call("run_tests", workspace, {"path": "tests"})
    assert (result["passed"], result["failed"], result["errors"], result["skipped"]) == (2, 2, 1, 1)
    assert sorted(result["failing"]) == [
        "tests/test_broken.py",
        "tests/test_mix.py::TestGroup::test_param[2]",
        "tests/test_mix.py::test_bad",
    ]
    assert result["exit_code"] == 1
    assert result["all_passed"] is False
    assert "assert [1, 2] == [1, 3]" in result["output"]


@needs_sandbox
def test_run_pytest_for_graders(workspace: Path) -> None:
    (workspace / "test_ok.py").write_text(PASSING)
    (workspace / "test_mix.py").write_text(FAILING)
    report = code_tools.run_pytest(workspace, ["test_ok.py", "test_mix.py::test_good"], timeout_s=30)
    assert (report.passed, report.failed, report.collected, report.all_passed) == (3, 0, 3, True)
    empty = code_tools.run_pytest(workspace, ["test_mix.py::test_skipped"])
    assert empty.skipped == 1 and not empty.all_passed  # skips alone never pass
    with pytest.raises(AttributeError):
        report.passed = 9  # type: ignore[misc]


@pytest.mark.parametrize("path", ["../x", "/etc", "~/tests", "missing_dir"])
def test_run_tests_confines_the_path(workspace: Path, path: str) -> None:
    with pytest.raises(ToolError):
        code_tools.run_pytest(workspace, [path])


def test_run_tests_refuses_a_symlink_target(workspace: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (workspace / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ToolError, match="symbolic link"):
        code_tools.run_pytest(workspace, ["link"])


def test_parse_junit_without_a_report() -> None:
    counts, failing, notes = code_tools.parse_junit(None)
    assert counts == {"passed": 0, "failed": 0, "errors": 0, "skipped": 0} and failing == []
    assert notes and "no JUnit report" in notes[0]
    assert "not valid XML" in code_tools.parse_junit(b"<oops")[2][0]


@needs_sandbox
def test_run_tests_timeout(workspace: Path) -> None:
    (workspace / "test_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(30)\n")
    result = call("run_tests", workspace, {"timeout_s": 1.5})
    assert result["timed_out"] is True
    assert result["all_passed"] is False
    assert result["exit_code"] is None


# --------------------------------------------------------------------------- availability and unsafe mode


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sandbox, "BWRAP_PATH", str(tmp_path / "no-such-bwrap"))


@pytest.mark.usefixtures("no_bwrap")
def test_unavailable_sandbox_refuses_with_the_fix(workspace: Path) -> None:
    ok, reason = sandbox.sandbox_status()
    assert ok is False and "not installed" in reason
    with pytest.raises(ToolError) as info:
        code_tools.run_code(workspace, "print(1)")
    message = str(info.value)
    assert "apt-get install bubblewrap" in message
    assert "user.max_user_namespaces" in message and "unprivileged_userns_clone" in message
    # Through the tool too: the tool loop turns the ToolError into the result the model sees.
    with pytest.raises(ToolError, match="apt-get install bubblewrap"):
        tool_spec("run_python").bind(ToolContext(workspace=workspace)).invoke({"code": "print(1)"})


@pytest.mark.usefixtures("no_bwrap")
def test_unsafe_mode_runs_and_is_marked(workspace: Path) -> None:
    result = python(workspace, "import os\nprint(os.getcwd())\nopen('f.txt', 'w').write('x')", allow_unsafe_code=True)
    assert result["sandbox"] == "none (unsafe)"
    assert result["stdout"].strip() == str(workspace.resolve())
    assert (workspace / "f.txt").read_text() == "x"
    loop = python(workspace, "while True: pass", allow_unsafe_code=True, code_timeout_s=1)
    assert loop["timed_out"] is True and loop["sandbox"] == "none (unsafe)"
    (workspace / "test_ok.py").write_text(PASSING)
    report = call("run_tests", workspace, {"path": "test_ok.py"}, allow_unsafe_code=True)
    assert report["sandbox"] == "none (unsafe)" and report["passed"] == 2
