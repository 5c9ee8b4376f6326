"""Sandbox limits found missing in review: the output folder, paths beyond PATH_MAX, depth.

Each hostile program runs through :func:`sandbox.run` with small limits so the tests stay fast;
afterwards the host is checked: nothing left behind, nothing over the caps, every entry given
back to its owner.
"""

from __future__ import annotations

import os
import resource
import stat
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentbench.tools import sandbox

MIB = 1024**2


@pytest.fixture
def workspace(sandbox_workspace: Path) -> Path:
    """The run's workspace (see tests/tools/conftest.py)."""
    return sandbox_workspace


def run(workspace: Path, code: str, limits: sandbox.Limits, **kwargs: object) -> sandbox.SandboxResult:
    program = textwrap.dedent(code)
    result = sandbox.run(lambda layout: [sys.executable, "-c", program], workspace, limits=limits, **kwargs)
    assert result.sandbox == sandbox.SANDBOX_NAME
    return result


def io_dirs() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("agentbench-io-")}


def entries(root: Path) -> Iterator[tuple[int, os.stat_result]]:
    """(depth, lstat) of ``root`` and everything under it, by descriptors (paths may exceed PATH_MAX)."""
    base = str(root).count("/")
    for top, dirs, files, fd in os.fwalk(root, follow_symlinks=False):
        depth = top.count("/") - base
        yield depth, os.stat(top) if depth == 0 else os.stat(".", dir_fd=fd)
        for name in dirs + files:
            yield depth + 1, os.stat(name, dir_fd=fd, follow_symlinks=False)


def assert_given_back(workspace: Path) -> None:
    """Nothing in the workspace is still owned by the sandbox's uid."""
    owner = os.lstat(workspace.parent).st_uid
    lent = [st for _, st in entries(workspace) if st.st_uid != owner or st.st_gid == sandbox.UNPRIVILEGED_UID]
    assert not lent


# --------------------------------------------------------------------------- 1. the output folder


def test_output_folder_counts_against_the_workspace_limit(workspace: Path) -> None:
    before_dirs = io_dirs()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run(workspace, f"""
        import time
        for i in range(10):
            with open(f"{sandbox.SANDBOX_IO}/out/f{{i}}", "wb") as f:
                f.write(b"x" * {MIB})
        print("wrote", flush=True)
        time.sleep(30)
    """, sandbox.Limits(wall_s=10, workspace_bytes=4 * MIB, outputs_bytes=2 * MIB))
    assert result.limit == "workspace" and not result.timed_out
    assert "grew over its limit" in result.stderr
    assert sum(map(len, result.outputs.values())) <= 2 * MIB  # what comes back is capped too
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 64 * 1024  # KiB
    assert io_dirs() <= before_dirs  # the host folder is gone


def test_only_the_named_outputs_come_back_within_the_cap(workspace: Path) -> None:
    code = f"""
        import os
        out = "{sandbox.SANDBOX_IO}/out"
        for name in ("junit.xml", "other.bin", "zzz"):
            with open(os.path.join(out, name), "wb") as f:
                f.write(name.encode()[:1] * 5000)
        os.symlink("/etc/passwd", os.path.join(out, "link.xml"))
    """
    limits = sandbox.Limits(wall_s=10, outputs_bytes=6000)
    named = run(workspace, code, limits, outputs=("junit.xml", "link.xml", "missing.xml"))
    assert named.exit_code == 0, named.stderr
    assert named.outputs == {"junit.xml": b"j" * 5000}  # links are never followed
    anything = run(workspace, code, limits)
    assert anything.outputs == {"junit.xml": b"j" * 5000, "other.bin": b"o" * 1000}  # 6000 bytes in all
    with pytest.raises(ValueError):
        run(workspace, "pass", limits, outputs=("../junit.xml",))


# --------------------------------------------------------------------------- 2. PATH_MAX and depth


def test_files_beyond_path_max_are_counted_and_given_back(workspace: Path) -> None:
    result = run(workspace, f"""
        import os, time
        name = "d" * 250
        for i in range(18):
            os.mkdir(name)
            os.chdir(name)
        # Printed before the big files: the watchdog may kill the program as soon as they pass
        # the limit, which is the point of the test.
        print("reached depth", len(os.getcwd()), flush=True)
        for i in range(8):
            with open(f"big{{i}}", "wb") as f:
                f.write(os.urandom({MIB}))
        time.sleep(30)
    """, sandbox.Limits(wall_s=10, workspace_bytes=4 * MIB))
    depth = int(result.stdout.split("reached depth")[1].split()[0])
    assert depth > os.pathconf("/", "PC_PATH_MAX")  # the files really lie beyond PATH_MAX
    assert result.limit == "workspace" and not result.timed_out
    assert_given_back(workspace)


def test_unlistable_directory_counts_as_over_the_limit(workspace: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root lists every directory")
    result = run(workspace, """
        import os, time
        os.mkdir("hidden")
        with open("hidden/big", "wb") as f:
            f.write(b"x" * 1024)
        os.chmod("hidden", 0)
        time.sleep(30)
    """, sandbox.Limits(wall_s=10))
    os.chmod(workspace / "hidden", 0o755)
    assert result.limit == "workspace"


def test_deep_nesting_is_stopped_by_the_depth_limit(workspace: Path) -> None:
    result = run(workspace, """
        import os, time
        for i in range(200):
            os.mkdir("a")
            os.chdir("a")
        print("nested", flush=True)
        time.sleep(30)
    """, sandbox.Limits(wall_s=10))
    assert result.limit == "workspace" and not result.timed_out
    assert max(depth for depth, _ in entries(workspace)) <= sandbox.Limits().workspace_depth
    assert "levels were removed" in result.stderr
    assert_given_back(workspace)


def test_nesting_faster_than_the_watchdog_is_pruned_after_the_run(workspace: Path) -> None:
    # The reviewer's probe: 1100 levels made before the first poll; recursive clean-up
    # (shutil.rmtree, TemporaryDirectory) would hit RecursionError on what is left.
    result = run(workspace, """
        import os
        for i in range(1100):
            os.mkdir("a")
            os.chdir("a")
        print("ok")
    """, sandbox.Limits(wall_s=10))
    assert max(depth for depth, _ in entries(workspace)) <= sandbox.Limits().workspace_depth
    assert "levels were removed" in result.stderr
    assert_given_back(workspace)


def test_remove_tree_handles_any_depth(tmp_path: Path) -> None:
    root = tmp_path / "deep"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for i in range(1500):  # deeper than the recursion limit, far beyond PATH_MAX with long names
        name = f"{i:04d}" + "n" * 200
        os.mkdir(name, dir_fd=fd)
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as f:
            f.write(b"x")
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    assert sandbox._prune(tmp_path, max_depth=3) == 2  # the directory and the file at level 4
    assert max(depth for depth, _ in entries(tmp_path)) == 3
    parent = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sandbox._remove_tree(parent, "deep")
    finally:
        os.close(parent)
    assert not root.exists()


def test_walk_sees_beyond_path_max_and_reports_depth(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(20):
        os.mkdir("d" * 250, dir_fd=fd)
        child = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    with open(os.open("secret", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "wb") as f:
        f.write(b"x" * 100_000)
    os.close(fd)
    state = sandbox._WalkState()
    found = [(name, st, depth) for _, name, st, depth in sandbox._walk(tmp_path, state, max_depth=64, limit=1000)]
    assert ("secret", 21) in [(name, depth) for name, _, depth in found]
    assert state == sandbox._WalkState()
    shallow = sandbox._WalkState()
    assert max(depth for *_, depth in sandbox._walk(tmp_path, shallow, max_depth=5, limit=1000)) == 6
    assert shallow.too_deep
    assert sandbox._workspace_over([tmp_path], sandbox.Limits(workspace_bytes=50_000))
    assert not stat.S_ISLNK(os.lstat(tmp_path).st_mode)
