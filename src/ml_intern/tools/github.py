"""GitHub tools: find example files in a repo, list an owner's repos, read a file (notebooks as markdown)."""

from __future__ import annotations

import base64
import difflib
import json
import os
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec

if TYPE_CHECKING:
    import httpx

    from ml_intern.config import Settings

DEFAULT_API_URL = "https://api.github.com"
TIMEOUT_S = 20.0
DEFAULT_READ_LINES = 300
MAX_READ_LINES = 2000
MAX_READ_CHARS = 100_000
MAX_LINE_CHARS = 4000
MAX_TREE_FILES_SCANNED = 100_000
# Directory names that usually hold runnable examples (matched fuzzily against each path component).
EXAMPLE_DIRS = (
    "examples",
    "example",
    "scripts",
    "script",
    "notebooks",
    "notebook",
    "tutorials",
    "tutorial",
    "demos",
    "demo",
    "samples",
    "sample",
    "cookbook",
    "cookbooks",
    "recipes",
    "recipe",
    "quickstart",
    "getting_started",
    "training",
    "train",
    "finetuning",
    "fine_tuning",
    "research_projects",
    "benchmarks",
    "use_cases",
    "apps",
    "snippets",
    "guides",
    "colab",
    "playground",
)
_SKIP_SUFFIXES = (
    ".png",
    ".jpg",
    ".jpeg",
    ".gif",
    ".svg",
    ".ico",
    ".pdf",
    ".zip",
    ".bin",
    ".pt",
    ".safetensors",
)


def api_url() -> str:
    """Return the GitHub API base URL (`GITHUB_API_URL` or api.github.com) without a trailing slash."""
    return (os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def _token() -> str | None:
    return os.environ.get("GITHUB_TOKEN") or None


def _client() -> httpx.AsyncClient:
    import httpx

    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "ml-intern",
    }
    token = _token()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(base_url=api_url(), headers=headers, timeout=TIMEOUT_S, follow_redirects=True)


async def _get(client: httpx.AsyncClient, path: str, what: str, **params: Any) -> Any:
    """GET a JSON document; every failure becomes a ToolError written for the model."""
    import httpx

    try:
        response = await client.get(path, params={k: v for k, v in params.items() if v is not None})
    except httpx.TimeoutException:
        raise ToolError(f"GitHub did not answer within {TIMEOUT_S:g} s ({what}).") from None
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot reach GitHub at {api_url()} ({type(exc).__name__}: {exc}).") from None
    if response.status_code >= 400:
        raise ToolError(_error_message(response, what))
    try:
        return response.json()
    except ValueError:
        raise ToolError(f"GitHub sent a response that is not JSON ({what}).") from None


def _error_message(response: httpx.Response, what: str) -> str:
    status = response.status_code
    headers = response.headers
    try:
        server_message = str(response.json().get("message", ""))
    except (ValueError, AttributeError):
        server_message = ""
    has_token = _token() is not None
    if status in (403, 429) and (
        headers.get("x-ratelimit-remaining") == "0" or "rate limit" in server_message.lower()
    ):
        reset = headers.get("x-ratelimit-reset")
        when = ""
        if reset and reset.isdigit():
            reset_at = datetime.fromtimestamp(int(reset), UTC)
            minutes = max(0, round((int(reset) - time.time()) / 60))
            when = f" It resets at {reset_at:%H:%M} UTC (in about {minutes} min)."
        elif headers.get("retry-after", "").isdigit():
            when = f" Retry after {headers['retry-after']} s."
        hint = "" if has_token else " Set GITHUB_TOKEN to get 5,000 requests per hour instead of 60."
        return f"GitHub rate limit reached ({what}).{when}{hint}"
    if status == 401:
        if has_token:
            return (
                "GitHub rejected GITHUB_TOKEN (bad or expired credentials). Create a new token and export it."
            )
        return f"GitHub requires authentication for {what}. Set GITHUB_TOKEN (a read-only token is enough)."
    if status == 403 and not has_token:
        return f"GitHub refused {what} without a token. Set GITHUB_TOKEN and try again. ({server_message})"
    if status == 404:
        hint = "" if has_token else " If it is private, set GITHUB_TOKEN."
        return f"not found on GitHub: {what}.{hint}"
    detail = f": {server_message}" if server_message else ""
    return f"GitHub answered HTTP {status} for {what}{detail}."


def _split_repo(repo: str, org: str | None = None) -> tuple[str, str]:
    repo = repo.strip().removeprefix("https://github.com/").strip("/")
    repo = repo.removesuffix(".git")
    if "/" in repo:
        owner, _, name = repo.partition("/")
        name = name.split("/")[0]
    else:
        owner, name = (org or "").strip(), repo
    if not owner or not name or not re.fullmatch(r"[A-Za-z0-9_.-]+", owner + name):
        raise ToolError(
            f"'{repo}' is not a GitHub repository; use 'owner/name' (e.g. huggingface/transformers)."
        )
    return owner, name


# Fuzzy scoring with difflib, in the spirit of token_set_ratio and partial_ratio (0-100).


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio() if a and b else 0.0


def _partial_ratio(a: str, b: str) -> float:
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    if not short:
        return 0.0
    if short in long:
        return 1.0
    best = 0.0
    for block in difflib.SequenceMatcher(None, short, long).get_matching_blocks():
        start = max(0, block.b - block.a)
        best = max(best, _ratio(short, long[start : start + len(short)]))
    return best


def _token_set_ratio(a: str, b: str) -> float:
    ta, tb = set(_tokens(a)), set(_tokens(b))
    if not ta or not tb:
        return 0.0
    common = " ".join(sorted(ta & tb))
    rest_a = " ".join(sorted(ta - tb))
    rest_b = " ".join(sorted(tb - ta))
    combined_a = f"{common} {rest_a}".strip()
    combined_b = f"{common} {rest_b}".strip()
    scores = [_ratio(combined_a, combined_b)]
    if common:
        scores += [_ratio(common, combined_a), _ratio(common, combined_b)]
    return max(scores)


def match_score(keyword: str, path: str) -> int:
    """How well a keyword matches a file path (0-100): the best of a token-set and a partial match."""
    keyword, lowered = keyword.lower().strip(), path.lower()
    name = lowered.rsplit("/", 1)[-1]
    return round(100 * max(_token_set_ratio(keyword, lowered), _partial_ratio(keyword, name)))


def _stem(path: str) -> str:
    return path.lower().rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _is_example_path(path: str) -> bool:
    for part in path.lower().split("/")[:-1]:
        if part in EXAMPLE_DIRS or any(_ratio(part, d) >= 0.85 for d in EXAMPLE_DIRS):
            return True
    return False


async def find_examples(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Find example files in a GitHub repository, optionally ranked by a keyword."""
    owner, name = _split_repo(str(arguments["repo"]), arguments.get("org") or "huggingface")
    keyword = str(arguments.get("keyword") or "").strip()
    max_results = max(1, min(int(arguments.get("max_results") or 20), 100))
    min_score = max(
        0, min(int(arguments.get("min_score") if arguments.get("min_score") is not None else 60), 100)
    )
    async with _client() as client:
        try:
            info = await _get(client, f"/repos/{owner}/{name}", f"repository {owner}/{name}")
        except ToolError as exc:
            if "not found" not in str(exc):
                raise
            suggestions = await _similar_repos(client, owner, name)
            hint = f" Similar repositories: {', '.join(suggestions)}." if suggestions else ""
            raise ToolError(f"{exc}{hint}") from None
        branch = info.get("default_branch") or "main"
        tree = await _get(
            client,
            f"/repos/{owner}/{name}/git/trees/{quote(branch, safe='')}",
            "repository tree",
            recursive=1,
        )
    files = [
        item["path"]
        for item in (tree.get("tree") or [])[:MAX_TREE_FILES_SCANNED]
        if item.get("type") == "blob" and not item["path"].lower().endswith(_SKIP_SUFFIXES)
    ]
    examples = [path for path in files if _is_example_path(path)]
    if keyword:
        pool = examples or files
        scored = [(match_score(keyword, p), p) for p in pool]
        # Ties go to the file whose name is closest to the keyword (sft.py before sft_tutorial.ipynb).
        scored.sort(key=lambda sp: (-sp[0], -_ratio(keyword.lower(), _stem(sp[1])), sp[1]))
        hits = [(score, path) for score, path in scored if score >= min_score]
    else:
        hits = [(0, path) for path in sorted(examples)]
    base = f"https://github.com/{owner}/{name}/blob/{branch}"
    if not hits:
        what = f" matching '{keyword}' (score ≥ {min_score})" if keyword else ""
        scope = "example directories" if examples else "any directory"
        return ToolResult(
            f"No files{what} in {scope} of {owner}/{name} ({len(files)} files scanned). "
            "Try another keyword or a lower min_score.",
            data={"repo": f"{owner}/{name}", "results": []},
        )
    shown = hits[:max_results]
    lines = [
        f"{len(hits)} example file(s) in {owner}/{name}@{branch}"
        + (f" for '{keyword}'" if keyword else "")
        + ":"
    ]
    for i, (score, path) in enumerate(shown, 1):
        suffix = f" (score {score})" if keyword else ""
        lines.append(f"{i}. {path}{suffix} — {base}/{quote(path)}")
    if len(hits) > len(shown):
        lines.append(f"... {len(hits) - len(shown)} more; raise max_results or refine the keyword.")
    if tree.get("truncated"):
        lines.append(
            "Note: GitHub truncated the file tree of this large repository; some files were not scanned."
        )
    lines.append(f"Read one with github_read_file(repo='{owner}/{name}', path=...).")
    return ToolResult("\n".join(lines), data={"repo": f"{owner}/{name}", "results": [p for _, p in shown]})


async def _similar_repos(client: httpx.AsyncClient, owner: str, name: str) -> list[str]:
    for kind in ("orgs", "users"):
        try:
            repos = await _get(client, f"/{kind}/{owner}/repos", f"repositories of {owner}", per_page=100)
        except ToolError:
            continue
        names = [r.get("name", "") for r in repos if isinstance(r, dict)]
        close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=5, cutoff=0.5)
        by_lower = {n.lower(): n for n in names}
        return [f"{owner}/{by_lower[c]}" for c in close]
    return []


async def list_repos(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """List an organization's or user's repositories, sorted by stars, forks, update or creation."""
    owner = str(arguments["owner"]).strip().strip("/")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", owner):
        raise ToolError(f"'{owner}' is not a GitHub user or organization name.")
    owner_type = arguments.get("owner_type") or "org"
    sort = arguments.get("sort") or "stars"
    order = arguments.get("order") or "desc"
    limit = max(1, min(int(arguments.get("limit") or 30), 100))
    async with _client() as client:
        if sort in ("stars", "forks"):
            qualifier = "org" if owner_type == "org" else "user"
            found = await _get(
                client,
                "/search/repositories",
                f"repositories of {owner}",
                q=f"{qualifier}:{owner}",
                sort=sort,
                order=order,
                per_page=limit,
            )
            repos, total = found.get("items") or [], found.get("total_count")
        else:
            kind = "orgs" if owner_type == "org" else "users"
            repos = await _get(
                client,
                f"/{kind}/{owner}/repos",
                f"repositories of {owner_type} {owner}",
                sort=sort,
                direction=order,
                per_page=limit,
                type="all" if kind == "orgs" else "owner",
            )
            total = None
    if not repos:
        return ToolResult(f"{owner} has no public repositories.", data={"repos": []})
    header = (
        f"{len(repos)} repositories of {owner}"
        + (f" (of {total})" if total else "")
        + f", by {sort} {order}:"
    )
    lines = [header]
    for i, repo in enumerate(repos[:limit], 1):
        updated = str(repo.get("pushed_at") or repo.get("updated_at") or "")[:10]
        facts = [f"★{repo.get('stargazers_count', 0)}", f"forks {repo.get('forks_count', 0)}"]
        if repo.get("language"):
            facts.append(str(repo["language"]))
        if updated:
            facts.append(f"updated {updated}")
        if repo.get("archived"):
            facts.append("archived")
        description = (repo.get("description") or "").strip()
        desc = f" — {description[:160]}" if description else ""
        lines.append(f"{i}. {repo.get('full_name')} ({', '.join(facts)}){desc}")
    return ToolResult("\n".join(lines), data={"repos": [r.get("full_name") for r in repos[:limit]]})


def notebook_to_markdown(raw: str) -> str:
    """Render a Jupyter notebook as markdown: markdown cells as is, code cells fenced, outputs dropped."""
    try:
        notebook = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ToolError(f"the notebook is not valid JSON ({exc.msg}).") from None
    language = (
        notebook.get("metadata", {}).get("kernelspec", {}).get("language")
        or notebook.get("metadata", {}).get("language_info", {}).get("name")
        or "python"
    )
    blocks: list[str] = []
    for cell in notebook.get("cells") or []:
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        text = text.rstrip()
        if not text:
            continue
        kind = cell.get("cell_type")
        if kind == "code":
            blocks.append(f"```{language}\n{text}\n```")
        else:
            blocks.append(text)
    return "\n\n".join(blocks) + "\n"


async def read_file(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Read a file from a GitHub repository, with line numbers and a line window."""
    owner, name = _split_repo(str(arguments["repo"]))
    path = str(arguments["path"]).strip().lstrip("/")
    ref = arguments.get("ref") or None
    if ref == "HEAD":
        ref = None
    what = f"{owner}/{name}/{path}" + (f"@{ref}" if ref else "")
    async with _client() as client:
        doc = await _get(client, f"/repos/{owner}/{name}/contents/{quote(path)}", what, ref=ref)
        if isinstance(doc, list):
            entries = sorted(f"{e.get('path')}{'/' if e.get('type') == 'dir' else ''}" for e in doc)
            listing = "\n".join(entries[:500])
            return ToolResult(f"{what} is a directory with {len(doc)} entries:\n{listing}")
        if doc.get("type") not in (None, "file"):
            raise ToolError(f"{what} is a {doc.get('type')}, not a file.")
        content = await _file_bytes(client, doc, what)
    if b"\0" in content[:8000]:
        return ToolResult(f"{what} is a binary file ({len(content)} bytes); not shown.")
    text = content.decode("utf-8", errors="replace")
    if path.lower().endswith(".ipynb"):
        text = notebook_to_markdown(text)
    return ToolResult(_window(text, what, arguments.get("line_start"), arguments.get("line_end")))


async def _file_bytes(client: httpx.AsyncClient, doc: dict[str, Any], what: str) -> bytes:
    import httpx

    if doc.get("encoding") == "base64" and doc.get("content"):
        return base64.b64decode(doc["content"])
    download_url = doc.get("download_url")
    if not download_url:
        if int(doc.get("size") or 0) == 0:
            return b""
        raise ToolError(f"GitHub gave no content for {what}.")
    try:
        if _same_trust(download_url):
            response = await client.get(download_url, headers={"Accept": "application/vnd.github.raw"})
        else:  # never send the token to a host that is not GitHub's
            async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=True) as anonymous:
                response = await anonymous.get(download_url)
    except httpx.HTTPError as exc:
        raise ToolError(f"cannot download {what} ({type(exc).__name__}: {exc}).") from None
    if response.status_code >= 400:
        raise ToolError(_error_message(response, what))
    return response.content


def _same_trust(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    api_host = (urlparse(api_url()).hostname or "").lower()
    return (
        host == api_host
        or host in ("github.com", "raw.githubusercontent.com")
        or host.endswith(".githubusercontent.com")
    )


def _window(text: str, what: str, line_start: Any, line_end: Any) -> str:
    lines = text.splitlines()
    total = len(lines)
    start = max(1, int(line_start or 1))
    explicit_end = line_end is not None
    end = int(line_end) if explicit_end else start + DEFAULT_READ_LINES - 1
    end = min(end, total, start + MAX_READ_LINES - 1)
    if total == 0:
        return f"{what} is empty."
    if start > total:
        raise ToolError(f"line_start {start} is past the end of {what} ({total} lines).")
    body: list[str] = []
    size = 0
    for number in range(start, end + 1):
        content = lines[number - 1]
        if len(content) > MAX_LINE_CHARS:
            content = content[:MAX_LINE_CHARS] + f"... [{len(content) - MAX_LINE_CHARS} more chars]"
        line = f"{number:>6}\t{content}"
        size += len(line) + 1
        if size > MAX_READ_CHARS:
            end = number - 1
            break
        body.append(line)
    header = f"{what} (lines {start}-{end} of {total})"
    note = ""
    if end < total:
        note = f"\n[truncated: {total - end} more lines; call again with line_start={end + 1} to continue]"
    return header + "\n" + "\n".join(body) + note


_FIND_EXAMPLES = ToolSpec(
    name="github_find_examples",
    description=(
        "Find example scripts/notebooks in a GitHub repo, ranked by fuzzy keyword match. "
        "Use before writing training code to copy current patterns."
    ),
    parameters={
        "type": "object",
        "properties": {
            "repo": {"type": "string", "description": "Repo name (e.g. trl) or owner/name"},
            "keyword": {"type": "string", "description": "e.g. 'sft', 'grpo', 'lora'"},
            "org": {"type": "string", "description": "Owner when repo has none (default huggingface)"},
            "max_results": {"type": "integer", "description": "Default 20"},
            "min_score": {"type": "integer", "description": "Match threshold 0-100 (default 60)"},
        },
        "required": ["repo"],
    },
    handler=find_examples,
    risk=Risk.READ,
    read_only=True,
    undoable=False,
)

_LIST_REPOS = ToolSpec(
    name="github_list_repos",
    description="List a GitHub org's or user's repositories with stars, language and last update.",
    parameters={
        "type": "object",
        "properties": {
            "owner": {"type": "string"},
            "owner_type": {"type": "string", "enum": ["org", "user"], "description": "Default org"},
            "sort": {
                "type": "string",
                "enum": ["stars", "forks", "updated", "created"],
                "description": "Default stars",
            },
            "order": {"type": "string", "enum": ["asc", "desc"], "description": "Default desc"},
            "limit": {"type": "integer", "description": "Default 30, max 100"},
        },
        "required": ["owner"],
    },
    handler=list_repos,
    risk=Risk.READ,
    read_only=True,
    undoable=False,
)

_READ_FILE = ToolSpec(
    name="github_read_file",
    description=(
        "Read a file from a GitHub repo with line numbers (first 300 lines unless a range is given). "
        "Notebooks are shown as markdown without outputs."
    ),
    parameters={
        "type": "object",
        "properties": {
            "repo": {"type": "string", "description": "owner/name"},
            "path": {"type": "string"},
            "ref": {"type": "string", "description": "Branch, tag or commit (default branch if omitted)"},
            "line_start": {"type": "integer", "description": "1-based"},
            "line_end": {"type": "integer", "description": "Inclusive"},
        },
        "required": ["repo", "path"],
    },
    handler=read_file,
    risk=Risk.READ,
    read_only=True,
    undoable=False,
)


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """The GitHub tools."""
    return [_FIND_EXAMPLES, _LIST_REPOS, _READ_FILE]
