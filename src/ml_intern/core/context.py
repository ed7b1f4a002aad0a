"""Conversation history: what is sent, how many tokens it costs, undo checkpoints and compaction."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------------------------
# Token counting (offline: tiktoken's cl100k files ship inside litellm; a char estimate is the fallback)

_encoder: Any = None
_encoder_failed = False


def _tiktoken_encoder() -> Any:
    global _encoder, _encoder_failed
    if _encoder is not None or _encoder_failed:
        return _encoder
    try:
        spec = importlib.util.find_spec("litellm")
        if spec and spec.submodule_search_locations and "TIKTOKEN_CACHE_DIR" not in os.environ:
            bundled = Path(list(spec.submodule_search_locations)[0]) / "litellm_core_utils" / "tokenizers"
            if bundled.is_dir():
                os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
        import tiktoken

        _encoder = tiktoken.get_encoding("cl100k_base")
    except Exception:
        _encoder_failed = True
    return _encoder


def count_text_tokens(text: str) -> int:
    """Count tokens of a string (cl100k; about chars/3.6 when the tokenizer is unavailable)."""
    if not text:
        return 0
    encoder = _tiktoken_encoder()
    if encoder is None:
        return int(len(text) / 3.6) + 1
    return len(encoder.encode(text, disallowed_special=()))


def message_tokens(message: dict[str, Any]) -> int:
    """Count the tokens one wire message costs, including role overhead and tool calls."""
    total = 4
    content = message.get("content")
    if isinstance(content, str):
        total += count_text_tokens(content)
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += count_text_tokens(part["text"])
            else:
                total += 85  # images and other blocks: a flat estimate
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        total += 8 + count_text_tokens(function.get("name", "")) + count_text_tokens(function.get("arguments", ""))
    return total


def tools_tokens(tools: list[dict[str, Any]]) -> int:
    """Count the tokens the tool schemas cost."""
    return count_text_tokens(json.dumps(tools, separators=(",", ":"))) if tools else 0


# ---------------------------------------------------------------------------------------------------------------
# History


@dataclass
class MessageMeta:
    """What we know about a message beyond its wire form."""

    kind: str  # system, task (a real user message), injected, assistant, tool, summary
    turn: int  # which real user turn it belongs to
    tokens: int | None = None
    timestamp: float = field(default_factory=time.time)


class History:
    """The message list sent to the model plus parallel metadata, kept in step."""

    def __init__(self, system_prompt: str) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}]
        self.meta: list[MessageMeta] = [MessageMeta("system", 0)]
        self.turn = 0

    def __len__(self) -> int:
        return len(self.messages)

    def _append(self, message: dict[str, Any], kind: str) -> dict[str, Any]:
        self.messages.append(message)
        self.meta.append(MessageMeta(kind, self.turn))
        return message

    def set_system_prompt(self, text: str) -> None:
        """Replace the system prompt."""
        self.messages[0] = {"role": "system", "content": text}
        self.meta[0].tokens = None

    def add_user(self, text: str) -> dict[str, Any]:
        """Append a real user message; it starts a new turn."""
        self.turn += 1
        return self._append({"role": "user", "content": text}, "task")

    def add_injected(self, text: str) -> dict[str, Any]:
        """Append guidance written by ml-intern (not the user); undo never stops at it."""
        return self._append({"role": "user", "content": text}, "injected")

    def add_assistant(self, content: str, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Append an assistant message with optional tool calls."""
        message: dict[str, Any] = {"role": "assistant", "content": content or None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        elif not content:
            message["content"] = ""
        return self._append(message, "assistant")

    def add_tool_result(self, tool_call_id: str, name: str, content: str) -> dict[str, Any]:
        """Append the result of one tool call."""
        return self._append({"role": "tool", "tool_call_id": tool_call_id, "name": name, "content": content}, "tool")

    def patch_dangling_tool_calls(
        self, content: str = "Tool was not executed (interrupted or failed before it ran)."
    ) -> int:
        """Give every tool call without a result a stub result, so the next request is valid."""
        answered = {m.get("tool_call_id") for m in self.messages if m.get("role") == "tool"}
        patched = 0
        index = 0
        while index < len(self.messages):
            message = self.messages[index]
            if message.get("role") == "assistant" and message.get("tool_calls"):
                end = index + 1
                while end < len(self.messages) and self.messages[end].get("role") == "tool":
                    end += 1
                for call in message["tool_calls"]:
                    if call["id"] not in answered:
                        stub = {
                            "role": "tool",
                            "tool_call_id": call["id"],
                            "name": call["function"]["name"],
                            "content": content,
                        }
                        self.messages.insert(end, stub)
                        self.meta.insert(end, MessageMeta("tool", self.meta[index].turn))
                        answered.add(call["id"])
                        end += 1
                        patched += 1
                index = end
            else:
                index += 1
        return patched

    def tokens(self, tools: list[dict[str, Any]] | None = None) -> int:
        """Count the tokens of the whole request (messages and tool schemas), caching per message."""
        total = 3
        for message, meta in zip(self.messages, self.meta, strict=True):
            if meta.tokens is None:
                meta.tokens = message_tokens(message)
            total += meta.tokens
        return total + (tools_tokens(tools) if tools else 0)

    def real_user_indices(self) -> list[int]:
        """Return the indices of real user messages (not injected guidance)."""
        return [i for i, meta in enumerate(self.meta) if meta.kind == "task"]

    def truncate(self, index: int) -> int:
        """Drop every message from `index` on; return how many were dropped."""
        index = max(1, index)
        dropped = len(self.messages) - index
        del self.messages[index:]
        del self.meta[index:]
        self.turn = max((m.turn for m in self.meta), default=0)
        return dropped

    def to_records(self) -> list[dict[str, Any]]:
        """Serialise messages with their metadata (for saving sessions)."""
        return [
            {"message": message, "kind": meta.kind, "turn": meta.turn, "ts": meta.timestamp}
            for message, meta in zip(self.messages, self.meta, strict=True)
        ]

    def load_records(self, records: list[dict[str, Any]]) -> None:
        """Replace everything after the system prompt with saved records."""
        system = self.messages[0]
        self.messages = [system]
        self.meta = [MessageMeta("system", 0)]
        for record in records:
            if record.get("kind") == "system":
                continue
            self.messages.append(record["message"])
            self.meta.append(MessageMeta(record.get("kind", "assistant"), int(record.get("turn", 0))))
        self.turn = max((m.turn for m in self.meta), default=0)


# ---------------------------------------------------------------------------------------------------------------
# File snapshots for undo (kept in the data dir, never in the user's repository)


@dataclass
class TurnChanges:
    """What one user turn changed: files we can restore, effects we cannot."""

    turn: int
    files: dict[str, str | None] = field(default_factory=dict)  # absolute path -> snapshot path (None: did not exist)
    side_effects: list[str] = field(default_factory=list)


class SnapshotStore:
    """Copies a file before its first change in a turn, so undo can put it back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.turns: dict[int, TurnChanges] = {}

    def _changes(self, turn: int) -> TurnChanges:
        return self.turns.setdefault(turn, TurnChanges(turn))

    def snapshot(self, turn: int, path: Path) -> None:
        """Save the file's current content (or its absence) once per turn."""
        changes = self._changes(turn)
        key = str(path.resolve())
        if key in changes.files:
            return
        target = Path(key)
        if target.is_file():
            folder = self.root / f"turn-{turn:05d}"
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            copy = folder / f"{len(changes.files):04d}-{target.name}"
            shutil.copy2(target, copy)
            changes.files[key] = str(copy)
        else:
            changes.files[key] = None

    def side_effect(self, turn: int, description: str) -> None:
        """Remember an effect undo cannot reverse."""
        self._changes(turn).side_effects.append(description)

    def restore_from(self, first_turn: int) -> tuple[list[str], list[str]]:
        """Restore files changed in `first_turn` and later; return (restored paths, effects not undone)."""
        restored: list[str] = []
        not_undone: list[str] = []
        # Newest first so the oldest snapshot of a file wins.
        for turn in sorted((t for t in self.turns if t >= first_turn), reverse=True):
            changes = self.turns.pop(turn)
            not_undone.extend(changes.side_effects)
            for path, snapshot in changes.files.items():
                target = Path(path)
                try:
                    if snapshot is None:
                        if target.exists():
                            target.unlink()
                    else:
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(snapshot, target)
                    if path not in restored:
                        restored.append(path)
                except OSError as exc:
                    not_undone.append(f"could not restore {path}: {exc}")
        return restored, not_undone

    def forget_from(self, first_turn: int) -> list[str]:
        """Drop snapshots of `first_turn` and later without restoring; return effects that stay."""
        effects: list[str] = []
        for turn in [t for t in self.turns if t >= first_turn]:
            effects.extend(self.turns.pop(turn).side_effects)
        return effects


# ---------------------------------------------------------------------------------------------------------------
# Compaction


SUMMARY_PROMPT = (
    "You are compacting the working memory of an ML engineering agent. Summarise the conversation excerpt below "
    "for the same agent, who will continue the task with only your summary, the original task and the most recent "
    "messages. Keep: the goal and constraints; decisions and why; files created or changed (paths) and their "
    "purpose; commands run and key results (numbers, errors, job ids, URLs, repo ids); what failed and why; the "
    "current state and the next steps. Be specific and terse; use bullet points; no preamble."
)

TRUNCATED_OUTPUT = "[output truncated to save context; original was {n} tokens. Re-run the tool if you need it.]"


class CompactionError(Exception):
    """Compaction could not bring the history under the limit."""


@dataclass
class CompactionResult:
    """Before and after token counts and what was done."""

    old_tokens: int
    new_tokens: int
    summarised_messages: int
    truncated_outputs: int
    method: str  # summary, truncation, summary+truncation


Summariser = Callable[[list[dict[str, Any]]], Awaitable[str]]


def _tail_start(history: History, budget: int) -> int:
    """Pick the first index of the kept tail: as many recent messages as fit `budget`, never splitting a call."""
    used = 0
    index = len(history.messages)
    floor = 2
    for candidate in range(len(history.messages) - 1, floor - 1, -1):
        cost = history.meta[candidate].tokens or message_tokens(history.messages[candidate])
        if used + cost > budget and index < len(history.messages):
            break
        used += cost
        index = candidate
    # A tail must not begin with tool results whose assistant call is summarised away.
    while index < len(history.messages) and history.messages[index].get("role") == "tool":
        index += 1
    return index


def _render_for_summary(messages: list[dict[str, Any]], max_tool_tokens: int) -> str:
    lines: list[str] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content") or ""
        if not isinstance(content, str):
            content = json.dumps(content)[:4000]
        if role == "tool":
            if count_text_tokens(content) > max_tool_tokens:
                keep = max_tool_tokens * 3
                content = content[: keep // 2] + "\n...[cut]...\n" + content[-keep // 2 :]
            lines.append(f"[tool result: {message.get('name')}]\n{content}")
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            text = content
            for call in calls:
                args = call["function"].get("arguments", "")
                if len(args) > 1500:
                    args = args[:1500] + "...[cut]"
                text += f"\n-> call {call['function']['name']}({args})"
            lines.append(f"[assistant]\n{text.strip()}")
        else:
            lines.append(f"[{role}]\n{content}")
    return "\n\n".join(lines)


async def compact_history(
    history: History,
    tools: list[dict[str, Any]],
    *,
    limit_tokens: int,
    context_window: int,
    summarise: Summariser | None,
) -> CompactionResult:
    """Shrink the history below `limit_tokens`: summarise the middle, then truncate old tool outputs if needed."""
    old_tokens = history.tokens(tools)
    history.patch_dangling_tool_calls()
    real_users = history.real_user_indices()
    task_index = real_users[0] if real_users else None
    # Keep the system prompt, the first task and a recent tail worth about a quarter of the window.
    head_end = (task_index + 1) if task_index is not None else 1
    tail_budget = max(1000, min(int(limit_tokens * 0.3), context_window // 4))
    tail_start = max(head_end, _tail_start(history, tail_budget))
    middle = history.messages[head_end:tail_start]
    summarised = 0
    method = []
    if middle and summarise is not None:
        # The summariser's own request must fit: cut long tool outputs in what it reads.
        excerpt = _render_for_summary(middle, max_tool_tokens=max(200, context_window // 40))
        excerpt_budget = max(2000, int(context_window * 0.6))
        if count_text_tokens(excerpt) > excerpt_budget:
            chars = excerpt_budget * 3
            excerpt = excerpt[: chars // 3] + "\n\n...[middle of the excerpt omitted]...\n\n" + excerpt[-2 * chars // 3 :]
        summary = (await summarise([
            {"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": excerpt},
        ])).strip()
        if summary:
            note = (
                "[ml-intern: earlier work in this session was compacted. Summary of what happened so far:]\n"
                + summary
            )
            middle_turns = {history.meta[i].turn for i in range(head_end, tail_start)}
            del history.messages[head_end:tail_start]
            del history.meta[head_end:tail_start]
            history.messages.insert(head_end, {"role": "user", "content": note})
            history.meta.insert(head_end, MessageMeta("summary", max(middle_turns, default=history.turn)))
            summarised = len(middle)
            method.append("summary")
    truncated = _truncate_tool_outputs(history, tools, limit_tokens)
    if truncated:
        method.append("truncation")
    new_tokens = history.tokens(tools)
    if new_tokens > limit_tokens:
        raise CompactionError(
            f"the history is still {new_tokens:,} tokens after compaction (limit {limit_tokens:,}); the kept "
            "messages alone are too large"
        )
    if not method:
        method.append("none")
    return CompactionResult(old_tokens, new_tokens, summarised, truncated, "+".join(method))


def _truncate_tool_outputs(history: History, tools: list[dict[str, Any]], limit_tokens: int) -> int:
    """Replace the oldest large tool outputs with a placeholder until the history fits; return how many."""
    truncated = 0
    if history.tokens(tools) <= limit_tokens:
        return 0
    candidates = sorted(
        (i for i, m in enumerate(history.messages) if m.get("role") == "tool"),
        key=lambda i: i,
    )
    for index in candidates:
        meta = history.meta[index]
        tokens = meta.tokens or message_tokens(history.messages[index])
        if tokens < 200:
            continue
        history.messages[index] = {**history.messages[index], "content": TRUNCATED_OUTPUT.format(n=tokens)}
        meta.tokens = None
        truncated += 1
        if history.tokens(tools) <= limit_tokens:
            break
    if history.tokens(tools) > limit_tokens:
        # Last resort: long assistant arguments and user pastes in the middle of the history.
        for index in range(2, max(2, len(history.messages) - 2)):
            message = history.messages[index]
            meta = history.meta[index]
            if meta.kind in ("task", "system"):
                continue
            tokens = meta.tokens or message_tokens(message)
            if tokens < 500:
                continue
            if message.get("role") == "assistant" and message.get("tool_calls"):
                calls = []
                for call in message["tool_calls"]:
                    function = dict(call["function"])
                    if len(function.get("arguments", "")) > 400:
                        function["arguments"] = json.dumps({"_truncated": "arguments removed to save context"})
                    calls.append({**call, "function": function})
                history.messages[index] = {**message, "tool_calls": calls}
            elif isinstance(message.get("content"), str):
                history.messages[index] = {**message, "content": TRUNCATED_OUTPUT.format(n=tokens)}
            meta.tokens = None
            truncated += 1
            if history.tokens(tools) <= limit_tokens:
                break
    return truncated
