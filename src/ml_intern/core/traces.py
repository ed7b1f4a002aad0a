"""Session traces: export to the Claude Code JSONL the Hub's Agent Trace Viewer reads, and upload them in the
background to the user's own private dataset. Everything is redacted again before it is written or sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml_intern.core import events as ev
from ml_intern.core.redact import known_secret_values, scrub
from ml_intern.core.session import load_session, read_session_lines

DATASET_CARD = """---
tags:
- agent-traces
- ml-intern
- claude-code
- hf-agent-trace-viewer
configs:
- config_name: default
  data_files: sessions/**/*.jsonl
---
# ml-intern sessions

Traces of [ml-intern](https://github.com/huggingface/ml-intern) sessions in the Claude Code JSONL format, readable
with the Hub's Agent Trace Viewer. Known secret shapes (tokens, keys, passwords) were replaced with `[REDACTED]`
markers before upload, but redaction is pattern-based: review a trace before making this dataset public.
"""


# ---------------------------------------------------------------------------------------------------------------
# Replaying a saved session into the messages of its trace


def _record_key(record: dict[str, Any]) -> tuple[Any, ...]:
    message = record.get("message") or {}
    call_ids = tuple(c.get("id", "") for c in message.get("tool_calls") or [])
    return (
        round(float(record.get("ts") or 0.0), 6),
        record.get("kind"),
        record.get("turn"),
        message.get("role"),
        message.get("tool_call_id") or call_ids,
    )


def trace_records(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return every message of the session in the order it happened.

    Messages later folded into a compaction summary stay (in their original form); turns the user undid are
    dropped; system prompts and compaction summaries are left out.
    """
    trace: dict[tuple[Any, ...], dict[str, Any]] = {}
    current: list[tuple[Any, ...]] = []
    for line in lines:
        kind = line.get("kind")
        if kind == "message" and isinstance(line.get("record"), dict):
            key = _record_key(line["record"])
            trace.setdefault(key, line["record"])
            current.append(key)
        elif kind == "history":
            records = [r for r in line.get("records", []) if isinstance(r, dict)]
            keys = [_record_key(r) for r in records]
            if len(keys) < len(current) and keys == current[: len(keys)]:
                for key in current[len(keys) :]:  # an undo or rewind
                    trace.pop(key, None)
            for key, record in zip(keys, records, strict=True):
                trace.setdefault(key, record)
            current = keys
    return [r for r in trace.values() if r.get("kind") not in ("system", "summary")]


# ---------------------------------------------------------------------------------------------------------------
# Claude Code JSONL


def _uuid_for(session_id: str, key: str) -> str:
    digest = hashlib.sha1(f"{session_id}::{key}".encode()).hexdigest()
    return str(uuid.UUID(hex=digest[:32]))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            else:
                parts.append(json.dumps(block, ensure_ascii=False))
        return "\n".join(parts)
    return "" if content is None else str(content)


def to_claude_code(
    records: Sequence[dict[str, Any]],
    *,
    session_id: str,
    model: str = "",
    cwd: str = "",
    version: str = "",
    start_ts: float | None = None,
) -> list[dict[str, Any]]:
    """Turn trace records into Claude Code JSONL lines (a uuid/parentUuid chain, tool_use/tool_result pairs)."""
    lines: list[dict[str, Any]] = []
    parent: str | None = None
    for index, record in enumerate(records):
        message = record.get("message") or {}
        role = message.get("role")
        ts = float(record.get("ts") or start_ts or time.time())
        if role == "user":
            body: dict[str, Any] = {"role": "user", "content": _text_of(message.get("content"))}
            line_type = "user"
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": _text_of(message.get("content")),
            }
            body = {"role": "user", "content": [result]}
            line_type = "user"
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = _text_of(message.get("content"))
            if text.strip():
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                raw = function.get("arguments") or "{}"
                try:
                    arguments = json.loads(raw)
                except (json.JSONDecodeError, TypeError):
                    arguments = {"_raw": raw}
                if not isinstance(arguments, dict):
                    arguments = {"_raw": raw}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": arguments,
                    }
                )
            if not blocks:
                continue
            has_calls = any(b["type"] == "tool_use" for b in blocks)
            body = {
                "id": "msg_" + _uuid_for(session_id, f"assistant-msg::{index}::{ts}").replace("-", "")[:24],
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": blocks,
                "stop_reason": "tool_use" if has_calls else "end_turn",
            }
            line_type = "assistant"
        else:
            continue
        line_uuid = _uuid_for(session_id, f"{role}::{index}::{ts}")
        lines.append(
            {
                "parentUuid": parent,
                "isSidechain": False,
                "userType": "external",
                "cwd": cwd,
                "sessionId": session_id,
                "version": version,
                "type": line_type,
                "message": body,
                "uuid": line_uuid,
                "timestamp": _iso(ts),
            }
        )
        parent = line_uuid
    return lines


@dataclass
class ExportedTrace:
    """A trace ready to write or upload."""

    session_id: str
    created: float
    lines: list[dict[str, Any]]

    def to_bytes(self) -> bytes:
        """Return the JSONL file content."""
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in self.lines).encode()


def build_trace(session_path: Path, extra_secrets: tuple[str, ...] = ()) -> ExportedTrace:
    """Read a saved session and return its redacted Claude Code trace."""
    from ml_intern import __version__

    lines, _ = read_session_lines(session_path)
    loaded = load_session(session_path)
    info = loaded.info
    cwd = next(
        (str(line["workdir"]) for line in lines if line.get("kind") == "meta" and line.get("workdir")), ""
    )
    records = trace_records(lines)
    secrets = extra_secrets or known_secret_values(dict(os.environ))
    converted = to_claude_code(
        records,
        session_id=info.session_id,
        model=info.model,
        cwd=cwd,
        version=f"ml-intern {__version__}",
        start_ts=info.created or None,
    )
    return ExportedTrace(info.session_id, info.created or time.time(), scrub(converted, secrets))


def default_export_path(folder: Path, session_id: str) -> Path:
    """Where `/export` writes when no path is given."""
    return folder / f"ml-intern-{session_id}.jsonl"


def export_trace(session_path: Path, target: Path) -> tuple[Path, int]:
    """Write the session's trace to `target` (a file, or a folder for the default name); return (path, lines)."""
    trace = build_trace(session_path)
    if target.is_dir():
        target = default_export_path(target, trace.session_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(trace.to_bytes())
    os.replace(tmp, target)
    return target, len(trace.lines)


# ---------------------------------------------------------------------------------------------------------------
# Upload to the user's own dataset


class TraceUploadError(Exception):
    """An upload could not be done; the message is written for the user."""


def remote_path(session_id: str, created: float) -> str:
    """Path of a session's trace inside the dataset."""
    day = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d")
    return f"sessions/{day}/{session_id}.jsonl"


class TraceUploader:
    """Uploads session traces in the background: one at a time, retried with back-off, never raising."""

    def __init__(
        self,
        repo_template: str,
        emit: Callable[[ev.Event], None],
        *,
        api_factory: Callable[[], Any] | None = None,
        retry_delays: Sequence[float] = (2.0, 4.0),
    ) -> None:
        self.repo_template = repo_template
        self.emit = emit
        self.api_factory = api_factory
        self.retry_delays = tuple(retry_delays)
        self.repo_id: str | None = None
        self._repo_ready = False
        self._card_ready = False
        self.uploaded: dict[str, str] = {}  # session id -> path in repo
        self._queue: dict[str, Path] = {}
        self._task: asyncio.Task[None] | None = None

    # -- Hub access (blocking; always called in a thread)

    def _api(self) -> Any:
        if self.api_factory is not None:
            return self.api_factory()
        from huggingface_hub import HfApi

        from ml_intern.tools.hf_common import hf_endpoint, hf_token

        token = hf_token()
        if not token:
            raise TraceUploadError(
                "no Hugging Face token: run `hf auth login` or set HF_TOKEN to share traces"
            )
        return HfApi(endpoint=hf_endpoint(), token=token)

    def _resolve_repo(self, api: Any) -> str:
        if self.repo_id is None:
            from ml_intern.tools.hf_common import whoami_name

            user = whoami_name(api)
            repo_id = self.repo_template.format(hf_user=user)
            if repo_id.split("/", 1)[0] != user:
                raise TraceUploadError(
                    f"refusing to upload to {repo_id}: traces only go to a dataset under your own namespace ({user})"
                )
            self.repo_id = repo_id
        return self.repo_id

    def _ensure_repo(self, api: Any) -> str:
        repo_id = self._resolve_repo(api)
        if not self._repo_ready:
            # Created private; an existing dataset keeps the visibility its owner chose.
            api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
            self._repo_ready = True
        if not self._card_ready:
            try:
                if not api.file_exists(repo_id, "README.md", repo_type="dataset"):
                    api.upload_file(
                        path_or_fileobj=DATASET_CARD.encode(),
                        path_in_repo="README.md",
                        repo_id=repo_id,
                        repo_type="dataset",
                        commit_message="Add dataset card",
                    )
                self._card_ready = True
            except Exception:  # noqa: BLE001, S110 - the card is a nicety; the trace goes up, the card next time
                pass
        return repo_id

    def _upload_now(self, session_path: Path) -> tuple[str, str, str, str]:
        trace = build_trace(session_path)
        api = self._api()
        repo_id = self._ensure_repo(api)
        path_in_repo = remote_path(trace.session_id, trace.created)
        info = api.upload_file(
            path_or_fileobj=trace.to_bytes(),
            path_in_repo=path_in_repo,
            repo_id=repo_id,
            repo_type="dataset",
            commit_message=f"Add session {trace.session_id}",
        )
        return trace.session_id, repo_id, path_in_repo, str(getattr(info, "commit_url", "") or "")

    def visibility(self) -> tuple[str, bool | None]:
        """Return (repo id, private) of the trace dataset; private is None when it does not exist yet."""
        api = self._api()
        repo_id = self._resolve_repo(api)
        if not api.repo_exists(repo_id, repo_type="dataset"):
            return repo_id, None
        return repo_id, bool(api.repo_info(repo_id, repo_type="dataset").private)

    def set_visibility(self, private: bool) -> str:
        """Create the dataset if needed and make it private or public; return its id."""
        api = self._api()
        repo_id = self._ensure_repo(api)
        api.update_repo_settings(repo_id, repo_type="dataset", private=private)
        return repo_id

    # -- background queue

    def schedule(self, session_id: str, session_path: Path) -> None:
        """Queue a session for upload; returns at once (the newest content is read when its turn comes)."""
        self._queue[session_id] = session_path
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name="ml-intern-trace-upload")

    @property
    def busy(self) -> bool:
        """Whether uploads are queued or running."""
        return self._task is not None and not self._task.done()

    async def _drain(self) -> None:
        while self._queue:
            session_id = next(iter(self._queue))
            path = self._queue.pop(session_id)
            await self._upload_with_retries(session_id, path)

    async def _upload_with_retries(self, session_id: str, path: Path) -> None:
        from ml_intern.tools.hf_common import describe_http_error, in_thread

        attempts = len(self.retry_delays) + 1
        for attempt in range(attempts):
            try:
                sid, repo_id, path_in_repo, url = await in_thread(self._upload_now, path)
            except TraceUploadError as exc:
                self.emit(ev.ToolLog(tool="system", log=f"Trace not shared: {exc}."))
                return
            except Exception as exc:  # noqa: BLE001 - network, auth, Hub errors: retried, then reported
                if attempt + 1 < attempts:
                    await asyncio.sleep(self.retry_delays[attempt])
                    continue
                reason = describe_http_error(exc, "the trace upload")
                self.emit(
                    ev.ToolLog(
                        tool="system",
                        log=f"Could not upload the trace of session {session_id} after {attempts} attempts: "
                        f"{reason} It stays saved locally; the next save tries again.",
                    )
                )
                return
            self.uploaded[sid] = path_in_repo
            self.emit(ev.TraceUploaded(session_id=sid, repo_id=repo_id, path_in_repo=path_in_repo, url=url))
            return

    async def flush(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for queued uploads; return whether they all finished."""
        if self._task is None or self._task.done():
            return True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            return False
        return True

    def cancel(self) -> None:
        """Stop background uploads (what is queued stays saved locally)."""
        self._queue.clear()
        if self._task is not None and not self._task.done():
            self._task.cancel()
