"""The offline backend: ranked full-text search over the documentation corpus shipped with agentbench.

The corpus is a JSONL text file (one page per line: ``url``, ``title``, ``text``, ``source``,
``licence``; see ``docs/search.md``), indexed on first use into an in-memory SQLite FTS5 table
(porter stemming, so "appending" finds "append") and ranked with bm25, titles weighted above
body text. Building takes well under a second and happens once per process.

A model's query is never passed to FTS5 as syntax: it is cut into words, common English words
are dropped, and each remaining word is quoted, so quotes, ``OR``, ``NEAR``, ``-x``, ``*`` or
``title:`` in a query are just text and can never raise an FTS syntax error.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import sqlite3
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from agentbench.errors import ToolError

from . import Page, SearchResult

if TYPE_CHECKING:
    from importlib.abc import Traversable

#: Words too common to help ranking (a query made only of them still searches for them).
_STOPWORD_TEXT = (
    "a an and are as at be by can do does for from how i in is it me my of on or should the to what "
    "when where which who why with you your"
)
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
#: At most this many words of a query are used (a 10 KB query must not build a 10 KB FTS query).
MAX_QUERY_TERMS = 32
#: bm25 column weights: a word in the title counts this many times more than one in the text.
TITLE_WEIGHT = 4.0

_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; "_" separates like FTS5 does


class CorpusIndex:
    """An FTS5 index of corpus pages plus a URL -> page map for fetching them."""

    def __init__(self, pages: Iterable[dict[str, Any]]) -> None:
        # One connection shared by the worker threads tools run in; the lock serialises them.
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute(
            "CREATE VIRTUAL TABLE pages USING fts5("
            "title, text, url UNINDEXED, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        self.pages: dict[str, Page] = {}
        rows = []
        for page in pages:
            url = str(page["url"])
            self.pages[url] = Page(url=url, title=str(page["title"]), text=str(page["text"]))
            rows.append((page["title"], page["text"], url))
        self._db.executemany("INSERT INTO pages (title, text, url) VALUES (?, ?, ?)", rows)
        self._db.commit()

    @classmethod
    def from_jsonl(cls, text: str) -> CorpusIndex:
        """An index of the JSONL ``text`` (blank lines ignored)."""
        return cls(json.loads(line) for line in text.splitlines() if line.strip())

    def search(self, query: str, limit: int) -> list[SearchResult]:
        """Up to ``limit`` pages best matching ``query`` (bm25), with a snippet of the matching text."""
        match = fts_query(query)
        sql = (
            "SELECT title, url, snippet(pages, 1, '', '', ' ... ', 32) FROM pages "
            f"WHERE pages MATCH ? ORDER BY bm25(pages, {TITLE_WEIGHT}, 1.0) LIMIT ?"
        )
        with self._lock:
            rows = self._db.execute(sql, (match, limit)).fetchall()
        return [SearchResult(title=t, url=u, snippet=" ".join(s.split())) for t, u, s in rows]

    def get(self, url: str) -> Page | None:
        """The page at ``url``, trying the usual spellings of the same address."""
        for candidate in url_variants(url):
            if candidate in self.pages:
                return self.pages[candidate]
        return None


def fts_query(query: str) -> str:
    """An FTS5 MATCH expression for a free-text query: its words, each quoted, joined by OR.

    OR (rather than FTS5's implicit AND) lets a page match without every word; bm25 still ranks
    pages holding more of the words, and rarer ones, first. Raises ``ToolError`` if no word is left.
    """
    words = [w.lower() for w in _WORD.findall(query)]
    if not words:
        raise ToolError("the search query is empty: give a few keywords, e.g. 'python list append'")
    kept = [w for w in words if w not in STOPWORDS] or words
    unique = list(dict.fromkeys(kept))[:MAX_QUERY_TERMS]
    # Words hold only letters and digits, so quoting cannot be broken out of.
    return " OR ".join(f'"{w}"' for w in unique)


def url_variants(url: str) -> list[str]:
    """``url`` and the spellings of it that mean the same corpus page."""
    url = url.strip()
    if url.startswith("http://"):
        url = "https://" + url[len("http://"):]
    if "://" not in url:
        url = "https://" + url
    # docs.python.org/3/ is an alias of the newest version; the corpus holds 3.11.
    url = re.sub(r"^https://docs\.python\.org/3/", "https://docs.python.org/3.11/", url)
    base, _, fragment = url.partition("#")
    seen: list[str] = []
    for b in (base, base.rstrip("/"), base.rstrip("/") + "/", base.removesuffix(".html") + "/"):
        for candidate in (f"{b}#{fragment}" if fragment else b, b):
            if candidate not in seen:
                seen.append(candidate)
    return seen


class CorpusBackend:
    """The ``corpus`` search backend."""

    name = "corpus"

    def __init__(self, index: CorpusIndex) -> None:
        self.index = index

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        return self.index.search(query, max_results)

    def fetch(self, url: str) -> Page:
        page = self.index.get(url)
        if page is None:
            raise ToolError(
                f"page not found: {url!r} is not in the offline documentation corpus; "
                "fetch a URL exactly as web_search returned it"
            )
        return page


_DEFAULT: CorpusIndex | None = None
_DEFAULT_LOCK = threading.Lock()


def default_index() -> CorpusIndex:
    """The shipped corpus, indexed on first use and then shared by the whole process."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            text = corpus_file().read_text(encoding="utf-8")
            _DEFAULT = CorpusIndex.from_jsonl(text)
        return _DEFAULT


def corpus_file() -> Traversable:
    """The shipped corpus file (package data of ``agentbench.data``)."""
    return importlib.resources.files("agentbench.data") / "search" / "corpus.jsonl"
