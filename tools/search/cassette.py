"""Cassettes: live search results recorded once and replayed offline (``replay`` and ``record``).

A cassette is one JSON file (format in ``docs/search.md``): which ddgs version and engine recorded
it and when, the searches keyed by normalised query (lower case, whitespace collapsed), and the
pages fetched, keyed by URL. ``replay`` only reads it; a query or URL that is not there is a
``ToolError`` telling the user to re-record. ``record`` searches live and merges every new
search and page into the file, rewriting it atomically (temporary file + rename, mode 0644) while
holding an exclusive ``flock`` on ``<cassette>.lock``, so a crash never leaves half a file and
concurrent runs, in one process or several, never lose each other's entries.

Cassette names resolve to ``<dir>/<name>.json`` where ``<dir>`` is ``$AGENTBENCH_CASSETTE_DIR``
if set, else the shipped ``agentbench.data/search/cassettes``; a name holding a ``/`` or ending
in ``.json`` is a path used as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agentbench.errors import ToolError

from . import Page, SearchBackend, SearchResult, normalise_query

FORMAT = 1
_RERECORD = "re-record the cassette with --search record"
_WRITE_LOCK = threading.Lock()


def cassette_path(name: str) -> Path:
    """Where the cassette ``name`` lives (see the module docstring)."""
    if "/" in name or name.endswith(".json"):
        return Path(name)
    folder = os.environ.get("AGENTBENCH_CASSETTE_DIR")
    if folder:
        return Path(folder) / f"{name}.json"
    import agentbench.data

    # data/ is a regular package on disk (editable or installed), so its folder is a real path.
    return Path(agentbench.data.__file__).parent / "search" / "cassettes" / f"{name}.json"


def empty_cassette() -> dict[str, Any]:
    """A cassette with nothing recorded yet."""
    return {"format": FORMAT, "recorded_with": {}, "created": _now(), "updated": None, "searches": {}, "pages": {}}


def load(path: Path) -> dict[str, Any]:
    """The cassette at ``path``; ``ToolError`` if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ToolError(f"search cassette {path} does not exist; {_RERECORD}") from None
    except (OSError, ValueError) as exc:
        raise ToolError(f"search cassette {path} cannot be read ({exc}); {_RERECORD}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ToolError(f"search cassette {path} is not a format-{FORMAT} cassette; {_RERECORD}")
    for section in ("searches", "pages"):
        if not isinstance(data.get(section), dict):
            raise ToolError(f"search cassette {path} is malformed: it has no {section!r} table; {_RERECORD}")
    return data


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<path>.lock`` (other processes recording the same cassette
    wait), and the process-wide lock (threads do too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _WRITE_LOCK:
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock


class ReplayBackend:
    """The ``replay`` backend: answers only what the cassette recorded."""

    name = "replay"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = load(path)

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        entry = self.data["searches"].get(normalise_query(query))
        if entry is None:
            raise ToolError(f"no recorded results for {query!r} in cassette {self.path.name}; {_RERECORD}")
        return [SearchResult(title=r["title"], url=r["url"], snippet=r["snippet"]) for r in entry["results"]][
            :max_results
        ]

    def fetch(self, url: str) -> Page:
        page = self.data["pages"].get(url.strip())
        if page is None:
            raise ToolError(f"no recorded page for {url!r} in cassette {self.path.name}; {_RERECORD}")
        return Page(url=page["url"], title=page["title"], text=page["text"])



class RecordingBackend:
    """The ``record`` backend: a live backend whose every answer is added to the cassette."""

    name = "record"

    def __init__(self, live: SearchBackend, path: Path) -> None:
        self.live = live
        self.path = path

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        results = self.live.search(query, max_results)
        entry = {"query": query, "max_results": max_results, "recorded_at": _now(), "results": results}
        self._update("searches", normalise_query(query), entry)
        return results

    def fetch(self, url: str) -> Page:
        page = self.live.fetch(url)
        entry = {**page, "recorded_at": _now()}
        self._update("pages", url.strip(), entry)
        return page

    def _update(self, section: str, key: str, entry: dict[str, Any]) -> None:
        """Merge one entry into the file: re-read, change, write atomically (under a lock that
        other processes respect too)."""
        with locked(self.path):
            data = load(self.path) if self.path.exists() else empty_cassette()
            data[section][key] = entry
            data["recorded_with"] = recorder_info(self.live)
            data["updated"] = _now()
            write_atomic(self.path, data)


def recorder_info(live: Any) -> dict[str, Any]:
    """What recorded the cassette: the ddgs version and pinned engine, as the live backend reports them."""
    describe = getattr(live, "describe", None)
    return describe() if callable(describe) else {"backend": getattr(live, "name", "unknown")}


def write_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` so readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes it 0600: a cassette is meant to be shared and committed
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
