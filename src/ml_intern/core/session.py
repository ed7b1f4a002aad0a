"""Session persistence: one append-only, redacted JSONL file per session under the data directory."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_intern import paths
from ml_intern.core.redact import known_secret_values, scrub

# Events that are not worth a line each: the assembled message is saved instead.
_SKIPPED_EVENTS = frozenset({"assistant_chunk"})


def new_session_id() -> str:
    """Return a new session id: sortable by time, unique."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class SessionInfo:
    """A saved session as listed by --list-sessions and the picker."""

    session_id: str
    path: Path
    title: str = ""
    model: str = ""
    created: float = 0.0
    updated: float = 0.0
    messages: int = 0
    preview: str = ""


@dataclass
class LoadedSession:
    """Everything needed to continue a saved session."""

    info: SessionInfo
    records: list[dict[str, Any]] = field(default_factory=list)  # History records (message + meta)
    plan: list[dict[str, Any]] = field(default_factory=list)
    model: str = ""
    approval_rules: list[dict[str, Any]] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    dropped_lines: int = 0


class SessionStore:
    """Appends redacted lines to `<sessions_dir>/<id>.jsonl`; every line is flushed so a crash loses at most one."""

    def __init__(
        self, session_id: str | None = None, directory: Path | None = None, enabled: bool = True
    ) -> None:
        self.session_id = session_id or new_session_id()
        self.directory = directory or paths.sessions_dir()
        self.enabled = enabled
        self.path = self.directory / f"{self.session_id}.jsonl"
        self._fh: Any = None
        self._secrets = known_secret_values(dict(os.environ))
        self.write_errors = 0
        self.last_error: str | None = None
        self.message_lines = 0
        # Session approval rules as last written (resume restores them).
        self.approval_rules: list[dict[str, Any]] = []

    def _open(self) -> Any:
        if self._fh is None:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._fh = os.fdopen(fd, "a", encoding="utf-8")
        return self._fh

    def append(self, kind: str, data: dict[str, Any]) -> None:
        """Write one redacted line; a full disk is reported once, never raised."""
        if not self.enabled:
            return
        line = json.dumps({"kind": kind, "ts": time.time(), **scrub(data, self._secrets)}, ensure_ascii=False)
        try:
            fh = self._open()
            fh.write(line + "\n")
            fh.flush()
        except OSError as exc:
            self.write_errors += 1
            self.last_error = f"could not save session to {self.path}: {exc}"

    def write_meta(self, **fields: Any) -> None:
        """Record session metadata (model, title, workdir); later meta lines override earlier ones."""
        if "approval_rules" in fields:
            self.approval_rules = list(fields["approval_rules"])
        self.append("meta", {"session_id": self.session_id, **fields})

    def write_message(self, record: dict[str, Any]) -> None:
        """Record one history message (with its kind and turn)."""
        self.message_lines += 1
        self.append("message", {"record": record})

    def write_event(self, event: dict[str, Any]) -> None:
        """Record one event unless it is a stream chunk."""
        if event.get("type") in _SKIPPED_EVENTS:
            return
        if event.get("type") == "tool_output" and isinstance(event.get("output"), str):
            # The history message holds the full output; saving (and scrubbing) it twice only costs time and disk.
            event = {**event, "output": event["output"][:200], "output_chars": len(event["output"])}
        self.append("event", {"event": event})

    def write_rewrite(self, records: list[dict[str, Any]]) -> None:
        """Record a full replacement of the history (after compaction, undo or resume)."""
        self.message_lines += 1
        self.append("history", {"records": records})

    def discard_if_empty(self) -> bool:
        """Delete the file when no message was ever saved to it (a session opened and left); return whether."""
        self.close()
        if self.message_lines or not self.enabled:
            return False
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            try:
                self._fh.close()
            except OSError:
                pass
            self._fh = None


def read_session_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Return the parsed lines of a session file and how many were unreadable (cut by a crash)."""
    lines: list[dict[str, Any]] = []
    dropped = 0
    try:
        with path.open(encoding="utf-8") as fh:
            for raw in fh:
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    item = json.loads(raw)
                except json.JSONDecodeError:
                    dropped += 1  # a line cut by a crash
                    continue
                if isinstance(item, dict):
                    lines.append(item)
    except OSError:
        return [], 0
    return lines, dropped


def load_session(path: Path) -> LoadedSession:
    """Replay a session file into the state needed to continue it."""
    lines, dropped = read_session_lines(path)
    info = SessionInfo(session_id=path.stem, path=path)
    loaded = LoadedSession(info=info, dropped_lines=dropped)
    records: list[dict[str, Any]] = []
    for item in lines:
        kind = item.get("kind")
        if kind == "meta":
            info.title = item.get("title") or info.title
            info.model = item.get("model") or info.model
            if not info.created:
                info.created = item.get("ts", 0.0)
            loaded.model = info.model
            if item.get("approval_rules") is not None:
                loaded.approval_rules = item["approval_rules"]
        elif kind == "message" and isinstance(item.get("record"), dict):
            records.append(item["record"])
        elif kind == "history":
            records = list(item.get("records", []))
        elif kind == "event":
            event = item.get("event") or {}
            if event.get("type") == "plan_update":
                loaded.plan = event.get("plan", [])
            elif event.get("type") == "new_complete":
                loaded.plan = []
            elif event.get("type") == "job_update" and event.get("kind", "job") == "job":
                job_id = event.get("job_id")
                if job_id and job_id not in loaded.job_ids:
                    loaded.job_ids.append(job_id)
        elif kind == "usage":
            loaded.usage = {k: v for k, v in item.items() if k not in ("kind", "ts")}
        info.updated = max(info.updated, item.get("ts", 0.0))
    loaded.records = records
    info.messages = sum(1 for r in records if r.get("kind") != "system")
    first_task = next((r for r in records if r.get("kind") == "task"), None)
    if first_task:
        text = str(first_task["message"].get("content") or "")
        info.preview = " ".join(text.split())[:100]
        if not info.title:
            info.title = title_from_text(text)
    return loaded


def title_from_text(text: str, limit: int = 60) -> str:
    """Derive a short title from the first user message."""
    words = " ".join(text.split())
    if len(words) <= limit:
        return words
    cut = words[:limit].rsplit(" ", 1)[0]
    return cut + "…"


def list_sessions(directory: Path | None = None, *, include_empty: bool = False) -> list[SessionInfo]:
    """Return saved sessions with at least one message (or all), newest first."""
    folder = directory or paths.sessions_dir()
    infos = []
    for path in folder.glob("*.jsonl"):
        try:
            info = load_session(path).info
        except Exception:  # noqa: BLE001, S112 - an unreadable file must not hide the others
            continue
        if not info.messages and not include_empty:
            continue
        if not info.updated:
            info.updated = path.stat().st_mtime
        infos.append(info)
    infos.sort(key=lambda i: i.updated, reverse=True)
    return infos


def find_session(query: str, directory: Path | None = None) -> Path | None:
    """Resolve a session id, unique id prefix, list index (1-based) or file path."""
    candidate = Path(query).expanduser()
    if candidate.suffix == ".jsonl" and candidate.is_file():
        return candidate
    folder = directory or paths.sessions_dir()
    exact = folder / f"{query}.jsonl"
    if exact.is_file():
        return exact
    sessions = list_sessions(folder)
    if query.isdigit() and 1 <= int(query) <= len(sessions) and len(query) < 4:
        return sessions[int(query) - 1].path
    matches = [s.path for s in sessions if s.session_id.startswith(query)]
    return matches[0] if len(matches) == 1 else None
