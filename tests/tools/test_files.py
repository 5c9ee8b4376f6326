"""Tests for the workspace file tools: normal behaviour and confinement to the workspace.

Every attack is asserted twice: the tool raises ``ToolError``, and nothing outside the workspace
changed (contents, mtimes, no new files). Calls go through the registry's bound LangChain tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, tool_spec
from agentbench.tools import files as file_tools

MIB = 1_048_576


@dataclass
class Env:
    """A workspace next to an ``outside`` directory holding a secret file."""

    ws: Path
    outside: Path
    secret: Path
    ctx: ToolContext

    def call(self, tool: str, **args: Any) -> str:
        return str(tool_spec(tool).bind(self.ctx).invoke(args))


@pytest.fixture
def env(tmp_path: Path) -> Env:
    ws, outside = tmp_path / "ws", tmp_path / "outside"
    ws.mkdir()
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("top secret\n", encoding="utf-8")
    (outside / "sub").mkdir()
    (outside / "sub" / "deep.txt").write_text("deep\n", encoding="utf-8")
    return Env(ws, outside, secret, ToolContext(workspace=ws))


def snapshot(root: Path) -> dict[str, tuple[str, bytes, int]]:
    """Kind, content and mtime of everything under ``root`` (links not followed)."""
    state: dict[str, tuple[str, bytes, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            if p.is_symlink():
                state[str(p)] = ("link", os.readlink(p).encode(), st.st_mtime_ns)
            elif p.is_dir():
                state[str(p)] = ("dir", b"", st.st_mtime_ns)
            else:
                state[str(p)] = ("file", p.read_bytes(), st.st_mtime_ns)
    return state


def assert_refused(env: Env, tool: str, match: str | None = None, **args: Any) -> str:
    """The call raises ToolError and leaves everything outside the workspace untouched."""
    before = snapshot(env.outside)
    with pytest.raises(ToolError, match=match) as info:
        env.call(tool, **args)
    assert snapshot(env.outside) == before
    assert env.secret.read_text(encoding="utf-8") == "top secret\n"
    return str(info.value)


def args_for(tool: str, path: str) -> dict[str, Any]:
    """Plausible arguments of ``tool`` aimed at ``path``."""
    extra: dict[str, dict[str, Any]] = {
        "write_file": {"content": "pwned"},
        "edit_file": {"old_text": "top", "new_text": "pwned"},
    }
    return {"path": path, **extra.get(tool, {})}


FILE_TOOLS = ["read_file", "write_file", "edit_file", "delete_file"]

# --------------------------------------------------------------------------- path text attacks

BAD_PATHS = [
    ("../outside/secret.txt", "contains '..'"),
    ("a/../../outside/secret.txt", "contains '..'"),
    ("./../x", "contains '..'"),
    ("..", "contains '..'"),
    ("a/..", "contains '..'"),
    ("/etc/passwd", "is absolute"),
    ("~/.bashrc", "starts with '~'"),
    ("~root/.ssh/authorized_keys", "starts with '~'"),
    ("x\x00y", "NUL byte"),
    ("", "empty"),
    (".", "workspace root"),
    ("a" * 300, "longer than"),
]


@pytest.mark.parametrize("tool", FILE_TOOLS)
@pytest.mark.parametrize(("path", "message"), BAD_PATHS)
def test_bad_path_text_is_refused(env: Env, tool: str, path: str, message: str) -> None:
    assert_refused(env, tool, message, **args_for(tool, path))


@pytest.mark.parametrize("tool", FILE_TOOLS)
def test_absolute_path_to_an_outside_file_is_refused(env: Env, tool: str) -> None:
    text = assert_refused(env, tool, "is absolute", **args_for(tool, str(env.secret)))
    assert "relative to the workspace" in text


@pytest.mark.parametrize("path", ["..", "../outside", "/", str(Path("/tmp")), "~", "a/../.."])
def test_list_files_outside_is_refused(env: Env, path: str) -> None:
    assert_refused(env, "list_files", path=path)


def test_parent_dirs_are_not_created_for_refused_paths(env: Env) -> None:
    assert_refused(env, "write_file", path="new/../../outside/x.txt", content="x")
    assert not (env.ws / "new").exists()


# --------------------------------------------------------------------------- symlinks


@pytest.mark.parametrize("tool", FILE_TOOLS)
def test_symlink_to_outside_file_is_refused(env: Env, tool: str) -> None:
    (env.ws / "link.txt").symlink_to(env.secret)
    assert_refused(env, tool, "outside the workspace", **args_for(tool, "link.txt"))
    assert (env.ws / "link.txt").is_symlink()  # delete_file did not remove it either


@pytest.mark.parametrize("tool", FILE_TOOLS)
def test_symlinked_dir_to_outside_is_refused(env: Env, tool: str) -> None:
    (env.ws / "linkdir").symlink_to(env.outside, target_is_directory=True)
    assert_refused(env, tool, "outside the workspace", **args_for(tool, "linkdir/secret.txt"))
    assert_refused(env, tool, "outside the workspace", **args_for(tool, "linkdir/new.txt"))
    assert_refused(env, tool, "outside", **args_for(tool, "linkdir/sub/new/deeper.txt"))
    assert not (env.outside / "new.txt").exists()
    assert not (env.outside / "sub" / "new").exists()


def test_list_files_through_symlinked_dir_is_refused(env: Env) -> None:
    (env.ws / "linkdir").symlink_to(env.outside, target_is_directory=True)
    assert_refused(env, "list_files", "outside the workspace", path="linkdir")
    listing = env.call("list_files")
    assert "linkdir (symbolic link, not followed)" in listing
    assert "secret" not in listing


def test_symlink_chain_is_refused(env: Env) -> None:
    (env.ws / "b").symlink_to(env.secret)
    (env.ws / "a").symlink_to("b")
    for tool in FILE_TOOLS:
        assert_refused(env, tool, "outside the workspace", **args_for(tool, "a"))


def test_relative_symlink_up_is_refused(env: Env) -> None:
    (env.ws / "up").symlink_to("../..", target_is_directory=True)
    (env.ws / "d").mkdir()
    (env.ws / "d" / "up2").symlink_to("../../outside", target_is_directory=True)
    for tool in FILE_TOOLS:
        assert_refused(env, tool, "outside", **args_for(tool, f"up/{env.outside.name}/secret.txt"))
        assert_refused(env, tool, "outside", **args_for(tool, "d/up2/secret.txt"))
        assert_refused(env, tool, "outside", **args_for(tool, "d/up2/evil.txt"))
    assert not (env.outside / "evil.txt").exists()


def test_dangling_symlink_to_outside_does_not_create_the_target(env: Env) -> None:
    target = env.outside / "created.txt"
    (env.ws / "dangle").symlink_to(target)
    assert_refused(env, "write_file", "outside the workspace", path="dangle", content="x")
    assert not target.exists()


def test_symlinks_inside_the_workspace_are_not_followed_either(env: Env) -> None:
    (env.ws / "real.txt").write_text("real\n", encoding="utf-8")
    (env.ws / "alias.txt").symlink_to("real.txt")
    (env.ws / "dir").mkdir()
    (env.ws / "dirlink").symlink_to("dir", target_is_directory=True)
    text = assert_refused(env, "read_file", "not followed", path="alias.txt")
    assert "outside" not in text
    assert_refused(env, "write_file", "not followed", path="dirlink/x.txt", content="x")
    assert not (env.ws / "dir" / "x.txt").exists()
    assert (env.ws / "real.txt").read_text(encoding="utf-8") == "real\n"


def test_workspace_itself_may_be_reached_through_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real_ws").mkdir()
    (tmp_path / "ws_link").symlink_to(tmp_path / "real_ws", target_is_directory=True)
    ctx = ToolContext(workspace=tmp_path / "ws_link")
    tool_spec("write_file").bind(ctx).invoke({"path": "a.txt", "content": "ok"})
    assert (tmp_path / "real_ws" / "a.txt").read_text(encoding="utf-8") == "ok"


# --------------------------------------------------------------------------- hard links, specials


@pytest.mark.parametrize("tool", FILE_TOOLS)
def test_hard_link_to_outside_file_is_refused(env: Env, tool: str) -> None:
    os.link(env.secret, env.ws / "hard.txt")
    assert_refused(env, tool, "hard links", **args_for(tool, "hard.txt"))
    assert (env.ws / "hard.txt").exists()


def test_fifo_is_refused_without_blocking(env: Env) -> None:
    os.mkfifo(env.ws / "pipe")
    for tool in FILE_TOOLS:
        assert_refused(env, tool, "not a regular file", **args_for(tool, "pipe"))
    assert "pipe (special file, not readable)" in env.call("list_files")


def test_directories_are_not_files(env: Env) -> None:
    (env.ws / "d").mkdir()
    for tool in FILE_TOOLS:
        assert_refused(env, tool, "is a directory", **args_for(tool, "d"))
    assert (env.ws / "d").is_dir()


# --------------------------------------------------------------------------- size caps


def test_write_cap_is_one_mib_of_utf8(env: Env) -> None:
    env.call("write_file", path="exact.txt", content="a" * MIB)
    assert (env.ws / "exact.txt").stat().st_size == MIB
    assert_refused(env, "write_file", "limit is 1048576 bytes", path="big.txt",
                   content="a" * (MIB + 1))
    # 2-byte characters: under a million characters, over a MiB of UTF-8.
    assert_refused(env, "write_file", "limit", path="big2.txt", content="é" * (MIB // 2 + 1))
    assert not (env.ws / "big.txt").exists() and not (env.ws / "big2.txt").exists()


def test_write_cap_option(env: Env) -> None:
    env.ctx.options["max_write_bytes"] = 10
    env.call("write_file", path="a.txt", content="0123456789")
    assert_refused(env, "write_file", "limit is 10 bytes", path="b.txt", content="01234567890")


def test_workspace_total_cap(env: Env) -> None:
    env.ctx.options["max_workspace_bytes"] = 1000
    env.call("write_file", path="a.txt", content="a" * 600)
    assert_refused(env, "write_file", "over its limit of 1000", path="b.txt", content="b" * 600)
    assert not (env.ws / "b.txt").exists()
    env.call("write_file", path="a.txt", content="a" * 900)  # replacing: old size not counted
    env.call("write_file", path="b.txt", content="b" * 100)
    assert_refused(env, "edit_file", "over its limit", path="b.txt", old_text="b" * 100,
                   new_text="c" * 200)
    assert (env.ws / "b.txt").read_text(encoding="utf-8") == "b" * 100


def test_edit_result_over_write_cap_is_refused(env: Env) -> None:
    env.ctx.options["max_write_bytes"] = 20
    env.call("write_file", path="a.txt", content="hello")
    assert_refused(env, "edit_file", "limit is 20", path="a.txt", old_text="hello",
                   new_text="x" * 21)
    assert (env.ws / "a.txt").read_text(encoding="utf-8") == "hello"


# --------------------------------------------------------------------------- normal behaviour


def test_round_trip_and_nested_dirs(env: Env) -> None:
    assert env.call("write_file", path="a/b/c.txt", content="héllo\nworld\n") == (
        "wrote 13 bytes to a/b/c.txt"
    )
    assert env.call("read_file", path="a/b/c.txt") == "héllo\nworld\n"
    assert env.call("read_file", path="./a//b/c.txt") == "héllo\nworld\n"
    env.call("write_file", path="a/b/c.txt", content="short")
    assert env.call("read_file", path="a/b/c.txt") == "short"


def test_empty_file(env: Env) -> None:
    env.call("write_file", path="empty.txt", content="")
    assert "is empty" in env.call("read_file", path="empty.txt")


def test_line_ranges(env: Env) -> None:
    env.call("write_file", path="f.txt", content="".join(f"line {i}\n" for i in range(1, 11)))
    assert env.call("read_file", path="f.txt", start_line=2, end_line=3) == "line 2\nline 3\n"
    assert env.call("read_file", path="f.txt", start_line=10) == "line 10\n"
    assert env.call("read_file", path="f.txt", end_line=1) == "line 1\n"
    assert env.call("read_file", path="f.txt", start_line=9, end_line=99) == "line 9\nline 10\n"
    with pytest.raises(ToolError, match="past the end of the file"):
        env.call("read_file", path="f.txt", start_line=11)
    with pytest.raises(ToolError, match="before start_line"):
        env.call("read_file", path="f.txt", start_line=5, end_line=4)
    with pytest.raises(Exception, match="greater than or equal to 1"):
        env.call("read_file", path="f.txt", start_line=0)


def test_large_files_are_truncated_with_a_marker(env: Env) -> None:
    line = "x" * 99 + "\n"
    (env.ws / "big.txt").write_text(line * 5000, encoding="utf-8")  # 500 KB
    text = env.call("read_file", path="big.txt")
    assert len(text.encode()) < file_tools.MAX_READ_BYTES + 500
    assert "[... truncated at 262144 bytes: 'big.txt' is 500000 bytes" in text
    assert "stops in line 2622. Use start_line/end_line" in text
    assert env.call("read_file", path="big.txt", start_line=4999) == line * 2
    ranged = env.call("read_file", path="big.txt", start_line=1001, end_line=5000)
    assert ranged.startswith(line) and "stops in line 3622" in ranged


def test_truncation_never_splits_a_character(env: Env) -> None:
    (env.ws / "wide.txt").write_text("€" * 100_000, encoding="utf-8")  # 3 bytes each
    text = env.call("read_file", path="wide.txt")
    assert not text.startswith("[note")  # the cut character is not taken for bad UTF-8
    assert text.startswith("€" * (file_tools.MAX_READ_BYTES // 3) + "\n[... truncated")


def test_edit_of_a_huge_file_is_refused_before_reading(env: Env) -> None:
    env.ctx.options["max_write_bytes"] = 100
    (env.ws / "huge.txt").write_text("y" * 1000, encoding="utf-8")
    assert_refused(env, "edit_file", "must stay within 100 bytes", path="huge.txt",
                   old_text="y", new_text="z")


def test_non_utf8_files(env: Env) -> None:
    (env.ws / "bin.dat").write_bytes(b"ok\xff\xfe\n")
    text = env.call("read_file", path="bin.dat")
    assert text.startswith("[note: this file is not valid UTF-8")
    assert "ok\ufffd\ufffd" in text
    with pytest.raises(ToolError, match="not valid UTF-8"):
        env.call("edit_file", path="bin.dat", old_text="ok", new_text="no")
    assert (env.ws / "bin.dat").read_bytes() == b"ok\xff\xfe\n"


def test_edit_file_counts_occurrences(env: Env) -> None:
    env.call("write_file", path="c.ini", content="a = 1\nb = 1\ndebug = true\n")
    with pytest.raises(ToolError, match=r"occurs 2 times"):
        env.call("edit_file", path="c.ini", old_text="= 1", new_text="= 2")
    with pytest.raises(ToolError, match=r"not found .*\(0 occurrences\)"):
        env.call("edit_file", path="c.ini", old_text="missing", new_text="x")
    with pytest.raises(ToolError, match="old_text is empty"):
        env.call("edit_file", path="c.ini", old_text="", new_text="x")
    result = env.call("edit_file", path="c.ini", old_text="debug = true", new_text="debug = false")
    assert result.startswith("replaced 1 occurrence in c.ini")
    assert (env.ws / "c.ini").read_text(encoding="utf-8") == "a = 1\nb = 1\ndebug = false\n"


def test_missing_files(env: Env) -> None:
    for tool in ("read_file", "edit_file", "delete_file"):
        with pytest.raises(ToolError, match="does not exist"):
            env.call(tool, **args_for(tool, "nope/none.txt"))
        with pytest.raises(ToolError, match="does not exist"):
            env.call(tool, **args_for(tool, "none.txt"))
    with pytest.raises(ToolError, match="does not exist"):
        env.call("list_files", path="nope")


def test_write_through_a_file_component_is_refused(env: Env) -> None:
    env.call("write_file", path="f.txt", content="x")
    with pytest.raises(ToolError, match="not a directory"):
        env.call("write_file", path="f.txt/g.txt", content="y")


def test_list_files(env: Env) -> None:
    assert env.call("list_files") == "'.' is empty"
    env.call("write_file", path="b.txt", content="12345")
    env.call("write_file", path="a/z.txt", content="1")
    env.call("write_file", path="a/b/y.txt", content="")
    (env.ws / "emptydir").mkdir()
    assert env.call("list_files", path=".") == "\n".join([
        "6 entries under '.':",
        "a/",
        "a/b/",
        "a/b/y.txt (0 bytes)",
        "a/z.txt (1 bytes)",
        "b.txt (5 bytes)",
        "emptydir/",
    ])
    assert env.call("list_files", path="a/b") == "1 entries under 'a/b':\na/b/y.txt (0 bytes)"
    with pytest.raises(ToolError, match="not a directory"):
        env.call("list_files", path="b.txt")


def test_list_files_is_capped(env: Env) -> None:
    for i in range(1005):
        (env.ws / f"f{i:04}.txt").write_text("", encoding="utf-8")
    lines = env.call("list_files").splitlines()
    assert lines[0] == "1005 entries under '.':"
    assert len(lines) == 1 + 1000 + 1
    assert lines[-1].startswith("[... 5 more entries not shown")


def test_delete_file(env: Env) -> None:
    env.call("write_file", path="d/x.txt", content="x")
    assert env.call("delete_file", path="d/x.txt") == "deleted d/x.txt"
    assert not (env.ws / "d" / "x.txt").exists()
    assert (env.ws / "d").is_dir()


@pytest.mark.parametrize(
    ("name", "group"),
    [("read_file", "files"), ("write_file", "files"), ("edit_file", "files"),
     ("list_files", "files"), ("delete_file", "files")],
)
def test_tools_are_registered_for_models(name: str, group: str) -> None:
    spec = tool_spec(name)
    assert spec.group == group
    function = spec.openai_schema()["function"]
    assert len(function["description"]) > 100
    assert all(p.get("description") for p in function["parameters"]["properties"].values())


def test_lone_surrogates_are_refused(env: Env) -> None:
    check: Callable[..., str] = env.call
    with pytest.raises(ToolError, match="not valid Unicode"):
        check("write_file", path="s.txt", content="\ud800")
    assert not (env.ws / "s.txt").exists()
