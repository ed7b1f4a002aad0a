"""A loopback fake of the GitHub REST API for the github_* tools (point `GITHUB_API_URL` at `fake.url`).

Serves repos, recursive trees, contents (base64, or a `download_url` for large files), org/user repo lists,
repository search, private repos (404 without a token), a rate-limited mode and a token-required mode.
Every request is recorded with its headers.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from tests.harness.loopback import LoopbackServer

TOKEN = "ghp_fake_token_123"
LARGE_FILE_BYTES = 1_000_000  # bigger files come through download_url, as on GitHub


@dataclass
class FakeRepo:
    """One repository and its files on the default branch."""

    full_name: str
    files: dict[str, bytes] = field(default_factory=dict)
    default_branch: str = "main"
    stars: int = 0
    forks: int = 0
    description: str = ""
    language: str | None = "Python"
    private: bool = False
    created_at: str = "2020-01-01T00:00:00Z"
    pushed_at: str = "2026-01-01T00:00:00Z"
    owner_type: str = "Organization"

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/")[1]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "full_name": self.full_name,
            "owner": {"login": self.owner, "type": self.owner_type},
            "private": self.private,
            "description": self.description,
            "default_branch": self.default_branch,
            "stargazers_count": self.stars,
            "forks_count": self.forks,
            "language": self.language,
            "created_at": self.created_at,
            "pushed_at": self.pushed_at,
            "updated_at": self.pushed_at,
            "html_url": f"https://github.com/{self.full_name}",
        }


@dataclass
class Request:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


class FakeGitHub(LoopbackServer):
    """Threaded HTTP server on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[Request] = []
        self.rate_limited_until: float | None = None
        self.require_token = False

    def add_repo(
        self, full_name: str, files: dict[str, str | bytes] | None = None, **kwargs: Any
    ) -> FakeRepo:
        """Add a repository with files (text is UTF-8 encoded)."""
        encoded = {p: c.encode() if isinstance(c, str) else c for p, c in (files or {}).items()}
        repo = FakeRepo(full_name, encoded, **kwargs)
        self.repos[full_name.lower()] = repo
        return repo

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                query = parse_qs(parsed.query)
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append(Request("GET", parsed.path, query, headers))
                authorized = headers.get("authorization") == f"Bearer {TOKEN}"
                if "authorization" in headers and not authorized:
                    return self._json(401, {"message": "Bad credentials"})
                if fake.rate_limited_until and time.time() < fake.rate_limited_until:
                    return self._json(
                        403,
                        {"message": "API rate limit exceeded for 127.0.0.1."},
                        {
                            "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": str(int(fake.rate_limited_until)),
                        },
                    )
                if fake.require_token and not authorized:
                    return self._json(401, {"message": "Requires authentication"})
                status, body, raw = fake.route(unquote(parsed.path), query, authorized)
                if raw is not None:
                    return self._send(status, raw, "application/octet-stream", {})
                return self._json(status, body)

            def _json(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
                self._send(status, json.dumps(body).encode(), "application/json", extra or {})

            def _send(self, status: int, payload: bytes, content_type: str, extra: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler

    def _visible(self, full_name: str, authorized: bool) -> FakeRepo | None:
        repo = self.repos.get(full_name.lower())
        if repo is None or (repo.private and not authorized):
            return None
        return repo

    def route(
        self, path: str, query: dict[str, list[str]], authorized: bool
    ) -> tuple[int, Any, bytes | None]:
        """Answer one GET: (status, JSON body, raw bytes or None)."""
        parts = [p for p in path.split("/") if p]
        not_found = (404, {"message": "Not Found"}, None)
        if parts[:1] == ["raw"] and len(parts) >= 5:
            repo = self._visible(f"{parts[1]}/{parts[2]}", authorized)
            file_path = "/".join(parts[4:])
            if repo is None or file_path not in repo.files:
                return not_found
            return 200, None, repo.files[file_path]
        if parts[:1] == ["repos"] and len(parts) >= 3:
            repo = self._visible(f"{parts[1]}/{parts[2]}", authorized)
            if repo is None:
                return not_found
            rest = parts[3:]
            if not rest:
                return 200, repo.as_json(), None
            if rest[:2] == ["git", "trees"]:
                return 200, self._tree(repo), None
            if rest[:1] == ["contents"]:
                return self._contents(repo, "/".join(rest[1:]))
            return not_found
        if len(parts) == 3 and parts[0] in ("orgs", "users") and parts[2] == "repos":
            owner = parts[1].lower()
            wanted = "Organization" if parts[0] == "orgs" else "User"
            repos = [r for r in self.repos.values() if r.owner.lower() == owner and not r.private]
            if not any(r.owner_type == wanted for r in repos):
                return not_found
            sort = query.get("sort", ["full_name"])[0]
            key = {"created": "created_at", "updated": "pushed_at", "pushed": "pushed_at"}.get(
                sort, "full_name"
            )
            descending = query.get("direction", ["asc" if key == "full_name" else "desc"])[0] == "desc"
            repos.sort(key=lambda r: getattr(r, key), reverse=descending)
            per_page = int(query.get("per_page", ["30"])[0])
            return 200, [r.as_json() for r in repos[:per_page]], None
        if parts == ["search", "repositories"]:
            q = query.get("q", [""])[0]
            qualifier, _, owner = q.partition(":")
            wanted = "Organization" if qualifier == "org" else "User"
            repos = [r for r in self.repos.values() if r.owner.lower() == owner.lower() and not r.private]
            if repos and all(r.owner_type != wanted for r in repos):
                return 422, {"message": "Validation Failed"}, None
            key = {"stars": "stars", "forks": "forks"}.get(query.get("sort", ["stars"])[0], "stars")
            repos.sort(key=lambda r: getattr(r, key), reverse=query.get("order", ["desc"])[0] == "desc")
            per_page = int(query.get("per_page", ["30"])[0])
            items = [r.as_json() for r in repos[:per_page]]
            return 200, {"total_count": len(repos), "incomplete_results": False, "items": items}, None
        return not_found

    def _tree(self, repo: FakeRepo) -> dict[str, Any]:
        entries: dict[str, dict[str, Any]] = {}
        for file_path, content in repo.files.items():
            segments = file_path.split("/")
            for i in range(1, len(segments)):
                directory = "/".join(segments[:i])
                entries.setdefault(directory, {"path": directory, "type": "tree"})
            entries[file_path] = {"path": file_path, "type": "blob", "size": len(content)}
        return {"sha": "abc", "tree": sorted(entries.values(), key=lambda e: e["path"]), "truncated": False}

    def _contents(self, repo: FakeRepo, file_path: str) -> tuple[int, Any, bytes | None]:
        if file_path in repo.files:
            content = repo.files[file_path]
            doc: dict[str, Any] = {
                "type": "file",
                "path": file_path,
                "size": len(content),
                "download_url": f"{self.url}/raw/{repo.full_name}/{repo.default_branch}/{file_path}",
            }
            if len(content) < LARGE_FILE_BYTES:
                doc.update(encoding="base64", content=base64.encodebytes(content).decode())
            else:
                doc.update(encoding="none", content="")
            return 200, doc, None
        prefix = file_path.rstrip("/") + "/" if file_path else ""
        children = {p[len(prefix) :].split("/")[0] for p in repo.files if p.startswith(prefix)}
        if not children:
            return 404, {"message": "Not Found"}, None
        listing = []
        for child in sorted(children):
            full = prefix + child
            listing.append({"path": full, "name": child, "type": "file" if full in repo.files else "dir"})
        return 200, listing, None
