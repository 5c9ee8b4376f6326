"""The ``live`` backend: real web search through the optional ``ddgs`` package, and real page fetches.

Only ever used when the user opts in for a run (``--search live`` or ``record``). ddgs is
imported lazily, so agentbench works without it; when it is missing the model sees a
``ToolError`` naming ``pip install 'agentbench[search]'``.

Search engines rate-limit scrapers, so requests are throttled process-wide (at least
``min_interval_s`` between two searches, whichever run makes them) and a rate limit or timeout is
retried with exponential backoff before it becomes a ``ToolError``. ddgs's ``backend="auto"``
shuffles engines at random, so the engine is pinned (``duckduckgo`` unless
``$AGENTBENCH_SEARCH_ENGINE`` says otherwise) to keep results comparable between runs.

Pages are fetched with urllib (timeout, size cap, http/https only, no private or loopback
addresses) and HTML is turned into text with the standard library's ``html.parser``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from agentbench.errors import ToolError

from . import Page, SearchResult

PIP_HINT = "pip install 'agentbench[search]'"
USER_AGENT = "Mozilla/5.0 (compatible; agentbench; +https://github.com/agentbench)"
#: Longest query sent to the engine (engines reject or mangle very long ones).
MAX_QUERY_CHARS = 500


@dataclass
class LiveSettings:
    """Tunables of live search; defaults suit one person running a suite."""

    engine: str = "duckduckgo"
    min_interval_s: float = 2.0
    retries: int = 3  # attempts after the first, on rate limits and timeouts
    backoff_s: float = 2.0  # first wait; doubled for each further retry
    timeout_s: float = 10.0
    max_page_bytes: int = 2_000_000

    @classmethod
    def from_env(cls) -> LiveSettings:
        """Defaults, with the engine and interval overridable from the environment."""
        s = cls()
        s.engine = os.environ.get("AGENTBENCH_SEARCH_ENGINE", s.engine)
        s.min_interval_s = float(os.environ.get("AGENTBENCH_SEARCH_MIN_INTERVAL", s.min_interval_s))
        return s


@dataclass
class Throttle:
    """Keeps at least ``min_interval_s`` between the starts of two requests (thread-safe)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, min_interval_s: float) -> None:
        with self._lock:  # held while sleeping, so waiting callers queue up in turn
            now = self.clock()
            if self._last is not None and now - self._last < min_interval_s:
                self.sleep(min_interval_s - (now - self._last))
                now = self.clock()
            self._last = now


#: The process-wide throttle shared by every live backend.
THROTTLE = Throttle()


def _ddgs() -> Any:
    """The ``ddgs`` module, imported on first use; ``ToolError`` with the install hint if missing."""
    try:
        import ddgs
        import ddgs.exceptions  # RatelimitException, TimeoutException live here
    except ImportError:
        raise ToolError(f"live web search needs the optional package ddgs: {PIP_HINT}") from None
    return ddgs


class LiveBackend:
    """The ``live`` backend."""

    name = "live"

    def __init__(self, settings: LiveSettings | None = None, throttle: Throttle | None = None) -> None:
        self.settings = settings or LiveSettings.from_env()
        self.throttle = throttle or THROTTLE

    def describe(self) -> dict[str, Any]:
        """What a cassette records about its recorder."""
        ddgs = _ddgs()
        return {"ddgs": getattr(ddgs, "__version__", "unknown"), "engine": self.settings.engine}

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        query = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not query:
            raise ToolError("the search query is empty: give a few keywords")
        ddgs = _ddgs()
        exc_mod = ddgs.exceptions
        retryable = (exc_mod.RatelimitException, exc_mod.TimeoutException)
        s = self.settings
        for attempt in range(s.retries + 1):
            self.throttle.wait(s.min_interval_s)
            try:
                client = ddgs.DDGS(timeout=s.timeout_s)
                raw = client.text(query, max_results=max_results, backend=s.engine)
                return [_result(r) for r in raw or []][:max_results]
            except retryable as exc:
                if attempt == s.retries:
                    kind = "rate limited" if isinstance(exc, exc_mod.RatelimitException) else "timed out"
                    raise ToolError(
                        f"web search {kind} after {attempt + 1} attempts ({exc}); try again later"
                    ) from None
                self.throttle.sleep(s.backoff_s * 2**attempt)
            except exc_mod.DDGSException as exc:
                if "no results" in str(exc).lower():  # ddgs signals an empty result page this way
                    return []
                raise ToolError(f"web search failed: {exc}") from None
            except Exception as exc:  # anything else ddgs or its HTTP stack throws: the model sees it
                raise ToolError(f"web search failed: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")

    def fetch(self, url: str) -> Page:
        return fetch_url(url.strip(), timeout_s=self.settings.timeout_s, max_bytes=self.settings.max_page_bytes)


def _result(raw: dict[str, Any]) -> SearchResult:
    """ddgs's ``{title, href, body}`` as ``{title, url, snippet}``."""
    return SearchResult(
        title=str(raw.get("title") or ""), url=str(raw.get("href") or raw.get("url") or ""),
        snippet=" ".join(str(raw.get("body") or "").split()),
    )


# --------------------------------------------------------------------------- fetching pages


def check_public_url(url: str) -> None:
    """Refuse anything but http(s) URLs of public hosts (no file:, no localhost or private nets)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError when out of range or not a number
    except ValueError as exc:  # also "Invalid IPv6 URL" for an unclosed [
        raise ToolError(f"cannot fetch {url!r}: it is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ToolError(f"cannot fetch {url!r}: only http:// and https:// URLs can be fetched")
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise ToolError(f"cannot fetch {url!r}: host not found ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ToolError(f"cannot fetch {url!r}: it points to a private or local address")


class _PublicRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to public http(s) URLs."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        check_public_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, *, timeout_s: float, max_bytes: int, deadline_s: float | None = None) -> Page:
    """The page at ``url`` as text; every failure is a ``ToolError``.

    ``timeout_s`` bounds each socket operation; ``deadline_s`` (default: three times
    ``timeout_s``) the whole fetch, so a server trickling bytes cannot hold the tool for long: the
    call ends at most one socket timeout after the deadline. Proxies from the environment
    (``*_PROXY``) are ignored: a proxy would reach the address that the public-address check
    refused.
    """
    check_public_url(url)
    deadline = time.monotonic() + (3 * timeout_s if deadline_s is None else deadline_s)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _PublicRedirects)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "text/html,text/plain"})
    try:
        with opener.open(request, timeout=timeout_s) as resp:
            ctype = resp.headers.get_content_type()
            charset = resp.headers.get_content_charset() or "utf-8"
            body = _read_until(resp, max_bytes, deadline, url)
            final_url = resp.geturl()
    except urllib.error.HTTPError as exc:
        raise ToolError(f"fetching {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ToolError(f"fetching {url} failed: {reason}") from None
    if ctype not in ("text/html", "application/xhtml+xml", "text/plain"):
        raise ToolError(f"{url} is {ctype}, not a web page; only HTML and plain-text pages can be read")
    text = body.decode(charset if _known_codec(charset) else "utf-8", errors="replace")
    if ctype == "text/plain":
        return Page(url=final_url, title="", text=text)
    title, content = html_to_text(text)
    return Page(url=final_url, title=title, text=content)


def _read_until(resp: Any, max_bytes: int, deadline: float, url: str) -> bytes:
    """At most ``max_bytes`` of the body, read a chunk at a time; ``ToolError`` past ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while size < max_bytes:
        if time.monotonic() > deadline:
            raise ToolError(f"fetching {url} failed: the page took too long to download")
        chunk = resp.read1(min(65536, max_bytes - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _known_codec(name: str) -> bool:
    try:
        "".encode(name)
    except LookupError:
        return False
    return True


class _TextExtractor(HTMLParser):
    """Visible text of an HTML page, with line breaks at block elements, and its <title>."""

    SKIP = frozenset({"script", "style", "noscript", "svg", "template", "iframe"})
    BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "section",
                        "article", "header", "footer", "table", "ul", "ol", "dl", "dt", "dd", "blockquote"})
    VOID = frozenset({"br", "img", "hr", "meta", "link", "input", "wbr", "source", "area", "base", "col"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skipping: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.SKIP and tag not in self.VOID:
            self._skipping.append(tag)
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif self._skipping and tag == self._skipping[-1]:
            self._skipping.pop()
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """``(title, text)`` of an HTML document: visible text only, blank-line runs collapsed."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient, but never let a broken page crash the tool
        pass
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return " ".join("".join(parser.title).split()), text
