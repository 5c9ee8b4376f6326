#!/usr/bin/env python3
"""Rebuild ``data/search/corpus.jsonl``, the offline web-search corpus, from its sources.

Sources (see ``data/search/NOTICE.md`` for licences):

* Python 3.11 documentation (PSF licence): Debian package ``python3.11-doc``;
* Flask 2.2 documentation (BSD-3-Clause): Debian package ``python-flask-doc``;
* Requests 2.28 documentation (Apache-2.0): Debian package ``python-requests-doc``;
* agentbench's own pages (Apache-2.0): ``data/search/originals/*.md`` (HTTP status codes and
  headers, written for agentbench from RFC 9110 / RFC 6585).

The Debian packages are fetched with ``apt-get download`` (no root needed, only the Debian
archive) and unpacked with ``dpkg-deb -x`` into a temporary folder; ``--debs DIR`` uses ``.deb``
files already there instead. Each selected HTML page is converted to text with the standard
library's ``html.parser``; long pages are split at their top-level sections so a search hit points
at the part that answers (``page.html#section-id``). Output is deterministic: rerunning on the
same packages gives the same file.

    python scripts/build_search_corpus.py            # apt-get download into a temp dir
    python scripts/build_search_corpus.py --debs /tmp/debs
"""

from __future__ import annotations

import argparse
import glob
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "data" / "search"

#: A page longer than this (characters of text) is split into its top-level sections.
SPLIT_OVER = 12_000
#: Text kept per document: enough for fetch_page (which truncates anyway) within the size budget.
MAX_DOC_CHARS = 24_000
#: Sections shorter than this are merged into the page's introduction rather than kept alone.
MIN_SECTION_CHARS = 800


@dataclass(frozen=True)
class DocSet:
    """One Debian documentation package and the pages taken from it."""

    package: str
    html_root: str  # inside the unpacked package
    base_url: str
    source: str
    licence: str
    pages: tuple[str, ...]  # glob patterns relative to html_root
    dirhtml: bool = False  # the site serves "quickstart.html" as "quickstart/" (Sphinx dirhtml)


PYTHON_PAGES = (
    "tutorial/*.html", "faq/programming.html", "faq/general.html",
    "howto/sorting.html", "howto/regex.html", "howto/logging.html",
    "howto/urllib2.html", "howto/argparse.html",
    "glossary.html", "reference/simple_stmts.html", "reference/compound_stmts.html",
    "library/stdtypes.html", "library/functions.html", "library/exceptions.html", "library/json.html",
    "library/datetime.html", "library/collections.html", "library/itertools.html", "library/functools.html",
    "library/re.html", "library/os.path.html", "library/pathlib.html", "library/urllib.request.html",
    "library/urllib.parse.html", "library/urllib.error.html", "library/http.html", "library/http.client.html",
    "library/http.server.html", "library/sqlite3.html", "library/csv.html",
    "library/logging.html", "library/argparse.html", "library/subprocess.html", "library/dataclasses.html",
    "library/string.html", "library/math.html", "library/random.html", "library/statistics.html",
    "library/heapq.html", "library/bisect.html", "library/copy.html",
    "library/time.html", "library/shutil.html", "library/tempfile.html", "library/hashlib.html",
    "library/secrets.html", "library/base64.html", "library/html.parser.html", "library/textwrap.html",
    "library/contextlib.html", "library/operator.html",
    "library/glob.html", "library/venv.html",
)

DOCSETS = (
    DocSet("python3.11-doc", "usr/share/doc/python3.11/html", "https://docs.python.org/3.11/",
           "Python 3.11 documentation (Debian python3.11-doc)", "PSF-2.0", PYTHON_PAGES),
    DocSet("python-flask-doc", "usr/share/doc/python-flask-doc/html", "https://flask.palletsprojects.com/en/2.2.x/",
           "Flask 2.2 documentation (Debian python-flask-doc)", "BSD-3-Clause",
           ("quickstart.html", "config.html", "api.html", "tutorial/*.html", "patterns/*.html", "testing.html",
            "errorhandling.html", "blueprints.html", "templating.html", "security.html", "views.html",
            "appcontext.html", "reqcontext.html", "logging.html", "cli.html", "installation.html",
            "debugging.html"), dirhtml=True),
    DocSet("python-requests-doc", "usr/share/doc/python-requests-doc/html", "https://requests.readthedocs.io/en/latest/",
           "Requests 2.28 documentation (Debian python-requests-doc)", "Apache-2.0",
           ("user/*.html", "api.html", "community/faq.html", "community/recommended.html"), dirhtml=True),
)

#: Pages never worth indexing (navigation, indexes, changelogs).
SKIP = re.compile(r"(^|/)(index|genindex|search|py-modindex|changes|404)\.html$")


# --------------------------------------------------------------------------- HTML -> sections


@dataclass
class Section:
    """Text of one ``<section>`` of a Sphinx page (not including its nested sections' text)."""

    anchor: str
    level: int
    title: str = ""
    parts: list[str] = field(default_factory=list)


class SphinxText(HTMLParser):
    """Collects the main content of a Sphinx page as sections of plain text.

    Only text inside ``role="main"`` counts; header links, scripts and the navigation are dropped;
    ``<pre>`` keeps its line breaks, block elements start new lines.
    """

    BLOCKS = frozenset({"p", "div", "li", "dt", "dd", "pre", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "table", "ul", "ol", "dl", "blockquote", "br", "section"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = [Section("", 0)]
        self._stack: list[Section] = [self.sections[0]]
        self._depth = 0  # open tags inside the main div
        self._main_depth: int | None = None
        self._skip_depth: int | None = None
        self._heading: list[str] | None = None
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._main_depth is None:
            if a.get("role") == "main":
                self._main_depth = self._depth
            if tag not in {"br", "img", "meta", "link", "input", "hr"}:
                self._depth += 1
            return
        if tag in {"br", "img", "meta", "link", "input", "hr", "wbr"}:
            if tag == "br":
                self._emit("\n")
            return
        self._depth += 1
        if self._skip_depth is not None:
            return
        if tag in {"script", "style"} or "headerlink" in (a.get("class") or ""):
            self._skip_depth = self._depth
            return
        if tag == "section" and a.get("id"):
            sec = Section(a["id"] or "", len(self._stack))
            self.sections.append(sec)
            self._stack.append(sec)
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"}:
            self._heading = []
        if tag == "pre":
            self._pre += 1
        if tag in self.BLOCKS:
            self._emit("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._main_depth is None or tag in {"br", "img", "meta", "link", "input", "hr", "wbr"}:
            if self._main_depth is None:
                self._depth -= 1
            return
        if self._skip_depth is not None:
            if self._depth == self._skip_depth:
                self._skip_depth = None
            self._depth -= 1
            return
        self._depth -= 1
        if self._depth == self._main_depth:
            self._main_depth = -1  # main content is over; ignore the rest of the page
        if tag == "section" and len(self._stack) > 1:
            self._stack.pop()
        if tag in {"h1", "h2", "h3", "h4", "h5", "h6"} and self._heading is not None:
            title = " ".join("".join(self._heading).split())
            if not self._stack[-1].title:
                self._stack[-1].title = title
            self._heading = None
        if tag == "pre":
            self._pre -= 1
        if tag in self.BLOCKS:
            self._emit("\n")

    def handle_data(self, data: str) -> None:
        if self._main_depth is None or self._main_depth == -1 or self._skip_depth is not None:
            return
        if self._heading is not None:
            self._heading.append(data)
        self._emit(data if self._pre else re.sub(r"\s+", " ", data))

    def _emit(self, text: str) -> None:
        self._stack[-1].parts.append(text)


def tidy(text: str) -> str:
    """Collapse runs of blank lines and trailing spaces."""
    lines = [line.rstrip() for line in text.splitlines()]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out.replace("\u00b6", "")


def page_documents(html: str, url: str, meta: DocSet) -> list[dict[str, str]]:
    """One document per page, or one per top-level section when the page is long."""
    parser = SphinxText()
    parser.feed(html)
    parser.close()
    secs = [s for s in parser.sections if s.level >= 1]
    if not secs:
        return []
    page = secs[0]
    page_title = page.title or url
    full = tidy("".join("".join(s.parts) for s in secs))
    if len(full) <= SPLIT_OVER:
        return [_doc(url, page_title, full, meta)]
    # Split: the page's own text (introduction) plus each level-2 section with its subsections.
    groups: list[tuple[Section, list[Section]]] = []
    intro: list[Section] = [page]
    for s in secs[1:]:
        if s.level == 2:
            groups.append((s, [s]))
        elif groups:
            groups[-1][1].append(s)
        else:
            intro.append(s)
    docs = []
    intro_text = tidy("".join("".join(s.parts) for s in intro))
    for head, members in groups:
        text = tidy("".join("".join(s.parts) for s in members))
        if len(text) < MIN_SECTION_CHARS:
            intro_text += "\n\n" + text
            continue
        docs.append(_doc(f"{url}#{head.anchor}", f"{head.title} - {page_title}", text, meta))
    if len(intro_text) >= MIN_SECTION_CHARS or not docs:
        docs.insert(0, _doc(url, page_title, intro_text, meta))
    return docs


def _doc(url: str, title: str, text: str, meta: DocSet) -> dict[str, str]:
    # "5.1. More on Lists - 5. Data Structures" -> "More on Lists - Data Structures"
    title = re.sub(r"(^|- )[\d.]+\s+", r"\1", title)
    if len(text) > MAX_DOC_CHARS:
        text = text[:MAX_DOC_CHARS].rsplit("\n", 1)[0] + "\n[...]"
    return {"url": url, "title": title, "text": text, "source": meta.source, "licence": meta.licence}


# --------------------------------------------------------------------------- sources


def fetch_debs(folder: Path) -> None:
    """``apt-get download`` the documentation packages into ``folder``."""
    cmd = ["apt-get", "download", *(d.package for d in DOCSETS)]
    subprocess.run(cmd, cwd=folder, check=True)


def unpack(debs: Path, into: Path) -> None:
    for d in DOCSETS:
        matches = sorted(debs.glob(f"{d.package}_*.deb"))
        if not matches:
            sys.exit(f"no {d.package}_*.deb in {debs}")
        subprocess.run(["dpkg-deb", "-x", str(matches[-1]), str(into)], check=True)


def docset_documents(root: Path, meta: DocSet) -> list[dict[str, str]]:
    html_root = root / meta.html_root
    files: list[str] = []
    for pattern in meta.pages:
        found = sorted(glob.glob(str(html_root / pattern)))
        if not found:
            sys.exit(f"{meta.package}: no page matches {pattern}")
        files += [f for f in found if f not in files]
    docs = []
    for name in files:
        rel = Path(name).relative_to(html_root).as_posix()
        if SKIP.search(rel):
            continue
        html = Path(name).read_text(encoding="utf-8", errors="replace")
        if meta.dirhtml:
            rel = rel.removesuffix(".html") + "/"
        docs += page_documents(html, meta.base_url + rel, meta)
    return docs


def original_documents() -> list[dict[str, str]]:
    """agentbench's own pages: ``data/search/originals/*.md`` with ``url:``/``title:`` headers."""
    docs = []
    for path in sorted((OUT_DIR / "originals").glob("*.md")):
        head, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        fields = dict(line.split(": ", 1) for line in head.splitlines())
        docs.append({"url": fields["url"], "title": fields["title"], "text": body.strip(),
                     "source": "agentbench original", "licence": "Apache-2.0"})
    return docs


def psf_licence(root: Path) -> str:
    """The PSF licence and 0BSD notice from the packaged ``license.html`` (shipped with the corpus)."""
    html = (root / "usr/share/doc/python3.11/html/license.html").read_text(encoding="utf-8")
    parser = SphinxText()
    parser.feed(html)
    wanted = {"psf-license-agreement-for-python-release",
              "zero-clause-bsd-license-for-code-in-the-python-release-documentation"}
    texts = [tidy("".join(s.parts)) for s in parser.sections if s.anchor in wanted]
    header = ("Python documentation included in corpus.jsonl (pages whose licence is PSF-2.0) is\n"
              "Copyright (c) 2001-2023 Python Software Foundation; All Rights Reserved, and is used\n"
              "under the following licence (from https://docs.python.org/3.11/license.html). Changes\n"
              "made: pages were converted from HTML to plain text and long pages split into sections.\n")
    return header + "\n\n" + "\n\n".join(texts) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debs", type=Path, help="folder holding the .deb files (default: apt-get download)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agentbench-corpus-") as tmp:
        debs = args.debs or Path(tmp) / "debs"
        if args.debs is None:
            debs.mkdir()
            fetch_debs(debs)
        root = Path(tmp) / "root"
        unpack(debs, root)
        docs = original_documents()
        for meta in DOCSETS:
            docs += docset_documents(root, meta)
        (OUT_DIR / "LICENSE-PSF.txt").write_text(psf_licence(root), encoding="utf-8")
    seen: set[str] = set()
    with (OUT_DIR / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for doc in docs:
            if doc["url"] in seen or not doc["text"]:
                continue
            seen.add(doc["url"])
            out.write(json.dumps(doc, ensure_ascii=False, sort_keys=False) + "\n")
    counts: dict[str, int] = {}
    for doc in docs:
        counts[doc["source"]] = counts.get(doc["source"], 0) + 1
    size = (OUT_DIR / "corpus.jsonl").stat().st_size
    print(f"wrote {len(seen)} documents ({size / 1e6:.2f} MB): " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
