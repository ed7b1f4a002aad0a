"""explore_hf_docs and fetch_hf_docs: browse and read Hugging Face documentation as markdown."""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlparse

from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec
from ml_intern.tools import hf_common as hf

if TYPE_CHECKING:
    import httpx

    from ml_intern.config import Settings

DOC_ENDPOINTS = [
    "hub", "transformers", "diffusers", "datasets", "gradio", "trackio", "smolagents", "huggingface_hub",
    "huggingface.js", "transformers.js", "inference-providers", "inference-endpoints", "peft", "accelerate",
    "optimum", "tokenizers", "courses", "evaluate", "tasks", "dataset-viewer", "trl", "simulate", "sagemaker",
    "timm", "safetensors", "tgi", "setfit", "lerobot", "autotrain", "tei", "bitsandbytes",
    "sentence_transformers", "chat-ui", "leaderboards", "lighteval", "argilla", "distilabel", "microsoft-azure",
    "kernels", "google-cloud",
]  # fmt: skip
DEFAULT_MAX_RESULTS = 20
MAX_RESULTS_CAP = 50
MAX_FETCH_CHARS = 40_000
_MAX_INDEXED_PAGES = 80
_CONCURRENCY = 8
_INDEX_TTL_S = 3600
_GLIMPSE = 200
_GRADIO_LLMS = "https://www.gradio.app/llms.txt"

EXPLORE_DESCRIPTION = (
    "List a Hugging Face docs section, or search it with `query`; read pages with fetch_hf_docs."
)
EXPLORE_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "endpoint": {"type": "string", "enum": DOC_ENDPOINTS},
        "query": {"type": "string"},
        "max_results": {"type": "integer", "description": "default 20, max 50"},
    },
    "required": ["endpoint"],
}
FETCH_DESCRIPTION = (
    "Fetch a documentation page as markdown (URL from explore_hf_docs; `.md` is added for HF docs)."
)
FETCH_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"url": {"type": "string"}},
    "required": ["url"],
}


@dataclass
class _Page:
    title: str
    url: str
    text: str = ""
    tokens: Counter[str] = field(default_factory=Counter)
    title_tokens: Counter[str] = field(default_factory=Counter)


@dataclass
class _Index:
    pages: list[_Page]
    built_at: float
    full_text: bool = False


_indexes: dict[tuple[str, str], _Index] = {}
_WORD = re.compile(r"[a-z0-9_]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "with",
        "you",
        "your",
    ]
)


def _tokens(text: str) -> list[str]:
    words = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP or len(word) < 2:
            continue
        for suffix in ("ing", "ers", "es", "ed", "er", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        words.append(word)
    return words


def _docs_base(endpoint: str) -> str:
    return f"{hf.hf_endpoint()}/docs/{endpoint}"


def _md_url(url: str) -> str:
    parsed = urlparse(url)
    if "/docs/" in parsed.path and not parsed.path.endswith((".md", ".txt")):
        return url.split("#")[0].rstrip("/") + ".md"
    return url


async def _get_text(client: httpx.AsyncClient, url: str) -> tuple[int, str]:
    response = await hf.safe_get(client, url)
    return response.status_code, response.text


def _links_from_llms_txt(text: str, base: str) -> list[tuple[str, str]]:
    links = []
    for title, url in re.findall(r"\[([^\]]+)\]\(([^)\s]+)\)", text):
        links.append((title.strip(), urljoin(base + "/", url)))
    return links


def _links_from_html(html: str, base: str, endpoint: str) -> list[tuple[str, str]]:
    prefix = urlparse(base).path.rstrip("/") + "/"
    seen: dict[str, str] = {}
    for href, label in re.findall(r'<a[^>]+href="([^"#?]+)"[^>]*>(.*?)</a>', html, flags=re.DOTALL):
        absolute = urljoin(base + "/", href)
        path = urlparse(absolute).path
        if not path.startswith(prefix) or path.rstrip("/") == prefix.rstrip("/"):
            continue
        title = re.sub(r"<[^>]+>", "", label).strip() or path.rsplit("/", 1)[-1]
        seen.setdefault(absolute.rstrip("/"), title)
    return [(title, url) for url, title in seen.items()]


async def _page_list(client: httpx.AsyncClient, endpoint: str) -> list[_Page]:
    if endpoint == "gradio":
        status, text = await _get_text(client, _GRADIO_LLMS)
        if status == 200:
            return [_Page(t, u) for t, u in _links_from_llms_txt(text, "https://www.gradio.app")]
    base = _docs_base(endpoint)
    status, text = await _get_text(client, f"{base}/llms.txt")
    links: list[tuple[str, str]] = []
    if status == 200:
        links = _links_from_llms_txt(text, base)
    if not links:
        status, html = await _get_text(client, base)
        if status == 404:
            raise ToolError(f"no documentation found for '{endpoint}' at {base}.")
        if status >= 400:
            raise ToolError(f"the docs site answered HTTP {status} for {base}.")
        links = _links_from_html(html, base, endpoint)
    unique: dict[str, str] = {}
    for title, url in links:
        unique.setdefault(url, title)
    return [_Page(title, url) for url, title in unique.items()]


async def _index(client: httpx.AsyncClient, endpoint: str, full_text: bool) -> _Index:
    key = (hf.hf_endpoint(), endpoint)
    cached = _indexes.get(key)
    if cached and time.time() - cached.built_at < _INDEX_TTL_S and (cached.full_text or not full_text):
        return cached
    pages = cached.pages if cached else await _page_list(client, endpoint)
    if full_text:
        semaphore = asyncio.Semaphore(_CONCURRENCY)

        async def load(page: _Page) -> None:
            if page.text:
                return
            async with semaphore:
                try:
                    status, text = await _get_text(client, _md_url(page.url))
                except Exception:
                    return
            if status == 200:
                page.text = text
                page.tokens = Counter(_tokens(text))
            page.title_tokens = Counter(_tokens(page.title))

        await asyncio.gather(*(load(p) for p in pages[:_MAX_INDEXED_PAGES]))
    for page in pages:
        if not page.title_tokens:
            page.title_tokens = Counter(_tokens(page.title))
    index = _Index(pages, time.time(), full_text)
    _indexes[key] = index
    return index


def _rank(pages: list[_Page], query: str) -> list[tuple[float, _Page]]:
    terms = _tokens(query)
    if not terms:
        return []
    n = len(pages) or 1
    avg_len = sum(sum(p.tokens.values()) for p in pages) / n or 1.0
    scored = []
    for page in pages:
        length = sum(page.tokens.values()) or 1
        score = 0.0
        for term in terms:
            df = sum(1 for p in pages if term in p.tokens or term in p.title_tokens)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = page.tokens.get(term, 0)
            score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avg_len))
            score += 2.0 * idf * min(page.title_tokens.get(term, 0), 1)
        if score > 0:
            scored.append((score, page))
    scored.sort(key=lambda item: -item[0])
    return scored


def _glimpse(page: _Page, query: str) -> str:
    text = " ".join(page.text.split())
    if not text:
        return ""
    lowered = text.lower()
    positions = [lowered.find(t) for t in _tokens(query) if lowered.find(t) >= 0]
    start = max(0, min(positions) - 60) if positions else 0
    snippet = text[start : start + _GLIMPSE]
    return ("…" if start else "") + snippet + ("…" if start + _GLIMPSE < len(text) else "")


async def explore(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """List or search one docs section."""
    endpoint = str(args.get("endpoint") or "").strip()
    if endpoint not in DOC_ENDPOINTS:
        raise ToolError(f"unknown docs endpoint {endpoint!r}; use one of: {', '.join(DOC_ENDPOINTS)}")
    query = str(args.get("query") or "").strip()
    try:
        max_results = max(1, min(int(args.get("max_results") or DEFAULT_MAX_RESULTS), MAX_RESULTS_CAP))
    except (TypeError, ValueError):
        max_results = DEFAULT_MAX_RESULTS
    async with hf.http_client(timeout=30) as client:
        try:
            index = await _index(client, endpoint, full_text=bool(query))
        except ToolError:
            raise
        except Exception as exc:
            return ToolResult(hf.describe_http_error(exc, f"docs for {endpoint}"), success=False)
    if not index.pages:
        return ToolResult(f"The {endpoint} docs list no pages.", success=False)
    if not query:
        lines = [f"{p.title}: {p.url}" for p in index.pages[:max_results]]
        more = (
            f"\n... {len(index.pages) - max_results} more pages; pass a query to search."
            if len(index.pages) > max_results
            else ""
        )
        return ToolResult(f"{endpoint} docs ({len(index.pages)} pages):\n" + "\n".join(lines) + more)
    ranked = _rank(index.pages, query)[:max_results]
    if not ranked:
        return ToolResult(f"No {endpoint} docs page matches {query!r}. Try other words or list the section.")
    lines = []
    for i, (score, page) in enumerate(ranked, 1):
        lines.append(f"{i}. {page.title}: {page.url}\n   {_glimpse(page, query)}")
    return ToolResult(f"{endpoint} docs for {query!r}:\n" + "\n".join(lines))


async def fetch(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Fetch one docs page as markdown; the HF token only goes to Hugging Face hosts."""
    raw = str(args.get("url") or "").strip()
    if not raw:
        raise ToolError("url is required.")
    if raw.startswith("/"):
        raw = hf.hf_endpoint() + raw
    elif not raw.startswith(("http://", "https://")):
        raw = f"{hf.hf_endpoint()}/docs/{raw.lstrip('/')}"
    url = _md_url(raw)
    async with hf.http_client(timeout=30) as client:
        try:
            response = await hf.safe_get(client, url)
            if response.status_code == 404 and url != raw:
                response = await hf.safe_get(client, raw)
        except Exception as exc:
            return ToolResult(hf.describe_http_error(exc, f"fetch {url}"), success=False)
    if response.status_code >= 400:
        return ToolResult(f"fetch {url}: HTTP {response.status_code}.", success=False)
    return ToolResult(hf.truncate(response.text, MAX_FETCH_CHARS))


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """explore_hf_docs and fetch_hf_docs."""
    return [
        ToolSpec(
            name="explore_hf_docs",
            description=EXPLORE_DESCRIPTION,
            parameters=EXPLORE_PARAMETERS,
            handler=explore,
            risk=Risk.READ,
            read_only=True,
            undoable=False,
        ),
        ToolSpec(
            name="fetch_hf_docs",
            description=FETCH_DESCRIPTION,
            parameters=FETCH_PARAMETERS,
            handler=fetch,
            risk=Risk.READ,
            read_only=True,
            undoable=False,
        ),
    ]


def reset_cache() -> None:
    """Forget built indexes (tests)."""
    _indexes.clear()
