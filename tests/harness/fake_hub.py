"""A loopback fake of the Hugging Face Hub (and a plain 'other host') for offline tests.

`FakeHub` speaks enough of the Hub HTTP API for `HfApi(endpoint=hub.url)` and ml-intern's own HTTP calls:
whoami, repo info/tree/resolve/commit, refs, discussions/PRs, repo create/settings/delete, papers, the dataset
viewer, docs pages, Jobs (stages that change over time, SSE logs streamed as time passes, hardware, cancel),
scheduled jobs, Space duplication/runtime and a tiny sandbox API. Every request is recorded (method, path,
headers) and failures can be injected per route.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from tests.harness.loopback import LoopbackServer

TOKEN = "hf_fake_token_123"
USER = "tester"
ORG = "acme-org"
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _sha(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha1(raw).hexdigest()


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@dataclass
class Failure:
    """An injected failure: matching requests get `status` (at most `times` times; None = forever)."""

    pattern: re.Pattern[str]
    status: int
    method: str | None = None
    times: int | None = None
    body: dict[str, Any] | None = None


@dataclass
class FakeRepo:
    repo_id: str
    repo_type: str = "model"
    private: bool = False
    gated: str | bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    discussions: list[dict[str, Any]] = field(default_factory=list)
    sdk: str | None = None
    runtime_ready_at: float = 0.0
    hardware: str = "cpu-basic"
    secrets: dict[str, str] = field(default_factory=dict)

    def head(self) -> str:
        return self.branches.setdefault("main", _sha(json.dumps(sorted(self.files))))


@dataclass
class JobPlan:
    """How the next created job behaves: seconds scheduling, seconds running, timed log lines, final stage."""

    scheduling_s: float = 0.2
    running_s: float = 1.0
    logs: list[str] = field(
        default_factory=lambda: [
            "Installing dependencies...",
            "step 1 | loss 2.50",
            "{'loss': 1.8, 'epoch': 0.5}",
            "step 3 | loss 1.20",
            "loss=0.95 accuracy=0.81",
            "Training complete",
        ]
    )
    final: str = "COMPLETED"
    message: str | None = None


@dataclass
class FakeJob:
    job_id: str
    namespace: str
    spec: dict[str, Any]
    plan: JobPlan
    created: float
    canceled_at: float | None = None

    def stage(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self.canceled_at is not None:
            return "CANCELED"
        elapsed = now - self.created
        if elapsed < self.plan.scheduling_s:
            return "SCHEDULING"
        if elapsed < self.plan.scheduling_s + self.plan.running_s:
            return "RUNNING"
        return self.plan.final

    def visible_logs(self, now: float | None = None) -> list[tuple[float, str]]:
        """Log lines (with timestamps) emitted so far; spread evenly over the running window."""
        now = time.time() if now is None else now
        start = self.created + self.plan.scheduling_s
        count = len(self.plan.logs)
        step = self.plan.running_s / max(count, 1)
        end = self.canceled_at if self.canceled_at is not None else now
        lines = []
        for index, line in enumerate(self.plan.logs):
            at = start + index * step
            if at <= end:
                lines.append((at, line))
        return lines

    def to_json(self, endpoint: str) -> dict[str, Any]:
        stage = self.stage()
        started = self.created + self.plan.scheduling_s
        finished = None
        if stage in TERMINAL:
            finished = self.canceled_at or (started + self.plan.running_s)
        return {
            "id": self.job_id,
            "createdAt": _iso(self.created),
            "startedAt": _iso(started) if stage != "SCHEDULING" else None,
            "finishedAt": _iso(finished) if finished else None,
            "dockerImage": self.spec.get("dockerImage"),
            "spaceId": self.spec.get("spaceId"),
            "command": self.spec.get("command"),
            "arguments": self.spec.get("arguments", []),
            "environment": self.spec.get("environment", {}),
            "secrets": {k: "***" for k in (self.spec.get("secrets") or {})},
            "flavor": self.spec.get("flavor", "cpu-basic"),
            "labels": self.spec.get("labels"),
            "status": {"stage": stage, "message": self.plan.message if stage == "ERROR" else None},
            "owner": {"id": "owner-id", "name": self.namespace, "type": "user"},
        }


HARDWARE = [
    ("cpu-basic", "CPU Basic", None, 0.05),
    ("cpu-upgrade", "CPU Upgrade", None, 0.25),
    ("t4-small", "Nvidia T4 - small", "T4", 0.40),
    ("a10g-small", "Nvidia A10G - small", "A10G", 1.00),
    ("a10g-large", "Nvidia A10G - large", "A10G", 1.50),
    ("a100-large", "Nvidia A100 - large", "A100", 2.50),
    ("h200", "Nvidia H200", "H200", 5.00),
]

CHAT_ROWS = [
    {
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4. " + "Long explanation. " * 30},
        ],
        "source": "synthetic",
    },
    {
        "messages": [
            {"role": "user", "content": "Say hi"},
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": "Again"},
            {"role": "assistant", "content": "Hi again!"},
        ],
        "source": "forum",
    },
]

DOCS: dict[str, dict[str, str]] = {
    "trl": {
        "sft_trainer": "# SFT Trainer\n\nThe SFTTrainer fine-tunes language models with supervised learning. "
        "Use `SFTConfig` to set `max_length` and packing.\n\n## Quickstart\n\n```python\nfrom trl import SFTTrainer\n```\n",
        "dpo_trainer": "# DPO Trainer\n\nDirect Preference Optimization trains from preference pairs "
        "(chosen/rejected). Configure with `DPOConfig` and a `beta`.\n",
        "grpo_trainer": "# GRPO Trainer\n\nGroup Relative Policy Optimization uses reward functions.\n",
    },
    "hub": {
        "repositories": "# Repositories\n\nModels, datasets and Spaces are git repositories on the Hub.\n",
        "jobs": "# Jobs\n\nRun compute jobs on Hugging Face infrastructure with GPUs. Use `hf jobs run`.\n",
    },
}


class FakeHub(LoopbackServer):
    """A loopback Hub; use as a context manager or call start()/stop()."""

    thread_name = "fake-hub"

    def __init__(self, *, token: str = TOKEN, user: str = USER, docs_llms_txt: bool = True) -> None:
        self.token = token
        self.user = user
        self.docs_llms_txt = docs_llms_txt
        self.requests: list[Recorded] = []
        self.failures: list[Failure] = []
        self.repos: dict[tuple[str, str], FakeRepo] = {}
        self.jobs: dict[str, FakeJob] = {}
        self.scheduled: dict[str, dict[str, Any]] = {}
        self.job_plan = JobPlan()
        self.space_boot_s = 0.3
        self.sandbox_files: dict[str, dict[str, str]] = {}
        self.sandbox_commands: list[tuple[str, str]] = []
        self.extra_routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = []
        # (method, path regex, seconds): slow down matching requests before they are handled.
        self.delays: list[tuple[str, str, float]] = []
        self._lock = threading.RLock()
        self._seed()

    # ------------------------------------------------------------------ lifecycle

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(_Handler):
            fake = hub

        return Handler

    # ------------------------------------------------------------------ test helpers

    def fail(
        self,
        path_regex: str,
        status: int,
        *,
        method: str | None = None,
        times: int | None = None,
        body: Any = None,
    ) -> None:
        """Make requests whose path matches `path_regex` fail with `status`."""
        self.failures.append(Failure(re.compile(path_regex), status, method, times, body))

    def requests_to(self, path_regex: str) -> list[Recorded]:
        """Recorded requests whose path matches."""
        pattern = re.compile(path_regex)
        return [r for r in self.requests if pattern.search(r.path)]

    def add_repo(self, repo_id: str, repo_type: str = "model", **kwargs: Any) -> FakeRepo:
        repo = FakeRepo(repo_id, repo_type, **kwargs)
        repo.head()
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def _seed(self) -> None:
        self.add_repo(
            f"{self.user}/tiny-model",
            files={
                "README.md": b"---\nlicense: mit\n---\n# Tiny model\nA tiny test model.\n",
                "config.json": json.dumps({"model_type": "llama", "hidden_size": 64}).encode(),
                "model.safetensors": bytes(range(256)) * 8,
                "big.txt": ("x" * 99 + "\n").encode() * 700,
            },
        )
        self.add_repo("acme/chat-data", "dataset", files={"README.md": b"# chat data\n"})
        self.add_repo("acme/gated-chat", "dataset", gated="manual", files={"README.md": b"# gated\n"})
        self.add_repo(
            "burtenshaw/sandbox", "space", sdk="docker", files={"Dockerfile": b"FROM python:3.12\n"}
        )

    # ------------------------------------------------------------------ request plumbing

    def _authorized(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def _injected(self, method: str, path: str) -> Failure | None:
        with self._lock:
            for failure in self.failures:
                if failure.method and failure.method != method:
                    continue
                if failure.times is not None and failure.times <= 0:
                    continue
                if failure.pattern.search(path):
                    if failure.times is not None:
                        failure.times -= 1
                    return failure
        return None


class _Response(Exception):
    """Raised inside a handler to send a response."""

    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def _error(status: int, message: str) -> _Response:
    return _Response(status, {"error": message}, {"X-Error-Message": message})


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # silence
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -------------------------------------------------------------- plumbing

    def _dispatch(self, method: str) -> None:
        parsed = urlparse(self.path)
        path = unquote(parsed.path)
        query = parse_qs(parsed.query)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        headers = {k.lower(): v for k, v in self.headers.items()}
        hub = self.fake
        with hub._lock:
            hub.requests.append(Recorded(method, path, query, headers, body))
        for delay_method, delay_regex, seconds in hub.delays:
            if delay_method == method and re.search(delay_regex, path):
                time.sleep(seconds)
        try:
            failure = hub._injected(method, path)
            if failure is not None:
                raise _Response(failure.status, failure.body or {"error": f"injected {failure.status}"})
            router = _Router(hub, self, method, path, query, headers, body)
            router.route()
            raise _Response(404, {"error": f"no fake route for {method} {path}"})
        except _Response as response:
            if response.status == -1:  # streamed already
                return
            self._send(response.status, response.body, response.headers, head=method == "HEAD")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _read_chunked(self) -> bytes:
        data = b""
        while True:
            size_line = self.rfile.readline().strip()
            size = int(size_line or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return data
            data += self.rfile.read(size)
            self.rfile.readline()

    def _send(self, status: int, body: Any, headers: dict[str, str], head: bool = False) -> None:
        if isinstance(body, (bytes, bytearray)):
            payload = bytes(body)
            content_type = headers.pop("Content-Type", "application/octet-stream")
        elif isinstance(body, str):
            payload = body.encode()
            content_type = headers.pop("Content-Type", "text/plain; charset=utf-8")
        elif body is None:
            payload = b""
            content_type = "application/json"
        else:
            payload = json.dumps(body).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(payload)

    def stream_sse(self, events: Callable[[], Any]) -> None:
        """Send an SSE response produced by a generator of `data:` payloads; closes the connection at the end."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in events():
                self.wfile.write(chunk.encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        raise _Response(-1)


class _Router:
    """Route one request; every route raises _Response."""

    def __init__(
        self,
        hub: FakeHub,
        handler: _Handler,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        self.hub = hub
        self.handler = handler
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json_body(self) -> Any:
        return json.loads(self.body or b"{}")

    @property
    def authed(self) -> bool:
        return self.hub._authorized(self.headers)

    def need_auth(self) -> None:
        if not self.authed:
            raise _error(401, "Invalid credentials in Authorization header")

    def match(self, method: str | tuple[str, ...], regex: str) -> re.Match[str] | None:
        methods = (method,) if isinstance(method, str) else method
        if self.method not in methods:
            return None
        return re.fullmatch(regex, self.path)

    def repo(self, repo_type: str, repo_id: str, *, write: bool = False) -> FakeRepo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self.authed):
            raise _Response(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if repo.gated and not self.authed:
            raise _Response(401, {"error": "Access to this resource is gated"}, {"X-Error-Code": "GatedRepo"})
        if write:
            self.need_auth()
        return repo

    # -------------------------------------------------------------- routes

    def route(self) -> None:
        for method, pattern, fn in self.hub.extra_routes:
            if self.method == method and pattern.fullmatch(self.path):
                raise _Response(*fn(self))
        if self.path.startswith("/api/jobs") or self.path.startswith("/api/scheduled-jobs"):
            self.jobs_routes()
        if self.path.startswith("/_sandbox/"):
            self.sandbox_routes()
        if self.path.startswith("/docs"):
            self.docs_routes()
        if self.path.startswith("/api/papers") or self.path == "/api/daily_papers":
            self.paper_routes()
        if self.path in ("/is-valid", "/splits", "/parquet", "/info", "/first-rows"):
            self.viewer_routes()
        if self.match("POST", r"/api/validate-yaml"):
            # huggingface_hub validates README front matter before committing a repo card.
            raise _Response(200, {"errors": [], "warnings": []})
        if self.match("GET", r"/api/whoami-v2"):
            self.need_auth()
            raise _Response(
                200, {"type": "user", "name": self.hub.user, "orgs": [{"name": ORG, "type": "org"}]}
            )
        if self.match("GET", r"/api/(models|datasets|collections)") and (
            self.q("filter") or self.q("paper") or self.q("search") is not None
        ):
            self.listing_routes()
        self.repo_routes()

    # ---- repos

    def repo_routes(self) -> None:
        hub = self.hub
        if m := self.match("POST", r"/api/repos/create"):
            self.need_auth()
            data = self.json_body()
            repo_type = data.get("type") or "model"
            repo_id = f"{data.get('organization') or hub.user}/{data['name']}"
            if (repo_type, repo_id) in hub.repos:
                raise _error(409, "You already created this repo")
            private = (
                data.get("visibility") == "private" if "visibility" in data else bool(data.get("private"))
            )
            hub.add_repo(repo_id, repo_type, private=private, sdk=data.get("sdk"))
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            raise _Response(200, {"url": f"{hub.url}/{prefix}{repo_id}", "name": repo_id})
        if self.match("DELETE", r"/api/repos/delete"):
            self.need_auth()
            data = self.json_body()
            repo_id = f"{data.get('organization') or hub.user}/{data['name']}"
            if hub.repos.pop((data.get("type") or "model", repo_id), None) is None:
                raise _error(404, "Repository not found")
            raise _Response(200, {})
        if m := self.match(("POST",), r"/api/(model|dataset|space)s/([^/]+/[^/]+)/duplicate"):
            self.need_auth()
            source = self.repo(m.group(1), m.group(2))
            data = self.json_body()
            target = data["repository"]
            if (m.group(1), target) in hub.repos:
                raise _error(409, "Repo already exists")
            new = hub.add_repo(
                target,
                m.group(1),
                private=data.get("visibility", "private") == "private" or bool(data.get("private")),
                files=dict(source.files),
                sdk=source.sdk,
            )
            new.hardware = data.get("hardware") or "cpu-basic"
            new.runtime_ready_at = time.time() + hub.space_boot_s
            new.secrets = {s["key"]: s["value"] for s in data.get("secrets") or []}
            prefix = "" if m.group(1) == "model" else f"{m.group(1)}s/"
            raise _Response(200, {"url": f"{hub.url}/{prefix}{target}"})
        if m := self.match("GET", r"/api/spaces/([^/]+/[^/]+)/runtime"):
            repo = self.repo("space", m.group(1))
            stage = "RUNNING" if time.time() >= repo.runtime_ready_at else "BUILDING"
            raise _Response(
                200,
                {
                    "stage": stage,
                    "hardware": {
                        "current": repo.hardware if stage == "RUNNING" else None,
                        "requested": repo.hardware,
                    },
                    "gcTimeout": 2700,
                    "domains": [{"domain": repo.repo_id.replace("/", "-") + ".hf.space", "stage": "READY"}],
                },
            )
        if m := self.match("PUT", r"/api/(model|dataset|space)s/([^/]+/[^/]+)/settings"):
            repo = self.repo(m.group(1), m.group(2), write=True)
            data = self.json_body()
            if "private" in data:
                repo.private = bool(data["private"])
            if "gated" in data:
                repo.gated = data["gated"]
            if data.get("visibility"):
                repo.private = data["visibility"] == "private"
            raise _Response(200, {})
        if m := self.match("GET", r"/api/(model|dataset|space)s/([^/]+/[^/]+)(?:/revision/([^/]+))?"):
            repo = self.repo(m.group(1), m.group(2))
            raise _Response(
                200,
                {
                    "id": repo.repo_id,
                    "_id": "x" + repo.repo_id,
                    "sha": repo.head(),
                    "private": repo.private,
                    "gated": repo.gated,
                    "siblings": [{"rfilename": p} for p in sorted(repo.files)],
                    "tags": [],
                    "downloads": 7,
                    "likes": 3,
                    "lastModified": _iso(time.time()),
                },
            )
        if m := self.match("GET", r"/api/(model|dataset|space)s/([^/]+/[^/]+)/tree/([^/]+)(/.*)?"):
            repo = self.repo(m.group(1), m.group(2))
            self.check_revision(repo, m.group(3))
            prefix = (m.group(4) or "").strip("/")
            entries: dict[str, dict[str, Any]] = {}
            for path, content in sorted(repo.files.items()):
                if prefix and not path.startswith(prefix + "/"):
                    continue
                rest = path[len(prefix) + 1 :] if prefix else path
                parts = rest.split("/")
                recursive = self.q("recursive") in ("true", "True", "1")
                base = f"{prefix}/" if prefix else ""
                for depth in range(1, len(parts)):
                    if depth > 1 and not recursive:
                        break
                    folder = base + "/".join(parts[:depth])
                    entries.setdefault(
                        folder, {"type": "directory", "path": folder, "oid": _sha(folder), "size": 0}
                    )
                if len(parts) == 1 or recursive:
                    entries[path] = {"type": "file", "path": path, "oid": _sha(content), "size": len(content)}
            raise _Response(200, list(entries.values()))
        if m := self.match("GET", r"/api/(model|dataset|space)s/([^/]+/[^/]+)/refs"):
            repo = self.repo(m.group(1), m.group(2))
            repo.head()
            raise _Response(
                200,
                {
                    "branches": [
                        {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                        for n, c in repo.branches.items()
                    ],
                    "tags": [
                        {"name": n, "ref": f"refs/tags/{n}", "targetCommit": c} for n, c in repo.tags.items()
                    ],
                    "converts": [],
                    "pullRequests": [],
                },
            )
        if m := self.match(("POST", "DELETE"), r"/api/(model|dataset|space)s/([^/]+/[^/]+)/branch/(.+)"):
            repo = self.repo(m.group(1), m.group(2), write=True)
            name = m.group(3)
            if self.method == "POST":
                if name in repo.branches:
                    raise _error(409, f"Branch {name} already exists")
                start = (self.json_body() or {}).get("startingPoint") or "main"
                repo.branches[name] = repo.branches.get(start, repo.head())
            else:
                if repo.branches.pop(name, None) is None:
                    raise _error(404, f"Branch {name} not found")
            raise _Response(200, {})
        if m := self.match(("POST", "DELETE"), r"/api/(model|dataset|space)s/([^/]+/[^/]+)/tag/(.+)"):
            repo = self.repo(m.group(1), m.group(2), write=True)
            if self.method == "POST":
                data = self.json_body()
                if data["tag"] in repo.tags:
                    raise _error(409, "Tag already exists")
                repo.tags[data["tag"]] = repo.branches.get(m.group(3), repo.head())
            elif repo.tags.pop(m.group(3), None) is None:
                raise _error(404, "Tag not found")
            raise _Response(200, {})
        if m := self.match("POST", r"/api/(model|dataset|space)s/([^/]+/[^/]+)/preupload/(.+)"):
            self.repo(m.group(1), m.group(2), write=True)
            files = self.json_body().get("files", [])
            raise _Response(
                200,
                {
                    "files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                    ]
                },
            )
        if m := self.match("POST", r"/api/(model|dataset|space)s/([^/]+/[^/]+)/commit/(.+)"):
            self.commit(self.repo(m.group(1), m.group(2), write=True), unquote(m.group(3)))
        if m := self.match(
            ("GET", "POST"), r"/api/(model|dataset|space)s/([^/]+/[^/]+)/discussions(?:/(\d+))?(?:/(\w+))?"
        ):
            self.discussions(self.repo(m.group(1), m.group(2)), m.group(3), m.group(4))
        if m := self.match(("GET", "HEAD"), r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)"):
            repo_type = {"datasets": "dataset", "spaces": "space"}.get(m.group(1) or "", "model")
            repo = self.repo(repo_type, m.group(2))
            self.check_revision(repo, m.group(3))
            content = repo.files.get(m.group(4))
            if content is None:
                raise _Response(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
            raise _Response(
                200,
                content,
                {"X-Repo-Commit": repo.head(), "ETag": f'"{_sha(content)}"', "Accept-Ranges": "bytes"},
            )

    def check_revision(self, repo: FakeRepo, revision: str) -> None:
        revision = unquote(revision)
        if revision not in repo.branches and revision not in repo.tags and revision != repo.head():
            if not revision.startswith("refs/pr/"):
                raise _Response(
                    404, {"error": f"Invalid rev id: {revision}"}, {"X-Error-Code": "RevisionNotFound"}
                )

    def commit(self, repo: FakeRepo, revision: str) -> None:
        lines = [json.loads(line) for line in self.body.splitlines() if line.strip()]
        header = next((x["value"] for x in lines if x["key"] == "header"), {})
        changed: list[str] = []
        for item in lines:
            value = item["value"]
            if item["key"] == "file":
                repo.files[value["path"]] = base64.b64decode(value["content"])
                changed.append(value["path"])
            elif item["key"] == "deletedFile":
                if value["path"] not in repo.files:
                    raise _error(404, f"File {value['path']} not found")
                del repo.files[value["path"]]
                changed.append(value["path"])
            elif item["key"] == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                for path in [p for p in repo.files if p.startswith(folder)]:
                    del repo.files[path]
                    changed.append(path)
        oid = _sha(json.dumps([header, changed, time.time()]))
        repo.branches["main" if revision == "main" else revision] = oid
        result: dict[str, Any] = {
            "commitUrl": f"{self.hub.url}/{repo.repo_id}/commit/{oid}",
            "commitOid": oid,
        }
        if self.q("create_pr") in ("1", "true", "True"):
            num = len(repo.discussions) + 1
            repo.discussions.append(self.new_discussion(repo, num, header.get("summary", "upload"), "", True))
            result["pullRequestUrl"] = f"{self.hub.url}/{repo.repo_id}/discussions/{num}"
        raise _Response(200, result)

    def new_discussion(
        self, repo: FakeRepo, num: int, title: str, description: str, is_pr: bool
    ) -> dict[str, Any]:
        now = _iso(time.time())
        return {
            "num": num,
            "title": title,
            "status": "open",
            "isPullRequest": is_pr,
            "createdAt": now,
            "author": {"name": self.hub.user},
            "repo": {"name": repo.repo_id, "type": repo.repo_type},
            "events": [
                {
                    "id": uuid.uuid4().hex,
                    "type": "comment",
                    "createdAt": now,
                    "author": {"name": self.hub.user},
                    "data": {"edited": False, "hidden": False, "latest": {"raw": description}},
                }
            ],
            "changes": {"base": "refs/heads/main"},
            "filesWithConflicts": [],
        }

    def discussions(self, repo: FakeRepo, num: str | None, action: str | None) -> None:
        if num is None and self.method == "GET":
            status = self.q("status")
            kind = self.q("type")
            items = [
                d
                for d in repo.discussions
                if (status in (None, "all") or d["status"] == status)
                and (kind in (None, "all") or (kind == "pull_request") == d["isPullRequest"])
            ]
            raise _Response(
                200, {"discussions": items, "count": len(items), "start": 0, "numItemsPerPage": 50}
            )
        if num is None:
            self.need_auth()
            data = self.json_body()
            new = self.new_discussion(
                repo,
                len(repo.discussions) + 1,
                data["title"],
                data.get("description", ""),
                bool(data.get("pullRequest")),
            )
            repo.discussions.append(new)
            raise _Response(200, {"num": new["num"], "url": ""})
        found = next((d for d in repo.discussions if d["num"] == int(num)), None)
        if found is None:
            raise _error(404, "Discussion not found")
        if action is None:
            raise _Response(200, found)
        self.need_auth()
        now = _iso(time.time())
        event_base = {"id": uuid.uuid4().hex, "createdAt": now, "author": {"name": self.hub.user}}
        if action == "comment":
            event = {
                **event_base,
                "type": "comment",
                "data": {"edited": False, "hidden": False, "latest": {"raw": self.json_body()["comment"]}},
            }
            found["events"].append(event)
            raise _Response(200, {"newMessage": event})
        if action == "status":
            new_status = self.json_body()["status"]
            found["status"] = new_status
            event = {**event_base, "type": "status-change", "data": {"status": new_status}}
            found["events"].append(event)
            raise _Response(200, {"newStatus": event})
        if action == "merge":
            if not found["isPullRequest"]:
                raise _error(400, "Not a pull request")
            found["status"] = "merged"
            raise _Response(200, {})
        raise _error(404, "unknown discussion action")

    # ---- listings used by papers

    def listing_routes(self) -> None:
        kind = self.path.rsplit("/", 1)[-1]
        arxiv = (self.q("filter") or "").removeprefix("arxiv:") or self.q("paper") or ""
        if kind == "collections":
            raise _Response(
                200,
                [
                    {
                        "slug": f"{self.hub.user}/papers-{arxiv}-abc",
                        "title": f"Collection for {arxiv}",
                        "upvotes": 4,
                        "items": [{"type": "paper", "id": arxiv}],
                    }
                ],
            )
        item = {
            "id": f"org/{kind[:-1]}-for-{arxiv}",
            "downloads": 120,
            "likes": 9,
            "tags": [f"arxiv:{arxiv}"],
        }
        raise _Response(200, [item])

    # ---- papers

    def paper(self, arxiv_id: str) -> dict[str, Any]:
        return {
            "id": arxiv_id,
            "title": f"Paper {arxiv_id}: Efficient Fine-Tuning",
            "summary": "We study parameter efficient fine-tuning. " * 20,
            "publishedAt": "2025-01-02T00:00:00.000Z",
            "upvotes": 42,
            "authors": [{"name": "Ada Lovelace"}, {"name": "Alan Turing"}],
            "ai_keywords": ["LoRA", "PEFT"],
            "githubRepo": "https://github.com/example/repo",
        }

    def paper_routes(self) -> None:
        if self.match("GET", r"/api/daily_papers"):
            papers = [
                {
                    "paper": self.paper(pid),
                    "title": f"Paper {pid}",
                    "numComments": 2,
                    "publishedAt": "2025-01-02",
                }
                for pid in ("2501.00001", "2501.00002", "2501.00003")
            ]
            raise _Response(200, papers)
        if self.match("GET", r"/api/papers/search"):
            query = self.q("q", "")
            raise _Response(200, [{"paper": self.paper("2502.00010"), "title": f"Result for {query}"}])
        if m := self.match("GET", r"/api/papers/([\w.]+)"):
            if m.group(1).startswith("0000"):
                raise _error(404, "Paper not found")
            raise _Response(200, self.paper(m.group(1)))

    # ---- dataset viewer

    def viewer_routes(self) -> None:
        dataset = self.q("dataset") or ""
        key = ("dataset", dataset)
        if key not in self.hub.repos:
            raise _Response(
                404, {"error": "The dataset does not exist, or is not accessible without authentication"}
            )
        self.repo("dataset", dataset)
        if self.path == "/is-valid":
            raise _Response(
                200, {"preview": True, "viewer": True, "search": True, "filter": True, "statistics": True}
            )
        if self.path == "/splits":
            raise _Response(
                200,
                {
                    "splits": [
                        {"dataset": dataset, "config": "default", "split": s} for s in ("train", "test")
                    ],
                    "pending": [],
                    "failed": [],
                },
            )
        if self.path == "/parquet":
            raise _Response(
                200,
                {
                    "parquet_files": [
                        {
                            "dataset": dataset,
                            "config": "default",
                            "split": s,
                            "url": f"{self.hub.url}/datasets/{dataset}/resolve/refs%2Fconvert%2Fparquet/default/{s}/0000.parquet",
                            "filename": "0000.parquet",
                            "size": 12345,
                        }
                        for s in ("train", "test")
                    ]
                },
            )
        features = {
            "messages": [
                {
                    "role": {"dtype": "string", "_type": "Value"},
                    "content": {"dtype": "string", "_type": "Value"},
                }
            ],
            "source": {"dtype": "string", "_type": "Value"},
        }
        if self.path == "/info":
            raise _Response(
                200,
                {
                    "dataset_info": {
                        "description": "",
                        "features": features,
                        "splits": {
                            "train": {"name": "train", "num_examples": 1000},
                            "test": {"name": "test", "num_examples": 100},
                        },
                    }
                },
            )
        if self.path == "/first-rows":
            rows = [{"row_idx": i, "row": row, "truncated_cells": []} for i, row in enumerate(CHAT_ROWS)]
            feats = [{"feature_idx": i, "name": n, "type": t} for i, (n, t) in enumerate(features.items())]
            raise _Response(
                200,
                {
                    "dataset": dataset,
                    "config": self.q("config"),
                    "split": self.q("split"),
                    "features": feats,
                    "rows": rows,
                },
            )

    # ---- docs

    def docs_routes(self) -> None:
        m = re.fullmatch(r"/docs/([\w.-]+)(?:/(.*))?", self.path)
        if not m or m.group(1) not in DOCS:
            raise _error(404, "doc not found")
        section, rest = m.group(1), (m.group(2) or "")
        pages = DOCS[section]
        if rest == "llms.txt":
            if not self.hub.docs_llms_txt:
                raise _error(404, "no llms.txt")
            lines = [f"# {section}", ""] + [
                f"- [{p.replace('_', ' ').title()}]({self.hub.url}/docs/{section}/{p}.md)" for p in pages
            ]
            raise _Response(200, "\n".join(lines))
        if rest == "" or rest == "index":
            links = "".join(f'<a href="/docs/{section}/{p}">{p}</a>' for p in pages)
            raise _Response(
                200, f"<html><nav>{links}</nav><main>index</main></html>", {"Content-Type": "text/html"}
            )
        name = rest.removesuffix(".md")
        if name in pages:
            if rest.endswith(".md"):
                raise _Response(200, pages[name], {"Content-Type": "text/markdown"})
            raise _Response(200, f"<html><h1>{name}</h1></html>", {"Content-Type": "text/html"})
        raise _error(404, "doc page not found")

    # ---- jobs

    def jobs_routes(self) -> None:
        hub = self.hub
        if self.match("GET", r"/api/jobs/hardware"):
            raise _Response(
                200,
                [
                    {
                        "name": n,
                        "prettyName": p,
                        "cpu": "8 vCPU",
                        "ram": "32 GB",
                        "accelerator": (
                            {
                                "type": "gpu",
                                "model": acc,
                                "quantity": "1",
                                "vram": "24 GB",
                                "manufacturer": "Nvidia",
                            }
                            if acc
                            else None
                        ),
                        "unitCostMicroUSD": int(price / 60 * 1e6),
                        "unitCostUSD": price / 60,
                        "unitLabel": "minute",
                    }
                    for n, p, acc, price in HARDWARE
                ],
            )
        self.need_auth()
        if m := self.match(("GET", "POST"), r"/api/jobs/([^/]+)"):
            namespace = m.group(1)
            if self.method == "POST":
                spec = self.json_body()
                job = FakeJob(uuid.uuid4().hex[:24], namespace, spec, hub.job_plan, time.time())
                hub.jobs[job.job_id] = job
                raise _Response(200, job.to_json(hub.url))
            stages = self.query.get("stage")
            jobs = [
                j
                for j in hub.jobs.values()
                if j.namespace == namespace and (not stages or j.stage() in stages)
            ]
            raise _Response(200, [j.to_json(hub.url) for j in jobs])
        if m := self.match(("GET", "POST"), r"/api/jobs/([^/]+)/([^/]+)(?:/(logs|cancel|metrics))?"):
            job = hub.jobs.get(m.group(2))
            if job is None or job.namespace != m.group(1):
                raise _error(404, "Job not found")
            action = m.group(3)
            if action is None:
                raise _Response(200, job.to_json(hub.url))
            if action == "cancel":
                if job.stage() not in TERMINAL:
                    job.canceled_at = time.time()
                raise _Response(200, {})
            if action == "metrics":
                raise _Response(406, {"error": "no metrics"})
            self.stream_job_logs(job)
        if m := self.match(("GET", "POST"), r"/api/scheduled-jobs/([^/]+)"):
            namespace = m.group(1)
            if self.method == "POST":
                spec = self.json_body()
                sid = uuid.uuid4().hex[:24]
                item = {
                    "id": sid,
                    "createdAt": _iso(time.time()),
                    "schedule": spec.get("schedule"),
                    "suspend": bool(spec.get("suspend")),
                    "jobSpec": spec.get("jobSpec", {}),
                    "status": {"lastJob": None, "nextJobRunAt": _iso(time.time() + 3600)},
                    "owner": {"id": "owner-id", "name": namespace, "type": "user"},
                }
                hub.scheduled[sid] = item
                raise _Response(200, item)
            raise _Response(200, [s for s in hub.scheduled.values() if s["owner"]["name"] == namespace])
        if m := self.match(
            ("GET", "DELETE", "POST"), r"/api/scheduled-jobs/([^/]+)/([^/]+)(?:/(suspend|resume))?"
        ):
            item = hub.scheduled.get(m.group(2))
            if item is None:
                raise _error(404, "Scheduled job not found")
            if self.method == "DELETE":
                del hub.scheduled[m.group(2)]
                raise _Response(200, {})
            if m.group(3):
                item["suspend"] = m.group(3) == "suspend"
            raise _Response(200, item)

    def stream_job_logs(self, job: FakeJob) -> None:
        tail = self.q("tail")

        def events() -> Any:
            sent = 0
            first = True
            while True:
                visible = job.visible_logs()
                if first:
                    first = False
                    yield (
                        "data: "
                        + json.dumps({"timestamp": _iso(job.created), "data": "===== Job started ====="})
                        + "\n\n"
                    )
                    if tail:
                        sent = max(0, len(visible) - int(tail))
                for at, line in visible[sent:]:
                    yield "data: " + json.dumps({"timestamp": _iso(at), "data": line}) + "\n\n"
                sent = len(visible)
                if job.stage() in TERMINAL and sent == len(job.visible_logs()):
                    return
                time.sleep(0.05)

        self.handler.stream_sse(events)

    # ---- sandbox API (what the sandbox Space serves)

    def sandbox_routes(self) -> None:
        m = re.fullmatch(r"/_sandbox/([^/]+)/([^/]+)/api/(\w+)", self.path)
        if not m:
            raise _error(404, "no such sandbox route")
        repo = self.hub.repos.get(("space", f"{m.group(1)}/{m.group(2)}"))
        if repo is None:
            raise _error(404, "Space not found")
        self.need_auth()
        secret = repo.secrets.get("SANDBOX_SECRET")
        if not secret or self.headers.get("x-sandbox-authorization") != f"Bearer {secret}":
            raise _error(403, "bad sandbox secret")
        if time.time() < repo.runtime_ready_at:
            raise _error(503, "starting")
        files = self.hub.sandbox_files.setdefault(repo.repo_id, {})
        action = m.group(3)
        if action == "health":
            raise _Response(200, {"status": "ok"})
        data = self.json_body()
        if action == "bash":
            command = data["command"]
            self.hub.sandbox_commands.append((repo.repo_id, command))
            output = command[5:] if command.startswith("echo ") else f"ran: {command}"
            raise _Response(200, {"output": output + "\n", "exit_code": 0, "success": True})
        if action == "read":
            path = data["path"]
            if path not in files:
                raise _Response(200, {"output": f"File not found: {path}", "success": False})
            numbered = "\n".join(f"{i:>6}\t{line}" for i, line in enumerate(files[path].splitlines(), 1))
            raise _Response(200, {"output": numbered, "success": True})
        if action == "write":
            files[data["path"]] = data["content"]
            raise _Response(
                200, {"output": f"Wrote {len(data['content'])} chars to {data['path']}", "success": True}
            )
        if action == "edit":
            text = files.get(data["path"])
            if text is None or data["old_str"] not in text:
                raise _Response(200, {"output": "old_str not found", "success": False})
            count = -1 if data.get("replace_all") else 1
            files[data["path"]] = text.replace(data["old_str"], data["new_str"], count)
            raise _Response(200, {"output": f"Edited {data['path']}", "success": True})
        raise _error(404, "unknown sandbox action")


class OtherHost(LoopbackServer):
    """A loopback server that is NOT a Hugging Face host: records requests, serves arXiv-like and S2-like pages."""

    thread_name = "other-host"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.pages: dict[str, tuple[int, str, str]] = {}

    def add(
        self,
        path: str,
        body: str | dict[str, Any] | list[Any],
        status: int = 200,
        content_type: str | None = None,
    ) -> None:
        if not isinstance(body, str):
            body, content_type = json.dumps(body), "application/json"
        self.pages[path] = (status, body, content_type or "text/html")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        other = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                parsed = urlparse(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                other.requests.append(Recorded("GET", parsed.path, parse_qs(parsed.query), headers))
                status, body, content_type = other.pages.get(parsed.path, (404, "not found", "text/plain"))
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET

        return Handler

    def saw_token(self, token: str = TOKEN) -> bool:
        """True if any request carried the token in any header."""
        return any(token in value for r in self.requests for value in r.headers.values())


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused fast)."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------------------------------------- pytest helpers


def hub_environment(monkeypatch: Any, hub: FakeHub, tmp_path: Any, *, token: str | None = TOKEN) -> None:
    """Point huggingface_hub and ml-intern at `hub` (endpoint, token, cache) for one test."""
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_DATASETS_SERVER_URL", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    if token is None:
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("HF_TOKEN", token)
    from ml_intern.tools import hf_common

    hf_common.reset_caches()


@dataclass
class ToolHarness:
    """A ToolContext factory that records every emitted event."""

    workdir: Any
    services: dict[str, Any] = field(default_factory=dict)
    events: list[Any] = field(default_factory=list)
    state: Any = None

    def ctx(self, tool_name: str, tool_call_id: str = "call-1") -> Any:
        from ml_intern.core.tools import SimpleSessionState, ToolContext

        if self.state is None:
            self.state = SimpleSessionState()
        return ToolContext(
            tool_name=tool_name,
            tool_call_id=tool_call_id,
            emit=self.events.append,
            state=self.state,
            workdir=self.workdir,
            services=self.services,
        )

    def of_type(self, type_name: str) -> list[Any]:
        return [e for e in self.events if getattr(e, "type", None) == type_name]
