"""Workspace file tools: read_file, write_file, edit_file, list_files and delete_file.

Every path the model gives is relative to the run's workspace (``ctx.workspace``) and confined to
it by :mod:`._safe_paths`: absolute paths, ``..``, ``~``, NUL bytes, symbolic links (inside or
outside the workspace: never followed) and files with several hard links are refused.

Text is UTF-8. A file that is not valid UTF-8 is still readable: undecodable bytes are shown as
U+FFFD and the result starts with a note saying so; ``edit_file`` refuses such files, since
writing the decoded text back would corrupt them. Writes are capped per call
(``ctx.options["max_write_bytes"]``, default 1 MiB of UTF-8) and for the whole workspace
(``ctx.options["max_workspace_bytes"]``, default 20 MiB).
"""

from __future__ import annotations

import codecs
import os
import stat

from pydantic import BaseModel, Field

from agentbench.errors import ToolError

from . import _safe_paths as sp
from .registry import ToolContext, register_tool

DEFAULT_MAX_WRITE_BYTES = 1_048_576
DEFAULT_MAX_WORKSPACE_BYTES = 20 * 1_048_576
MAX_READ_BYTES = 256 * 1024
MAX_LIST_ENTRIES = 1000
#: The most components a written path may have: deeper trees break recursive clean-up
#: (``shutil.rmtree`` recurses once per level) and the code sandbox's depth limit is the same.
MAX_PATH_DEPTH = 64

_NOT_UTF8_NOTE = "[note: this file is not valid UTF-8; undecodable bytes are shown as \ufffd]\n"


# --------------------------------------------------------------------------- argument models


class ReadFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace, e.g. 'notes/todo.md'.")
    start_line: int | None = Field(
        default=None, ge=1, description="First line to return (1-based, inclusive); omit for 1."
    )
    end_line: int | None = Field(
        default=None, ge=1, description="Last line to return (1-based, inclusive); omit for end."
    )


class WriteFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace, e.g. 'report/summary.md'.")
    content: str = Field(description="The complete new text of the file (UTF-8).")


class EditFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace, e.g. 'src/app.py'.")
    old_text: str = Field(
        description="Exact text to replace, copied from the file including whitespace and line "
        "breaks; it must occur exactly once, so include enough surrounding lines."
    )
    new_text: str = Field(description="Text to put in its place (may be empty to delete it).")


class ListFilesArgs(BaseModel):
    path: str = Field(
        default=".", description="Directory relative to the workspace; '.' (default) is the root."
    )


class DeleteFileArgs(BaseModel):
    path: str = Field(description="File path relative to the workspace, e.g. 'tmp/scratch.txt'.")


# --------------------------------------------------------------------------- helpers


def _limit(ctx: ToolContext, key: str, default: int) -> int:
    """A positive integer run option, or ``default`` when unset or invalid."""
    value = ctx.options.get(key)
    return value if isinstance(value, int) and value > 0 else default


def _encode(text: str, what: str) -> bytes:
    """UTF-8 bytes of ``text``; ``ToolError`` for lone surrogates (not encodable)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError(f"{what} is not valid Unicode (it contains a lone surrogate)") from None


def _decode(data: bytes, final: bool = True) -> tuple[str, bool]:
    """Text of ``data`` and whether it was valid UTF-8 (invalid bytes become U+FFFD).

    With ``final=False`` an incomplete character at the end is dropped, not replaced.
    """
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=final), True
    except UnicodeDecodeError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return decoder.decode(data, final=final), False


def _read_all(fd: int) -> bytes:
    """Everything from ``fd`` (from its current offset)."""
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    """Replace the whole content of the open file ``fd`` with ``data``."""
    os.lseek(fd, 0, os.SEEK_SET)
    os.ftruncate(fd, 0)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _check_caps(ctx: ToolContext, shown: str, new_size: int, old_size: int) -> None:
    """Refuse a write over the per-write cap or one that would overfill the workspace."""
    max_write = _limit(ctx, "max_write_bytes", DEFAULT_MAX_WRITE_BYTES)
    if new_size > max_write:
        raise ToolError(
            f"refusing to write {new_size} bytes to '{shown}': the limit is {max_write} bytes "
            "per write; split the content into smaller files"
        )
    max_total = _limit(ctx, "max_workspace_bytes", DEFAULT_MAX_WORKSPACE_BYTES)
    total = sp.tree_size(ctx.workspace) - old_size + new_size
    if total > max_total:
        raise ToolError(
            f"refusing to write '{shown}': the workspace would hold {total} bytes, over its "
            f"limit of {max_total} bytes; delete files you no longer need"
        )


def _parse_for_writing(path: str) -> sp.WorkspacePath:
    """``sp.parse_path``, also refusing paths deeper than :data:`MAX_PATH_DEPTH` components."""
    wpath = sp.parse_path(path)
    if len(wpath.parts) > MAX_PATH_DEPTH:
        raise ToolError(
            f"path '{wpath.shown[:80]}...' has {len(wpath.parts)} components; the limit is "
            f"{MAX_PATH_DEPTH} (nest directories less deeply)"
        )
    return wpath


def _existing_size(ctx: ToolContext, wpath: sp.WorkspacePath) -> int:
    """Size of the regular file at ``wpath`` if there is one (0 otherwise), links not followed."""
    try:
        with sp.open_dir(ctx.workspace, wpath.parent, shown=wpath.shown) as dir_fd:
            st = os.stat(wpath.name, dir_fd=dir_fd, follow_symlinks=False)
    except (ToolError, OSError):
        return 0  # missing (or refused: the write itself will say why)
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _read_head(fd: int, limit: int) -> bytes:
    """At most ``limit`` bytes from the start of ``fd`` (the rest of a huge file is never read)."""
    chunks, size = [], 0
    while size < limit and (chunk := os.read(fd, min(1 << 20, limit - size))):
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_lines(fd: int, start: int | None, end: int | None) -> tuple[bytes, int]:
    """Bytes of lines ``start``..``end`` (1-based, inclusive, split at newlines) and the first
    line's number; reading stops once more than :data:`MAX_READ_BYTES` are collected."""
    first = start or 1
    if end is not None and end < first:
        raise ToolError(f"end_line {end} is before start_line {first}")
    chunks, size, count = [], 0, 0
    with os.fdopen(os.dup(fd), "rb") as f:
        for count, line in enumerate(f, 1):
            if end is not None and count > end:
                break
            if count >= first:
                chunks.append(line)
                size += len(line)
                if size > MAX_READ_BYTES:
                    break
    if not chunks:
        raise ToolError(f"start_line {first} is past the end of the file ({count} lines)")
    return b"".join(chunks), first


def _render(data: bytes, shown: str, total: int, first_line: int) -> str:
    """Text for the model: decoded, cut at :data:`MAX_READ_BYTES` with a marker saying so."""
    truncated = len(data) > MAX_READ_BYTES
    # An incomplete character at the cut is dropped rather than taken for invalid UTF-8.
    text, valid = _decode(data[:MAX_READ_BYTES], final=not truncated)
    if truncated:
        last_line = first_line + text.count("\n")
        text += (
            f"\n[... truncated at {MAX_READ_BYTES} bytes: '{shown}' is {total} bytes and the text "
            f"above stops in line {last_line}. Use start_line/end_line to read the rest ...]"
        )
    return text if valid else _NOT_UTF8_NOTE + text


# --------------------------------------------------------------------------- tools


@register_tool(
    "read_file",
    ReadFileArgs,
    """Read a text file from the workspace and return its content as plain text.
Use it to look at a file before editing it or to answer questions about its content. Give a path
relative to the workspace (e.g. 'data/input.csv'); optionally start_line/end_line (1-based,
inclusive) to read only part of a long file, e.g. start_line=10, end_line=20. Output longer than
256 KiB is truncated with a marker telling you to read the rest by line range. Files that are not
valid UTF-8 are shown with replacement characters and a note.""",
    group="files",
    blocking=False,  # quick local file work: runs inline, no thread hop
)
def read_file(ctx: ToolContext, args: ReadFileArgs) -> str:
    """Return the text of ``args.path`` (optionally a line range), truncated at 256 KiB."""
    wpath = sp.parse_path(args.path)
    with sp.open_dir(ctx.workspace, wpath.parent, shown=wpath.shown) as dir_fd:
        fd = sp.open_file(ctx.workspace, dir_fd, wpath, os.O_RDONLY)
        try:
            total = os.fstat(fd).st_size
            if args.start_line is None and args.end_line is None:
                data, first_line = _read_head(fd, MAX_READ_BYTES + 1), 1
            else:
                data, first_line = _read_lines(fd, args.start_line, args.end_line)
        finally:
            os.close(fd)
    if not data:
        return f"[file '{wpath.shown}' is empty]"
    return _render(data, wpath.shown, total, first_line)


@register_tool(
    "write_file",
    WriteFileArgs,
    """Create a file in the workspace, or replace its whole content, with the given text.
Missing parent directories are created. Use edit_file instead to change part of an existing file.
The path is relative to the workspace (e.g. 'out/result.txt'); content is the complete file text.
At most 1 MiB per write. Returns a confirmation such as "wrote 42 bytes to out/result.txt".""",
    group="files",
    blocking=False,  # quick local file work: runs inline, no thread hop
)
def write_file(ctx: ToolContext, args: WriteFileArgs) -> str:
    """Write ``args.content`` to ``args.path``, creating parent directories."""
    wpath = _parse_for_writing(args.path)
    data = _encode(args.content, "content")
    # Caps are checked before anything is created, so a refused write leaves no trace.
    _check_caps(ctx, wpath.shown, len(data), _existing_size(ctx, wpath))
    with sp.open_dir(ctx.workspace, wpath.parent, create=True, shown=wpath.shown) as dir_fd:
        # No O_TRUNC: the file is checked (regular, single link) before anything is changed.
        fd = sp.open_file(ctx.workspace, dir_fd, wpath, os.O_WRONLY | os.O_CREAT)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    return f"wrote {len(data)} bytes to {wpath.shown}"


@register_tool(
    "edit_file",
    EditFileArgs,
    """Replace one exact piece of text in an existing workspace file.
old_text must occur exactly once in the file (copy it from read_file output, including
indentation and line breaks); it is replaced by new_text. If it occurs 0 or several times
nothing is changed and the error says how many times it was found: add surrounding lines to make
it unique. Example: path='config.ini', old_text='debug = true', new_text='debug = false'.
Returns a confirmation with the file's new size.""",
    group="files",
    blocking=False,  # quick local file work: runs inline, no thread hop
)
def edit_file(ctx: ToolContext, args: EditFileArgs) -> str:
    """Replace the single occurrence of ``args.old_text`` in ``args.path`` by ``args.new_text``."""
    wpath = _parse_for_writing(args.path)
    if not args.old_text:
        raise ToolError("old_text is empty; give the exact text to replace")
    with sp.open_dir(ctx.workspace, wpath.parent, shown=wpath.shown) as dir_fd:
        fd = sp.open_file(ctx.workspace, dir_fd, wpath, os.O_RDWR)
        try:
            _check_edit_size(ctx, wpath.shown, os.fstat(fd).st_size, args.old_text)
            old = _read_all(fd)
            text, valid = _decode(old)
            if not valid:
                raise ToolError(f"'{wpath.shown}' is not valid UTF-8 text; it cannot be edited")
            count = text.count(args.old_text)
            if count != 1:
                raise ToolError(_count_message(wpath.shown, count))
            new = _encode(text.replace(args.old_text, args.new_text, 1), "new_text")
            _check_caps(ctx, wpath.shown, len(new), len(old))
            _write_all(fd, new)
        finally:
            os.close(fd)
    return f"replaced 1 occurrence in {wpath.shown} (now {len(new)} bytes)"


def _check_edit_size(ctx: ToolContext, shown: str, size: int, old_text: str) -> None:
    """Refuse, before reading it, a file too big for any edit of it to fit the write cap."""
    max_write = _limit(ctx, "max_write_bytes", DEFAULT_MAX_WRITE_BYTES)
    if size - len(old_text.encode("utf-8", errors="replace")) > max_write:
        raise ToolError(
            f"'{shown}' is {size} bytes; edited files must stay within {max_write} bytes"
        )


def _count_message(shown: str, count: int) -> str:
    """Why an edit was refused, for 0 or several occurrences of ``old_text``."""
    if count == 0:
        return (
            f"old_text was not found in '{shown}' (0 occurrences); read the file and copy the "
            "exact text, including whitespace and line breaks"
        )
    return (
        f"old_text occurs {count} times in '{shown}'; it must occur exactly once, so include "
        "more surrounding text to make it unique"
    )


@register_tool(
    "list_files",
    ListFilesArgs,
    """List the files and directories in the workspace, recursively, sorted by path.
Use it to discover what files exist before reading them. path is a directory relative to the
workspace ('.' for the whole workspace, e.g. 'src'). Each line is one entry: directories end with
'/', files show their size, e.g. "src/main.py (1204 bytes)"; symbolic links are shown but never
followed. At most 1000 entries are shown; a note says how many more there are.""",
    group="files",
    blocking=False,  # quick local file work: runs inline, no thread hop
)
def list_files(ctx: ToolContext, args: ListFilesArgs) -> str:
    """A sorted recursive listing of ``args.path``, capped at :data:`MAX_LIST_ENTRIES`."""
    wpath = sp.parse_path(args.path, allow_root=True)
    with sp.open_dir(ctx.workspace, wpath.parts, shown=wpath.shown) as dir_fd:
        prefix = "" if not wpath.parts else wpath.shown
        entries = sorted(sp.walk(dir_fd, prefix), key=lambda e: e.path)
    if not entries:
        return f"'{wpath.shown}' is empty"
    lines = [_format_entry(e) for e in entries[:MAX_LIST_ENTRIES]]
    count = f"at least {len(entries)}" if len(entries) >= sp.WALK_LIMIT else str(len(entries))
    header = f"{count} entries under '{wpath.shown}':"
    if len(entries) > MAX_LIST_ENTRIES:
        lines.append(
            f"[... {len(entries) - MAX_LIST_ENTRIES} more entries not shown; "
            "list a subdirectory to see them]"
        )
    return "\n".join([header, *lines])


def _format_entry(entry: sp.Entry) -> str:
    """One listing line."""
    if entry.kind == "dir":
        return f"{entry.path}/"
    if entry.kind == "file":
        return f"{entry.path} ({entry.size} bytes)"
    if entry.kind == "symlink":
        return f"{entry.path} (symbolic link, not followed)"
    return f"{entry.path} (special file, not readable)"


@register_tool(
    "delete_file",
    DeleteFileArgs,
    """Delete one file from the workspace (files only; directories are refused).
Use it to remove scratch or obsolete files. path is relative to the workspace, e.g. 'tmp/a.txt'.
Returns a confirmation such as "deleted tmp/a.txt".""",
    group="files",
    blocking=False,  # quick local file work: runs inline, no thread hop
)
def delete_file(ctx: ToolContext, args: DeleteFileArgs) -> str:
    """Delete the regular file ``args.path``."""
    wpath = sp.parse_path(args.path)
    with sp.open_dir(ctx.workspace, wpath.parent, shown=wpath.shown) as dir_fd:
        # Opening checks it is a regular single-link file and not a link; unlink then removes
        # the name only, so a swap for a symlink after the check still cannot touch its target.
        fd = sp.open_file(ctx.workspace, dir_fd, wpath, os.O_RDONLY)
        os.close(fd)
        try:
            os.unlink(wpath.name, dir_fd=dir_fd)
        except OSError as exc:
            raise ToolError(f"cannot delete '{wpath.shown}': {exc.strerror}") from None
    return f"deleted {wpath.shown}"

