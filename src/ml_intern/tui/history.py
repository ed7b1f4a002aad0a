"""Persistent prompt history: one JSON string per line under the state directory."""

from __future__ import annotations

import json
from pathlib import Path

MAX_ENTRIES = 1000


def history_path() -> Path:
    """Return the prompt history file."""
    from ml_intern import paths

    return paths.state_dir() / "prompt_history.jsonl"


def load_history(path: Path, limit: int = MAX_ENTRIES) -> list[str]:
    """Read the last `limit` entries; unreadable lines are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    entries: list[str] = []
    for line in lines[-limit:]:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, str) and value:
            entries.append(value)
    return entries


def append_history(path: Path, entry: str, limit: int = MAX_ENTRIES) -> None:
    """Append one entry, trimming the file when it grows well past `limit`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
    try:
        if path.stat().st_size > limit * 400:
            kept = load_history(path, limit)
            path.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
    except OSError:
        pass
