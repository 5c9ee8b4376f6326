"""Tests for web_search / fetch_page and their backends (corpus, replay, record, live).

Nothing here touches the network: live search runs against a fake ``ddgs`` module put in
``sys.modules``, page fetches against a fake ``fetch_url``, and time against a fake clock. The
one real live test is marked ``network`` and skipped unless ``AGENTBENCH_NETWORK_TESTS=1``.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentbench.errors import ToolError
from agentbench.tools import ToolContext, tool_spec
from agentbench.tools.search import Page, backend_for, cassette, corpus, live, normalise_query

CORPUS_SEARCH = {"backend": "corpus", "cassette": None}


def call(tool: str, options: dict[str, Any], **args: Any) -> str:
    """Invoke a tool as the tool loop does (bound to a context, result rendered as text)."""
    ctx = ToolContext(workspace=Path("."), options=options)
    return str(tool_spec(tool).bind(ctx).invoke(args))


def search(query: str, options: dict[str, Any] | None = None, **args: Any) -> Any:
    text = call("web_search", options or {"search": CORPUS_SEARCH}, query=query, **args)
    return json.loads(text) if text.startswith("[") else text


# --------------------------------------------------------------------------- corpus


def test_corpus_ships_as_package_data() -> None:
    assert importlib.resources.files("agentbench.data").joinpath("search/corpus.jsonl").is_file()
    assert importlib.resources.files("agentbench.data").joinpath("search/NOTICE.md").is_file()
    assert importlib.resources.files("agentbench.data").joinpath("search/LICENSE-PSF.txt").is_file()


def test_corpus_pages_are_well_formed_and_licensed() -> None:
    lines = corpus.corpus_file().read_text(encoding="utf-8").splitlines()
    pages = [json.loads(line) for line in lines]
    assert 200 <= len(pages) <= 600
    assert len({p["url"] for p in pages}) == len(pages)
    assert {p["licence"] for p in pages} <= {"PSF-2.0", "BSD-3-Clause", "Apache-2.0"}
    for p in pages:
        assert set(p) == {"url", "title", "text", "source", "licence"}
        assert p["url"].startswith("https://") and p["title"] and p["text"]


def test_appending_to_a_list_ranks_the_list_tutorial_first() -> None:
    results = search("how do I append an item to a list in python")
    assert results[0]["url"] == "https://docs.python.org/3.11/tutorial/datastructures.html#more-on-lists"
    assert set(results[0]) == {"title", "url", "snippet"}
    assert "append" in results[0]["snippet"].lower()


@pytest.mark.parametrize(
    ("query", "expected_first"),
    [
        ("HTTP 429 too many requests", "https://www.rfc-editor.org/rfc/rfc6585#section-4"),
        ("flask session secret key", "https://flask.palletsprojects.com/en/2.2.x/quickstart/#sessions"),
        ("Retry-After header", "https://www.rfc-editor.org/rfc/rfc9110#name-retry-after"),
    ],
)
def test_ranking_for_scenario_topics(query: str, expected_first: str) -> None:
    assert search(query)[0]["url"] == expected_first


def test_max_results_is_honoured() -> None:
    assert len(search("python list", max_results=2)) == 2
    assert len(search("python list", max_results=10)) == 10


@pytest.mark.parametrize(
    "query",
    [
        'python "list" OR -x',
        '"unbalanced quote',
        "list AND NOT append NEAR(a b)",
        "app* title:flask ^start",
        "(((list)))",
        "list {title text}: +x",
        "liste ümlaut 日本語 émoji 🐍",
        "__init__ :: -- ** ;",
        "SELECT * FROM pages; DROP TABLE pages; --",
    ],
)
def test_fts_syntax_in_queries_is_just_text(query: str) -> None:
    result = search(query)  # never an FTS5 syntax error
    assert isinstance(result, (list, str))
    assert search("python list")  # and the index is still intact


@pytest.mark.parametrize("query", ["", "   ", '"" * - ()', "🐍🐍"])
def test_query_without_words_is_a_tool_error(query: str) -> None:
    with pytest.raises(ToolError, match="empty"):
        call("web_search", {"search": CORPUS_SEARCH}, query=query)


def test_huge_query_is_cut_not_refused() -> None:
    query = ("append list python " * 600)[:10_240] + " " + " ".join(f"word{i}" for i in range(200))
    results = search(query)
    assert isinstance(results, list) and results


def test_query_with_no_match_says_so() -> None:
    assert "No results" in search("zzzyqxw qqqxxyyzz")


def test_fetch_page_from_corpus_with_title_url_and_truncation_marker() -> None:
    url = "https://docs.python.org/3.11/tutorial/datastructures.html#more-on-lists"
    text = call("fetch_page", {"search": CORPUS_SEARCH}, url=url, max_chars=500)
    title, shown_url, _, body = text.split("\n", 3)
    assert title == "More on Lists - Data Structures" and shown_url == url
    assert "list.append(x)" in body
    assert body.endswith("showing the first 500 ...]")


def test_fetch_page_accepts_usual_spellings_of_a_corpus_url() -> None:
    for url in (
        "https://docs.python.org/3/tutorial/datastructures.html#more-on-lists",
        "http://docs.python.org/3.11/tutorial/datastructures.html#more-on-lists",
        "https://flask.palletsprojects.com/en/2.2.x/quickstart#sessions",
    ):
        assert "Not found" not in call("fetch_page", {"search": CORPUS_SEARCH}, url=url)


@pytest.mark.parametrize("url", ["https://example.com/nowhere", "file:///etc/passwd", "not a url", "   "])
def test_fetch_page_of_unknown_url_is_a_tool_error(url: str) -> None:
    with pytest.raises(ToolError):
        call("fetch_page", {"search": CORPUS_SEARCH}, url=url)


def test_default_backend_is_the_corpus() -> None:
    assert backend_for({}).name == "corpus"
    assert backend_for({"search": CORPUS_SEARCH}).name == "corpus"


# --------------------------------------------------------------------------- replay


def write_cassette(path: Path) -> None:
    data = cassette.empty_cassette()
    data["recorded_with"] = {"ddgs": "9.16.1", "engine": "duckduckgo"}
    data["searches"]["python list append"] = {
        "query": "Python list  append", "max_results": 5, "recorded_at": "2026-01-01T00:00:00+00:00",
        "results": [{"title": "Lists", "url": "https://example.org/lists", "snippet": "list.append(x)"},
                    {"title": "More", "url": "https://example.org/more", "snippet": "more"}],
    }
    data["pages"]["https://example.org/lists"] = {
        "url": "https://example.org/lists", "title": "Lists", "text": "list.append(x) adds x.", "recorded_at": "x",
    }
    cassette.write_atomic(path, data)


@pytest.fixture
def cassette_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cassettes"
    monkeypatch.setenv("AGENTBENCH_CASSETTE_DIR", str(folder))
    return folder


def replay_options(name: str = "demo") -> dict[str, Any]:
    return {"search": {"backend": "replay", "cassette": name}}


def test_replay_hit_is_keyed_by_normalised_query(cassette_dir: Path) -> None:
    write_cassette(cassette_dir / "demo.json")
    results = search("  PYTHON   list\tappend ", replay_options())
    assert [r["url"] for r in results] == ["https://example.org/lists", "https://example.org/more"]
    assert len(search("python list append", replay_options(), max_results=1)) == 1
    page = call("fetch_page", replay_options(), url="https://example.org/lists")
    assert page == "Lists\nhttps://example.org/lists\n\nlist.append(x) adds x."


def test_replay_miss_tells_how_to_rerecord(cassette_dir: Path) -> None:
    write_cassette(cassette_dir / "demo.json")
    with pytest.raises(ToolError, match=r"no recorded results for .*--search record"):
        search("python tuples", replay_options())
    with pytest.raises(ToolError, match=r"no recorded page .*--search record"):
        call("fetch_page", replay_options(), url="https://example.org/other")


def test_replay_of_missing_or_broken_cassette_is_a_tool_error(cassette_dir: Path) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        search("python", replay_options("absent"))
    cassette_dir.mkdir(parents=True, exist_ok=True)
    (cassette_dir / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ToolError, match="cannot be read"):
        search("python", replay_options("broken"))
    with pytest.raises(ToolError, match="names no cassette"):
        search("python", {"search": {"backend": "replay", "cassette": None}})


def test_normalise_query() -> None:
    assert normalise_query("  Python\n LIST   append ") == "python list append"


# --------------------------------------------------------------------------- live (fake ddgs)


class FakeClock:
    """A clock that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class DDGSException(Exception):
    """Stand-ins for ddgs.exceptions (same hierarchy)."""


class RatelimitException(DDGSException):
    pass


class TimeoutException(DDGSException):
    pass


def fake_ddgs_module(text: Callable[..., list[dict[str, Any]]], calls: list[dict[str, Any]]) -> types.ModuleType:
    """A stand-in for the ddgs package whose ``DDGS().text`` is ``text``."""
    mod = types.ModuleType("ddgs")
    exc = types.ModuleType("ddgs.exceptions")
    exc.DDGSException = DDGSException  # type: ignore[attr-defined]
    exc.RatelimitException = RatelimitException  # type: ignore[attr-defined]
    exc.TimeoutException = TimeoutException  # type: ignore[attr-defined]

    class DDGS:
        def __init__(self, timeout: float | None = None) -> None:
            self.timeout = timeout

        def text(self, query: str, **kwargs: Any) -> list[dict[str, Any]]:
            calls.append({"query": query, **kwargs})
            return text(query, **kwargs)

    mod.DDGS = DDGS  # type: ignore[attr-defined]
    mod.exceptions = exc  # type: ignore[attr-defined]
    mod.__version__ = "9.16.1"  # type: ignore[attr-defined]
    return mod


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(live, "THROTTLE", live.Throttle(clock=fake.clock, sleep=fake.sleep))
    settings = live.LiveSettings(min_interval_s=2.0, retries=3, backoff_s=0.01)
    monkeypatch.setattr(live.LiveSettings, "from_env", classmethod(lambda cls: settings))
    return fake


TextFn = Callable[..., list[dict[str, Any]]]


@pytest.fixture
def ddgs_calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[TextFn], list[dict[str, Any]]]:
    """Install a fake ddgs answering with the given function; returns the list of calls it saw."""

    def install(text: TextFn) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        mod = fake_ddgs_module(text, calls)
        monkeypatch.setitem(sys.modules, "ddgs", mod)
        monkeypatch.setitem(sys.modules, "ddgs.exceptions", mod.exceptions)
        return calls

    return install


def canned(query: str, **_: Any) -> list[dict[str, Any]]:
    return [{"title": f"About {query}", "href": f"https://example.org/{len(query)}", "body": "  some\n text "},
            {"title": "Second", "href": "https://example.org/2", "body": "b"}]


LIVE = {"search": CORPUS_SEARCH, "search_override": "live"}


def test_live_search_maps_ddgs_results_and_pins_the_engine(fake_time: FakeClock, ddgs_calls: Any) -> None:
    calls = ddgs_calls(canned)
    results = search("python lists", LIVE, max_results=2)
    assert results == [{"title": "About python lists", "url": "https://example.org/12", "snippet": "some text"},
                       {"title": "Second", "url": "https://example.org/2", "snippet": "b"}]
    assert calls == [{"query": "python lists", "max_results": 2, "backend": "duckduckgo"}]


def test_live_search_is_throttled(fake_time: FakeClock, ddgs_calls: Any) -> None:
    seen: list[float] = []

    def text(query: str, **_: Any) -> list[dict[str, Any]]:
        seen.append(fake_time.now)
        return canned(query)

    ddgs_calls(text)
    search("first", LIVE)
    fake_time.now += 0.5  # the model thinks for half a second
    search("second", LIVE)
    assert seen[1] - seen[0] >= 2.0
    assert fake_time.sleeps == [pytest.approx(1.5)]


@pytest.mark.parametrize("error", [RatelimitException, TimeoutException])
def test_live_retries_with_backoff_then_succeeds(fake_time: FakeClock, ddgs_calls: Any, error: type) -> None:
    failures = [error("202 Ratelimit"), error("timed out")]

    def text(query: str, **_: Any) -> list[dict[str, Any]]:
        if failures:
            raise failures.pop(0)
        return canned(query)

    calls = ddgs_calls(text)
    assert search("retry me", LIVE)[0]["title"] == "About retry me"
    assert len(calls) == 3
    backoffs = [s for s in fake_time.sleeps if s in (pytest.approx(0.01), pytest.approx(0.02))]
    assert backoffs == [pytest.approx(0.01), pytest.approx(0.02)]


@pytest.mark.parametrize(("error", "word"), [(RatelimitException, "rate limited"), (TimeoutException, "timed out")])
def test_live_gives_up_with_a_tool_error(fake_time: FakeClock, ddgs_calls: Any, error: type, word: str) -> None:
    def text(query: str, **_: Any) -> list[dict[str, Any]]:
        raise error("nope")

    calls = ddgs_calls(text)
    with pytest.raises(ToolError, match=f"{word} after 4 attempts"):
        search("always failing", LIVE)
    assert len(calls) == 4
    assert [s for s in fake_time.sleeps if s < 1] == [pytest.approx(0.01 * 2**i) for i in range(3)]


def test_live_other_failures_are_tool_errors(fake_time: FakeClock, ddgs_calls: Any) -> None:
    def no_results(query: str, **_: Any) -> list[dict[str, Any]]:
        raise DDGSException("No results found.")

    ddgs_calls(no_results)
    assert "No results" in search("obscure", LIVE)

    def broken(query: str, **_: Any) -> list[dict[str, Any]]:
        raise RuntimeError("engine html changed")

    ddgs_calls(broken)
    with pytest.raises(ToolError, match="web search failed: RuntimeError"):
        search("anything", LIVE)


def test_missing_ddgs_is_a_tool_error_with_the_pip_hint(fake_time: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ddgs", None)  # makes `import ddgs` raise ImportError
    with pytest.raises(ToolError, match=r"pip install 'agentbench\[search\]'"):
        search("python", LIVE)


def test_live_fetch_refuses_non_http_and_local_addresses() -> None:
    for url in ("file:///etc/passwd", "ftp://example.org/x", "http://127.0.0.1:8000/", "http://localhost/",
                "http://[::1]/", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/"):
        with pytest.raises(ToolError):
            live.check_public_url(url)


def test_html_to_text_keeps_visible_text_and_title() -> None:
    html = """<html><head><title> Demo  page </title><style>p{color:red}</style>
    <script>alert(1)</script></head><body><h1>Heading</h1><p>First &amp; second</p>
    <ul><li>one</li><li>two</li></ul><noscript>hidden</noscript></body></html>"""
    title, text = live.html_to_text(html)
    assert title == "Demo page"
    assert [line for line in text.splitlines() if line] == ["Heading", "First & second", "one", "two"]
    assert "alert" not in text and "color" not in text and "hidden" not in text


def test_unknown_override_is_a_wiring_bug() -> None:
    with pytest.raises(ValueError, match="search_override"):
        backend_for({"search_override": "sometimes"})


# --------------------------------------------------------------------------- record, then replay


def test_record_writes_a_cassette_that_replays_identically(
    fake_time: FakeClock, ddgs_calls: Any, cassette_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    ddgs_calls(canned)
    fetched: list[str] = []

    def fake_fetch(url: str, *, timeout_s: float, max_bytes: int) -> Page:
        fetched.append(url)
        return Page(url=url, title="Example", text="Example text " * 50)

    monkeypatch.setattr(live, "fetch_url", fake_fetch)
    record = {"search": {"backend": "replay", "cassette": "rec"}, "search_override": "record"}
    recorded_search = call("web_search", record, query="Python  Lists", max_results=2)
    recorded_other = call("web_search", record, query="flask sessions")
    recorded_page = call("fetch_page", record, url="https://example.org/12", max_chars=300)
    assert fetched == ["https://example.org/12"]

    data = json.loads((cassette_dir / "rec.json").read_text(encoding="utf-8"))
    assert data["format"] == 1 and data["recorded_with"] == {"ddgs": "9.16.1", "engine": "duckduckgo"}
    assert set(data["searches"]) == {"python lists", "flask sessions"}
    assert data["searches"]["python lists"]["query"] == "Python  Lists"
    assert data["created"] and data["updated"]
    assert list(data["pages"]) == ["https://example.org/12"]
    assert not [p for p in cassette_dir.iterdir() if p.name.endswith(".tmp")]  # atomic rewrite left nothing

    monkeypatch.setitem(sys.modules, "ddgs", None)  # replay must not need ddgs (or the network)
    replay = {"search": {"backend": "replay", "cassette": "rec"}}
    assert call("web_search", replay, query="python lists", max_results=2) == recorded_search
    assert call("web_search", replay, query="FLASK sessions") == recorded_other
    assert call("fetch_page", replay, url="https://example.org/12", max_chars=300) == recorded_page


def test_record_without_a_named_cassette_uses_recorded_json(
    fake_time: FakeClock, ddgs_calls: Any, cassette_dir: Path,
) -> None:
    ddgs_calls(canned)
    call("web_search", {"search": CORPUS_SEARCH, "search_override": "record"}, query="x y")
    assert (cassette_dir / "recorded.json").is_file()


# --------------------------------------------------------------------------- real network (opt-in)


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("AGENTBENCH_NETWORK_TESTS") != "1", reason="set AGENTBENCH_NETWORK_TESTS=1")
def test_live_search_for_real() -> None:
    pytest.importorskip("ddgs")
    results = search("python list append", {"search_override": "live"})
    assert isinstance(results, list) and results and all(r["url"].startswith("http") for r in results)
    page = call("fetch_page", {"search_override": "live"}, url="https://docs.python.org/3/tutorial/datastructures.html")
    assert "append" in page
