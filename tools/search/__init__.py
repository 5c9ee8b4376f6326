"""Backends behind the ``web_search`` and ``fetch_page`` tools, and how a run picks one.

Four backends share one small interface (:class:`SearchBackend`):

* ``corpus`` (:mod:`.corpus`): ranked full-text search (SQLite FTS5, bm25) over the documentation
  corpus shipped in ``agentbench.data/search/corpus.jsonl``. Offline and deterministic: the default.
* ``replay`` (:mod:`.cassette`): results recorded from live search, read from a cassette file.
* ``live`` (:mod:`.live`): real web search through the optional ``ddgs`` package.
* ``record`` (:mod:`.cassette`): live search that also appends what it saw to the cassette.

A scenario chooses ``corpus`` or ``replay`` (``search:`` in its YAML, passed to tools as
``ctx.options["search"]``); only the user can choose ``live`` or ``record``, for a whole run
(``--search live|record``, passed as ``ctx.options["search_override"]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol, TypedDict

from agentbench.errors import ToolError


class SearchResult(TypedDict):
    """One search hit as the model sees it."""

    title: str
    url: str
    snippet: str


class Page(TypedDict):
    """A fetched page: its (final) URL, title and plain text."""

    url: str
    title: str
    text: str


class SearchBackend(Protocol):
    """What the tools need from a backend. Failures the model should see raise ``ToolError``."""

    name: str

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Up to ``max_results`` hits for ``query``, best first."""
        ...

    def fetch(self, url: str) -> Page:
        """The page at ``url`` as text."""
        ...


def normalise_query(query: str) -> str:
    """The key a query is recorded under: lower case, whitespace collapsed, ends trimmed."""
    return re.sub(r"\s+", " ", query).strip().lower()


OVERRIDES = ("live", "record")


def backend_for(options: Mapping[str, Any]) -> SearchBackend:
    """The backend for a run: the user's override if any, else the scenario's choice.

    ``options["search"]`` is the scenario's ``SearchSettings`` as a dict; ``options["search_override"]``
    the run-level ``--search`` choice (``live`` or ``record``), absent or ``None`` otherwise.
    """
    settings: Mapping[str, Any] = options.get("search") or {}
    cassette = settings.get("cassette")
    override = options.get("search_override")
    if override:
        if override not in OVERRIDES:  # a wiring bug, not the model's doing: fail loudly
            raise ValueError(f"search_override must be one of {OVERRIDES}, not {override!r}")
        from . import live

        if override == "live":
            return live.LiveBackend()
        from . import cassette as cassettes

        return cassettes.RecordingBackend(live.LiveBackend(), cassettes.cassette_path(cassette or "recorded"))
    backend = settings.get("backend", "corpus")
    if backend == "corpus":
        from . import corpus

        return corpus.CorpusBackend(corpus.default_index())
    if backend == "replay":
        from . import cassette as cassettes

        if not cassette:
            raise ToolError("this scenario's search backend is 'replay' but it names no cassette")
        return cassettes.ReplayBackend(cassettes.cassette_path(cassette))
    raise ValueError(f"unknown search backend {backend!r}")
