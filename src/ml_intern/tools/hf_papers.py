"""hf_papers: discover and read papers (Hub papers API, arXiv HTML, Semantic Scholar)."""

from __future__ import annotations

import asyncio
import os
import re
from collections import OrderedDict
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, ClassVar

from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools import hf_common as hf

if TYPE_CHECKING:
    import httpx

    from ml_intern.config import Settings

OPERATIONS = [
    "trending",
    "search",
    "paper_details",
    "read_paper",
    "citation_graph",
    "snippet_search",
    "recommend",
    "find_datasets",
    "find_models",
    "find_collections",
    "find_all_resources",
]
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
MAX_SUMMARY_LEN = 300
MAX_SECTION_TEXT_LEN = 8000
S2_TIMEOUT_S = 12.0
S2_ATTEMPTS = 3
_CACHE_SIZE = 500
_S2_FIELDS = "title,year,citationCount,externalIds,authors,venue"

DESCRIPTION = (
    "Papers: trending, search, paper_details, read_paper (no section: list sections), find_datasets/models/"
    "collections/all_resources for an arXiv id; citation_graph, snippet_search, recommend via Semantic Scholar."
)
_STR: dict[str, Any] = {"type": "string"}
PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"type": "string", "enum": OPERATIONS},
        "query": _STR,
        "arxiv_id": _STR,
        "section": {"type": "string", "description": "title or number"},
        "direction": {"type": "string", "enum": ["citations", "references", "both"]},
        "date": {"type": "string", "description": "YYYY-MM-DD"},
        "date_from": _STR,
        "date_to": _STR,
        "categories": _STR,
        "min_citations": {"type": "integer"},
        "sort_by": {"type": "string", "enum": ["relevance", "citationCount", "publicationDate"]},
        "positive_ids": {"type": "array", "items": _STR},
        "negative_ids": {"type": "array", "items": _STR},
        "sort": {"type": "string", "enum": ["downloads", "likes", "trending"]},
        "limit": {"type": "integer", "description": "default 10, max 50"},
    },
    "required": ["operation"],
}


def arxiv_base() -> str:
    return os.environ.get("ML_INTERN_ARXIV_BASE_URL", "https://arxiv.org").rstrip("/")


def ar5iv_base() -> str:
    return os.environ.get("ML_INTERN_AR5IV_BASE_URL", "https://ar5iv.labs.arxiv.org").rstrip("/")


def s2_base() -> str:
    return os.environ.get("ML_INTERN_S2_BASE_URL", "https://api.semanticscholar.org").rstrip("/")


class SourceUnavailable(Exception):
    """A remote source could not be reached or refused the request."""


_cache: OrderedDict[str, Any] = OrderedDict()


def _cache_get(key: str) -> Any:
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    return None


def _cache_put(key: str, value: Any) -> None:
    _cache[key] = value
    _cache.move_to_end(key)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)


def _limit(args: dict[str, Any]) -> int:
    try:
        value = int(args.get("limit") or DEFAULT_LIMIT)
    except (TypeError, ValueError):
        value = DEFAULT_LIMIT
    return max(1, min(value, MAX_LIMIT))


def _arxiv_id(args: dict[str, Any]) -> str:
    raw = str(args.get("arxiv_id") or "").strip()
    if not raw:
        raise ToolError(f"{args.get('operation')} needs arxiv_id.")
    match = re.search(r"(\d{4}\.\d{4,5})(v\d+)?", raw)
    return match.group(1) if match else raw.removeprefix("arXiv:").removeprefix("arxiv:")


def _short(text: Any, limit: int = MAX_SUMMARY_LEN) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


# ---------------------------------------------------------------------------------------------- HTTP


async def _hub_json(client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None) -> Any:
    url = f"{hf.hf_endpoint()}{path}"
    try:
        response = await hf.safe_get(client, url, params=params)
    except Exception as exc:
        raise SourceUnavailable(f"the Hub is unreachable ({type(exc).__name__})") from None
    if response.status_code == 404:
        raise ToolError(f"not found on the Hub: {path}")
    if response.status_code >= 400:
        raise SourceUnavailable(f"the Hub answered HTTP {response.status_code} for {path}")
    return response.json()


async def _s2(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None, json_body: Any = None
) -> Any:
    url = f"{s2_base()}{path}"
    key = f"{url}?{sorted((params or {}).items())}:{json_body}"
    cached = _cache_get(key)
    if cached is not None:
        return cached
    headers = {"x-api-key": os.environ["S2_API_KEY"]} if os.environ.get("S2_API_KEY") else {}
    last = ""
    for attempt in range(S2_ATTEMPTS):
        try:
            if json_body is None:
                response = await client.get(url, params=params, headers=headers, timeout=S2_TIMEOUT_S)
            else:
                response = await client.post(
                    url, params=params, json=json_body, headers=headers, timeout=S2_TIMEOUT_S
                )
        except Exception as exc:
            name = type(exc).__name__
            if "Connect" in name or isinstance(exc, OSError):
                raise SourceUnavailable("Semantic Scholar is unreachable from here (no connection)") from None
            last = name
        else:
            if response.status_code == 404:
                raise ToolError("Semantic Scholar does not know this paper (404).")
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}"
            elif response.status_code >= 400:
                raise SourceUnavailable(f"Semantic Scholar answered HTTP {response.status_code}")
            else:
                data = response.json()
                _cache_put(key, data)
                return data
        if attempt + 1 < S2_ATTEMPTS:
            await asyncio.sleep(1.0 * (attempt + 1))
    raise SourceUnavailable(f"Semantic Scholar did not answer after {S2_ATTEMPTS} attempts ({last})")


# ---------------------------------------------------------------------------------------------- formatting


def _paper_line(paper: dict[str, Any], index: int) -> str:
    pid = paper.get("id") or ""
    authors = ", ".join(a.get("name", "") for a in (paper.get("authors") or [])[:4])
    bits = [f"{index}. {paper.get('title', '').strip()} (arXiv {pid})"]
    meta = [
        str(paper.get("publishedAt", ""))[:10],
        f"{paper.get('upvotes', 0)} upvotes" if "upvotes" in paper else "",
    ]
    if authors:
        meta.insert(0, authors)
    bits.append("   " + " · ".join(m for m in meta if m))
    if paper.get("githubRepo"):
        bits.append(f"   code: {paper['githubRepo']}")
    if paper.get("summary"):
        bits.append(f"   {_short(paper['summary'])}")
    return "\n".join(bits)


def _s2_line(paper: dict[str, Any], index: int) -> str:
    ext = paper.get("externalIds") or {}
    ident = f"arXiv {ext['ArXiv']}" if ext.get("ArXiv") else f"S2 {paper.get('paperId', '')}"
    authors = ", ".join(a.get("name", "") for a in (paper.get("authors") or [])[:3])
    return (
        f"{index}. {paper.get('title', '')} ({ident}) · {paper.get('year') or '?'} · "
        f"{paper.get('citationCount', 0)} citations" + (f" · {authors}" if authors else "")
    )


# ---------------------------------------------------------------------------------------------- arXiv HTML


class _SectionParser(HTMLParser):
    """Split an arXiv HTML paper into (title, text) sections."""

    _SKIP: ClassVar[frozenset[str]] = frozenset(
        {"script", "style", "annotation", "annotation-xml", "nav", "header", "footer"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[list[str]] = [["Front matter", ""]]
        self._skip_depth = 0
        self._heading: list[str] | None = None
        self._title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in ("h1", "h2", "h3", "h4"):
            self._heading = []
        elif tag == "math":
            alt = dict(attrs).get("alttext")
            if alt and self._skip_depth == 0:
                self._text(f" {alt} ")
            self._skip_depth += 1
        elif tag in ("p", "div", "li", "br", "tr"):
            self._text("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP or tag == "math":
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in ("h1", "h2", "h3", "h4") and self._heading is not None:
            title = " ".join("".join(self._heading).split())
            self._heading = None
            if tag == "h1" and not self._title:
                self._title = title
            elif title:
                self.sections.append([title, ""])

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._heading is not None:
            self._heading.append(data)
        else:
            self._text(data)

    def _text(self, data: str) -> None:
        self.sections[-1][1] += data


def parse_arxiv_html(html: str) -> tuple[str, list[tuple[str, str]]]:
    """Return the paper title and its (section title, clean text) pairs."""
    parser = _SectionParser()
    parser.feed(html)
    sections = []
    for title, text in parser.sections:
        clean = re.sub(r"[ \t]+", " ", text)
        clean = re.sub(r"\n\s*\n+", "\n\n", clean).strip()
        if clean or title != "Front matter":
            sections.append((title, clean))
    return parser._title, sections


async def _read_paper(client: httpx.AsyncClient, arxiv_id: str, section: str | None) -> str:
    html = None
    source = ""
    for base in (arxiv_base(), ar5iv_base()):
        url = f"{base}/html/{arxiv_id}"
        try:
            response = await hf.safe_get(client, url)
        except Exception:
            continue
        if response.status_code == 200 and "<" in response.text:
            html, source = response.text, url
            break
    if html is None:
        try:
            paper = await _hub_json(client, f"/api/papers/{arxiv_id}")
        except (SourceUnavailable, ToolError):
            raise SourceUnavailable(
                f"arXiv HTML for {arxiv_id} is unreachable from here and the Hub has no record of it"
            ) from None
        return (
            f"arXiv HTML for {arxiv_id} is unavailable; abstract from the Hub instead:\n"
            f"{paper.get('title', '')}\n\n{paper.get('summary', '')}"
        )
    title, sections = parse_arxiv_html(html)
    if not section:
        lines = [f"{title or arxiv_id} ({source})", "Sections (pass section= title or number):"]
        lines += [f"  {i}. {name} ({len(text):,} chars)" for i, (name, text) in enumerate(sections)]
        abstract = next((text for name, text in sections if name.lower().startswith("abstract")), "")
        if abstract:
            lines.append("\nAbstract: " + _short(abstract, 1500))
        return "\n".join(lines)
    wanted = section.strip().lower()
    chosen = None
    if wanted.isdigit() and int(wanted) < len(sections):
        chosen = sections[int(wanted)]
    else:
        for name, text in sections:
            plain = re.sub(r"^[\dIVX.\s]+", "", name).lower()
            if wanted == name.lower() or wanted == plain or wanted in name.lower():
                chosen = (name, text)
                break
    if chosen is None:
        names = ", ".join(name for name, _ in sections[:30])
        raise ToolError(f"no section matching {section!r} in {arxiv_id}; sections: {names}")
    return f"## {chosen[0]}\n\n" + hf.truncate(chosen[1], MAX_SECTION_TEXT_LEN)


# ---------------------------------------------------------------------------------------------- operations


async def _resources(client: httpx.AsyncClient, kind: str, arxiv_id: str, args: dict[str, Any]) -> str:
    limit = _limit(args)
    if kind == "collections":
        items = await _hub_json(client, "/api/collections", {"paper": arxiv_id, "limit": limit})
        if not items:
            return f"No collections include arXiv {arxiv_id}."
        return f"Collections with arXiv {arxiv_id}:\n" + "\n".join(
            f"- {c.get('title')} ({hf.hf_endpoint()}/collections/{c.get('slug')}) · {c.get('upvotes', 0)} upvotes"
            for c in items[:limit]
        )
    sort = {"downloads": "downloads", "likes": "likes", "trending": "trendingScore"}.get(
        args.get("sort") or "downloads"
    )
    items = await _hub_json(
        client, f"/api/{kind}", {"filter": f"arxiv:{arxiv_id}", "limit": limit, "sort": sort}
    )
    if not items:
        return f"No {kind} cite arXiv {arxiv_id}."
    return f"{kind.capitalize()} citing arXiv {arxiv_id}:\n" + "\n".join(
        f"- {m.get('id')} · {m.get('downloads', 0):,} downloads · {m.get('likes', 0)} likes"
        for m in items[:limit]
    )


async def _run(op: str, args: dict[str, Any], client: httpx.AsyncClient) -> str:
    limit = _limit(args)
    if op == "trending":
        params: dict[str, Any] = {"limit": limit}
        if args.get("date"):
            params["date"] = args["date"]
        items = await _hub_json(client, "/api/daily_papers", params)
        papers = [i.get("paper", i) for i in items]
        query = str(args.get("query") or "").lower()
        if query:
            papers = [p for p in papers if query in (p.get("title", "") + p.get("summary", "")).lower()]
        if not papers:
            return "No trending papers found."
        return "Trending papers:\n" + "\n".join(_paper_line(p, i + 1) for i, p in enumerate(papers[:limit]))
    if op == "search":
        query = args.get("query")
        if not query:
            raise ToolError("search needs query.")
        advanced = any(
            args.get(k) for k in ("min_citations", "date_from", "date_to", "categories")
        ) or args.get("sort_by") not in (None, "relevance")
        if advanced:
            params = {"query": query, "fields": _S2_FIELDS, "limit": limit}
            if args.get("min_citations"):
                params["minCitationCount"] = int(args["min_citations"])
            if args.get("date_from") or args.get("date_to"):
                params["publicationDateOrYear"] = f"{args.get('date_from') or ''}:{args.get('date_to') or ''}"
            if args.get("categories"):
                params["fieldsOfStudy"] = args["categories"]
            if args.get("sort_by") and args["sort_by"] != "relevance":
                params["sort"] = f"{args['sort_by']}:desc"
            data = await _s2(client, "/graph/v1/paper/search/bulk", params)
            papers = (data.get("data") or [])[:limit]
            if not papers:
                return f"No papers match {query!r} with those filters."
            return "\n".join(_s2_line(p, i + 1) for i, p in enumerate(papers))
        items = await _hub_json(client, "/api/papers/search", {"q": query, "limit": limit})
        papers = [i.get("paper", i) for i in items]
        if not papers:
            return f"No papers on the Hub match {query!r}."
        return "\n".join(_paper_line(p, i + 1) for i, p in enumerate(papers[:limit]))
    if op == "paper_details":
        paper = await _hub_json(client, f"/api/papers/{_arxiv_id(args)}")
        text = _paper_line(paper, 1)[3:]
        keywords = paper.get("ai_keywords") or []
        extra = f"\nkeywords: {', '.join(keywords[:12])}" if keywords else ""
        return f"{text}{extra}\nabstract: {_short(paper.get('summary'), 2000)}\nhttps://arxiv.org/abs/{paper.get('id')}"
    if op == "read_paper":
        return await _read_paper(client, _arxiv_id(args), args.get("section"))
    if op in ("find_datasets", "find_models", "find_collections"):
        return await _resources(client, op.removeprefix("find_"), _arxiv_id(args), args)
    if op == "find_all_resources":
        arxiv_id = _arxiv_id(args)
        parts = await asyncio.gather(
            *(_resources(client, kind, arxiv_id, args) for kind in ("datasets", "models", "collections")),
            return_exceptions=True,
        )
        return "\n\n".join(p if isinstance(p, str) else f"({p})" for p in parts)
    if op == "citation_graph":
        arxiv_id = _arxiv_id(args)
        direction = args.get("direction") or "both"
        wanted = ["citations", "references"] if direction == "both" else [direction]
        out = []
        for kind in wanted:
            data = await _s2(
                client, f"/graph/v1/paper/arXiv:{arxiv_id}/{kind}", {"fields": _S2_FIELDS, "limit": limit}
            )
            key = "citingPaper" if kind == "citations" else "citedPaper"
            papers = [item.get(key, {}) for item in data.get("data") or []]
            out.append(f"{kind.capitalize()} of arXiv {arxiv_id}:")
            out.extend(_s2_line(p, i + 1) for i, p in enumerate(papers[:limit]))
        return "\n".join(out)
    if op == "snippet_search":
        query = args.get("query")
        if not query:
            raise ToolError("snippet_search needs query.")
        data = await _s2(client, "/graph/v1/snippet/search", {"query": query, "limit": limit})
        items = data.get("data") or []
        if not items:
            return f"No passages match {query!r}."
        lines = []
        for i, item in enumerate(items[:limit], 1):
            paper = item.get("paper") or {}
            snippet = (item.get("snippet") or {}).get("text", "")
            lines.append(f'{i}. {paper.get("title", "")}\n   "{_short(snippet, 500)}"')
        return "\n".join(lines)
    if op == "recommend":
        positives = [str(x) for x in args.get("positive_ids") or []]
        if args.get("arxiv_id"):
            positives.insert(0, _arxiv_id(args))
        if not positives:
            raise ToolError("recommend needs arxiv_id or positive_ids.")
        norm = [p if ":" in p else f"arXiv:{p}" for p in positives]
        negatives = [
            p if ":" in p else f"arXiv:{p}" for p in (str(x) for x in args.get("negative_ids") or [])
        ]
        data = await _s2(
            client,
            "/recommendations/v1/papers/",
            {"fields": _S2_FIELDS, "limit": limit},
            json_body={"positivePaperIds": norm, "negativePaperIds": negatives},
        )
        papers = data.get("recommendedPapers") or []
        if not papers:
            return "No recommendations."
        return "Recommended:\n" + "\n".join(_s2_line(p, i + 1) for i, p in enumerate(papers[:limit]))
    raise ToolError(f"unknown operation {op!r}; use one of: {', '.join(OPERATIONS)}")


async def handle(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Run one papers operation; unreachable sources give a one-line answer."""
    op = str(args.get("operation") or "").strip()
    async with hf.http_client(timeout=20) as client:
        try:
            return ToolResult(await _run(op, args, client))
        except SourceUnavailable as exc:
            return ToolResult(f"{op}: {exc}. Try another operation or source.", success=False)


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """The hf_papers tool."""
    return [
        ToolSpec(
            name="hf_papers",
            description=DESCRIPTION,
            parameters=PARAMETERS,
            handler=handle,
            risk=Risk.READ,
            read_only=True,
            undoable=False,
        )
    ]
