"""Review findings on grading, reproduced: links left by the model, forged reports, deep trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agentbench.errors import ScenarioError
from agentbench.grading.graders import GradingInput, hidden_tests_grade
from agentbench.runner.workspace import remove_tree, seed_workspace
from agentbench.scenario.loader import parse_scenario

HIDDEN = "from app import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
SCENARIO = """\
id: hidden
title: Hidden tests
category: code_generation
description: d
tools: [write_file]
turns:
  - user: write app.py
solution:
  - answer: done
checks:
  tests:
    files:
      test_hidden.py: |
        from app import add


        def test_add():
            assert add(2, 2) == 4
"""


def grade_workspace(workspace: Path) -> tuple[bool, str]:
    scenario, problems = parse_scenario(SCENARIO, "hidden.yaml")
    assert scenario is not None, problems
    [grade] = hidden_tests_grade(GradingInput(scenario, [], [], "completed", workspace))
    return grade.passed, grade.reason


def test_seeding_never_writes_through_a_link_to_a_host_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "test_hidden.py").symlink_to(victim)
    seed_workspace(workspace, {"test_hidden.py": HIDDEN})
    assert victim.read_text() == "precious"
    assert not (workspace / "test_hidden.py").is_symlink()


def test_seeding_never_creates_files_through_a_linked_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "tests").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ScenarioError, match="cannot create the folders"):
        seed_workspace(workspace, {"tests/test_x.py": "x"})
    assert list(outside.iterdir()) == []


def test_hidden_tests_ignore_links_the_model_left(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text("def add(a, b):\n    return a + b\n")
    (workspace / "test_hidden.py").symlink_to(victim)
    passed, reason = grade_workspace(workspace)
    assert passed, reason
    assert victim.read_text() == "precious"


def test_a_forged_junit_report_does_not_pass(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text(
        "import atexit, glob\n"
        "def _forge():\n"
        "    for p in glob.glob('/run/agentbench/out/*.xml'):\n"
        "        open(p, 'w').write('<testsuites><testsuite><testcase classname=\"test_hidden\" name=\"test_add\" "
        "file=\"test_hidden.py\"/></testsuite></testsuites>')\n"
        "atexit.register(_forge)\n"
        "def add(a, b):\n    return a - b\n")
    passed, reason = grade_workspace(workspace)
    assert not passed
    assert "did not exit cleanly" in reason


def test_a_correct_solution_passes(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "app.py").write_text("def add(a, b):\n    return a + b\n")
    passed, reason = grade_workspace(workspace)
    assert passed and "1 passed" in reason, reason


def test_removing_a_tree_too_deep_for_recursion(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY)
    for _ in range(1500):  # deeper than shutil.rmtree's recursion allows
        os.mkdir("d", dir_fd=fd)
        next_fd = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)
    remove_tree(root)
    assert not root.exists()
