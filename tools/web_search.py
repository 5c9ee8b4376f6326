"""Web search tools: ``web_search`` (ranked results) and ``fetch_page`` (one page as text).

The backend is picked per call from the run's options (see :func:`.search.backend_for`): the
scenario's ``search`` settings (``corpus``, the offline documentation corpus, by default; or
``replay`` of a recorded cassette), unless the user opted the whole run into ``live`` or
``record`` search. Every failure (no results recorded, a page that is not there, a rate limit,
ddgs not installed) is a ``ToolError`` the model sees, never a crash.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from agentbench.errors import ToolError

from .registry import ToolContext, register_tool
from .search import SearchResult, backend_for

MAX_RESULTS = 10
DEFAULT_MAX_CHARS = 8000
MAX_CHARS = 50_000


class WebSearchArgs(BaseModel):
    query: str = Field(
        description="What to search for: a few keywords or a short question, e.g. 'python list append'."
    )
    max_results: int = Field(
        default=5, ge=1, le=MAX_RESULTS, description=f"How many results to return (1-{MAX_RESULTS}, default 5)."
    )


class FetchPageArgs(BaseModel):
    url: str = Field(description="The page's URL, exactly as a web_search result gave it.")
    max_chars: int = Field(
        default=DEFAULT_MAX_CHARS, ge=200, le=MAX_CHARS,
        description=f"Return at most this many characters of the page (200-{MAX_CHARS}, default {DEFAULT_MAX_CHARS}).",
    )


@register_tool(
    "web_search",
    WebSearchArgs,
    """Search the web and return the best-matching pages, best first.
Use it to find documentation or facts you are not sure of, and to get a URL you can cite. query is
a few keywords or a short question, e.g. 'python list append' or 'HTTP 429 meaning'. Returns a JSON
list of results, each {"title", "url", "snippet"}; the snippet is a short extract of the page.
To read a page in full, pass its url to fetch_page.""",
    group="search",
)
def web_search(ctx: ToolContext, args: WebSearchArgs) -> list[SearchResult] | str:
    """Up to ``args.max_results`` results for ``args.query`` from the run's search backend."""
    if not args.query.strip():
        raise ToolError("the search query is empty: give a few keywords, e.g. 'python list append'")
    results = backend_for(ctx.options).search(args.query, args.max_results)
    if not results:
        return f"No results for {args.query!r}. Try fewer or different keywords."
    return results


@register_tool(
    "fetch_page",
    FetchPageArgs,
    """Fetch one web page and return its title, URL and text.
Use it after web_search to read a result in full before answering; pass the url exactly as the
search result gave it, e.g. 'https://docs.python.org/3.11/tutorial/datastructures.html#more-on-lists'.
Returns plain text: the title, then the URL, then the page text. Text longer than max_chars
(default 8000) is cut off with a marker saying how long the page is.""",
    group="search",
)
def fetch_page(ctx: ToolContext, args: FetchPageArgs) -> str:
    """The page at ``args.url`` as ``title / url / text``, truncated to ``args.max_chars``."""
    if not args.url.strip():
        raise ToolError("the url is empty: pass a url from a web_search result")
    page = backend_for(ctx.options).fetch(args.url)
    text = page["text"]
    if len(text) > args.max_chars:
        text = (
            text[: args.max_chars]
            + f"\n[... truncated: the page has {len(page['text'])} characters; showing the first {args.max_chars} ...]"
        )
    title = page["title"] or "(untitled)"
    return f"{title}\n{page['url']}\n\n{text}"
