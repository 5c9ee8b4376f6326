"""Regression tests for review findings outside the sandbox: deep paths in the file tools, bad
run_tests paths, dates at the ends of the calendar, bad URLs and slow pages in live fetching,
and cassettes recorded by several processes."""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_helpers import caller, make_ctx

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, tool_spec
from agentbench.tools import code as code_tools
from agentbench.tools import files as file_tools
from agentbench.tools.search import cassette, live

# --------------------------------------------------------------------------- 3. files: depth


def test_write_and_edit_refuse_paths_deeper_than_the_limit(tmp_path: Path) -> None:
    ctx = ToolContext(workspace=tmp_path)
    deepest = "/".join(["d"] * (file_tools.MAX_PATH_DEPTH - 1) + ["f.txt"])
    too_deep = "/".join(["d"] * file_tools.MAX_PATH_DEPTH + ["f.txt"])
    assert tool_spec("write_file").bind(ctx).invoke({"path": deepest, "content": "x"}).startswith("wrote")
    with pytest.raises(ToolError, match="components; the limit is 64"):
        tool_spec("write_file").bind(ctx).invoke({"path": too_deep, "content": "x"})
    with pytest.raises(ToolError, match="components; the limit is 64"):
        tool_spec("edit_file").bind(ctx).invoke({"path": too_deep, "old_text": "x", "new_text": "y"})
    assert not (tmp_path.joinpath(*["d"] * file_tools.MAX_PATH_DEPTH)).exists()  # nothing was created


# --------------------------------------------------------------------------- 4. run_tests paths


def test_run_tests_path_through_a_file_is_a_tool_error(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def test_a():\n    pass\n")
    with pytest.raises(ToolError, match=r"'a\.py/x' cannot be used as a test path"):
        code_tools._targets(tmp_path, ["a.py/x"])


# --------------------------------------------------------------------------- 5. calendar ranges

CALENDAR = {"calendar": {"timezone": "-04:00", "now": "2024-06-17T09:00:00",
                         "events": [{"title": "Standup", "start": "2024-06-18T09:00:00",
                                     "end": "2024-06-18T09:30:00"}]}}


@pytest.mark.parametrize(("tool", "args"), [
    ("list_events", {"date_from": "9999-12-01", "date_to": "9999-12-31"}),
    ("list_events", {"date_from": "0001-01-01T00:00:00+05:00", "date_to": "0001-01-02"}),
    ("create_event", {"title": "x", "start": "0001-01-01T00:00:00+05:00", "end": "0001-01-01T02:00:00"}),
    ("create_event", {"title": "x", "start": "9999-12-31T23:00:00", "end": "9999-12-31T23:59:59-05:00"}),
    ("move_event", {"event_id": "evt_1", "new_start": "9999-12-31T23:50:00"}),
])
def test_dates_out_of_range_are_tool_errors(tmp_path: Path, tool: str, args: dict[str, Any]) -> None:
    call = caller(make_ctx(tmp_path, CALENDAR))
    with pytest.raises(ToolError, match="out of range"):
        call(tool, **args)
    assert call("list_events", date_from="2024-06-18", date_to="2024-06-18")["count"] == 1  # still usable


# --------------------------------------------------------------------------- 6. live fetching


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything resolves a name or opens a URL."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("no connection may be attempted")

    monkeypatch.setattr(live.socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", refuse)


@pytest.mark.usefixtures("no_connections")
@pytest.mark.parametrize("url", ["http://x:99999/", "http://[::1/", "http://example.org:port/", "https://[zz]/"])
def test_malformed_urls_are_tool_errors_without_a_connection(url: str) -> None:
    with pytest.raises(ToolError, match="cannot fetch"):
        live.fetch_url(url, timeout_s=1, max_bytes=1000)


class _Handler(http.server.BaseHTTPRequestHandler):
    drip_s = 0.0  # > 0: send the body one byte at a time, this far apart, for at most 3 s

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if not self.drip_s:
            self.wfile.write(b"hello")
            return
        end = time.monotonic() + 3
        while time.monotonic() < end:
            try:
                self.wfile.write(b"x")
                self.wfile.flush()
            except OSError:  # the client gave up
                return
            time.sleep(self.drip_s)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A page server on loopback; the public-address check is switched off to reach it."""
    monkeypatch.setattr(live, "check_public_url", lambda url: None)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        _Handler.drip_s = 0.0


def test_fetch_ignores_proxies_from_the_environment(local_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")  # nothing listens there: using it would fail
    assert live.fetch_url(local_server, timeout_s=5, max_bytes=1000)["text"] == "hello"


def test_fetch_has_an_overall_deadline(local_server: str) -> None:
    _Handler.drip_s = 0.02  # every single read is quick; the whole page never ends
    start = time.monotonic()
    with pytest.raises(ToolError, match="took too long"):
        live.fetch_url(local_server, timeout_s=1, max_bytes=1_000_000, deadline_s=0.5)
    assert time.monotonic() - start < 2


# --------------------------------------------------------------------------- 7. cassettes

_RECORDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from agentbench.tools.search import cassette

    class Live:
        name = "fake"
        def search(self, query, max_results):
            return [{"title": query, "url": "https://example.org/" + query, "snippet": ""}]

    path, prefix, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    backend = cassette.RecordingBackend(Live(), path)
    for i in range(25):
        backend.search(f"{prefix} {i}", 5)
""")


def test_concurrent_recorders_keep_every_entry(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    start = time.time() + 1.0  # both start writing at the same moment
    # cwd: run from the repository root, `python -c` would import the checkout's agentbench/ folder
    # (no agentbench.tools there) instead of the installed package.
    procs = [subprocess.Popen([sys.executable, "-c", _RECORDER, str(path), prefix, str(start)], cwd=tmp_path)
             for prefix in ("alpha", "beta")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    searches = json.loads(path.read_text(encoding="utf-8"))["searches"]
    assert sorted(searches) == sorted(f"{p} {i}" for p in ("alpha", "beta") for i in range(25))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_malformed_cassette_is_a_tool_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": cassette.FORMAT, "pages": {}}), encoding="utf-8")
    with pytest.raises(ToolError, match="malformed"):
        cassette.ReplayBackend(path)

    class Live:
        name = "fake"

        def search(self, query: str, max_results: int) -> list[Any]:
            return []

    with pytest.raises(ToolError, match="malformed"):
        cassette.RecordingBackend(Live(), path).search("q", 5)
