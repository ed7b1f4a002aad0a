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
            bundled = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
            if bundled.is_dir():
                os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)
        import tiktoken

        _encoder = tiktoken.get_encoding("cl100k_base")
    except Exception:  # noqa: BLE001 - any failure means the char estimate
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
        total += (
            8 + count_text_tokens(function.get("name", "")) + count_text_tokens(function.get("arguments", ""))
        )
    return total


def tools_tokens(tools: list[dict[str, Any]]) -> int:
    """Count the tokens the tool schemas cost."""
    return count_text_tokens(json.dumps(tools, separators=(",", ":"))) if tools else 0


# ---------------------------------------------------------------------------------------------------------------
# History


@dataclass
class RewindPoint:
    """A real user message the conversation can be rewound to (it and everything after it go)."""

    turns_back: int  # the `Undo(turns=...)` that removes it
    index: int
    turn: int
    text: str
    timestamp: float
    messages_after: int
    # Files a rewind with files would restore (filled in by the agent, which owns the snapshots).
    files_changed: list[str] = field(default_factory=list)


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
        return self._append(
            {"role": "tool", "tool_call_id": tool_call_id, "name": name, "content": content}, "tool"
        )

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

    def rewind_points(self) -> list[RewindPoint]:
        """Return the real user messages one can rewind to, newest first."""
        users = self.real_user_indices()
        points = []
        for back, index in enumerate(reversed(users), 1):
            content = self.messages[index].get("content")
            points.append(
                RewindPoint(
                    turns_back=back,
                    index=index,
                    turn=self.meta[index].turn,
                    text=content if isinstance(content, str) else json.dumps(content),
                    timestamp=self.meta[index].timestamp,
                    messages_after=len(self.messages) - index,
                )
            )
        return points

    def undo_start(self, turns: int) -> tuple[int, int, bool] | None:
        """Return (first index to drop, first turn dropped, whether that turn's start was compacted away).

        Undo never stops at injected guidance. When the last turn's own user message was folded into a
        compaction summary, one undo removes what follows that summary.
        """
        users = self.real_user_indices()
        summaries = [i for i, meta in enumerate(self.meta) if meta.kind == "summary"]
        if turns == 1 and summaries and users:
            last = summaries[-1]
            if users[-1] < last and self.meta[last].turn > self.meta[users[-1]].turn:
                return last + 1, self.meta[last].turn, True
        if not users:
            return None
        index = users[-max(1, min(turns, len(users)))]
        return index, self.meta[index].turn, False

    def truncate(self, index: int) -> int:
        """Drop every message from `index` on; return how many were dropped."""
        index = max(1, index)
        dropped = len(self.messages) - index
        del self.messages[index:]
        del self.meta[index:]
        self.turn = max((m.turn for m in self.meta), default=0)
        return dropped

    def to_records(self, start: int = 0) -> list[dict[str, Any]]:
        """Serialise messages from `start` on with their metadata (for saving sessions)."""
        return [
            {"message": message, "kind": meta.kind, "turn": meta.turn, "ts": meta.timestamp}
            for message, meta in zip(self.messages[start:], self.meta[start:], strict=True)
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
            meta = MessageMeta(record.get("kind", "assistant"), int(record.get("turn", 0)))
            if isinstance(record.get("ts"), (int, float)):
                meta.timestamp = float(record["ts"])
            self.meta.append(meta)
        self.turn = max((m.turn for m in self.meta), default=0)


# ---------------------------------------------------------------------------------------------------------------
# File snapshots for undo (kept in the data dir, never in the user's repository)


@dataclass
class TurnChanges:
    """What one user turn changed: files we can restore, effects we cannot."""

    turn: int
    # Absolute path -> snapshot copy (None: the file did not exist before the turn).
    files: dict[str, str | None] = field(default_factory=dict)
    side_effects: list[str] = field(default_factory=list)
    plan_before: list[dict[str, Any]] | None = None


class SnapshotStore:
    """Copies a file before its first change in a turn, so undo can put it back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.turns: dict[int, TurnChanges] = {}
        self._load_index()

    def _changes(self, turn: int) -> TurnChanges:
        return self.turns.setdefault(turn, TurnChanges(turn))

    @property
    def _index_path(self) -> Path:
        return self.root / "index.json"

    def _load_index(self) -> None:
        """Pick up the snapshots of an earlier run of this session (so undo works after resume)."""
        try:
            data = json.loads(self._index_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for item in data if isinstance(data, list) else []:
            try:
                changes = TurnChanges(
                    int(item["turn"]),
                    dict(item.get("files") or {}),
                    list(item.get("side_effects") or []),
                    item.get("plan_before"),
                )
            except (KeyError, TypeError, ValueError):
                continue
            self.turns[changes.turn] = changes

    def _save_index(self) -> None:
        data = [
            {"turn": c.turn, "files": c.files, "side_effects": c.side_effects, "plan_before": c.plan_before}
            for c in self.turns.values()
        ]
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = self._index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self._index_path)
        except OSError:
            pass  # undo then only covers this run; never fail a tool over it

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
        self._save_index()

    def remember_plan(self, turn: int, plan: list[dict[str, Any]]) -> None:
        """Keep the plan as it was when `turn` started (undo puts it back)."""
        changes = self._changes(turn)
        if changes.plan_before is None:
            changes.plan_before = [dict(item) for item in plan]
            self._save_index()

    def plan_before(self, turn: int) -> list[dict[str, Any]] | None:
        """Return the plan saved at the start of `turn`, if any."""
        changes = self.turns.get(turn)
        return changes.plan_before if changes is not None else None

    def side_effect(self, turn: int, description: str) -> None:
        """Remember an effect undo cannot reverse."""
        self._changes(turn).side_effects.append(description)
        self._save_index()

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
        self._save_index()
        return restored, not_undone

    def forget_from(self, first_turn: int) -> list[str]:
        """Drop snapshots of `first_turn` and later without restoring; return effects that stay."""
        effects: list[str] = []
        for turn in [t for t in self.turns if t >= first_turn]:
            effects.extend(self.turns.pop(turn).side_effects)
        self._save_index()
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

SUMMARY_NOTE = "[ml-intern: earlier work in this session was compacted. Summary of what happened so far:]\n"

TRUNCATED_OUTPUT = (
    "[output truncated to save context; original was {n} tokens. Re-run the tool if you need it.]"
)

SHRUNK_MARKER = "\n\n[... {n} tokens cut here to save context ...]\n\n"


class CompactionError(Exception):
    """Compaction could not bring the history under the limit."""


@dataclass
class CompactionResult:
    """Before and after token counts and what was done."""

    old_tokens: int
    new_tokens: int
    summarised_messages: int
    truncated_outputs: int
    method: str  # summary, truncation, summary+truncation, none
    # Why nothing was summarised (empty when a summary was made).
    skipped_reason: str = ""


# `summarise(messages, max_tokens)` returns the summary text; raising falls back to truncation.
Summariser = Callable[[list[dict[str, Any]], int], Awaitable[str]]


def _cost(history: History, index: int) -> int:
    meta = history.meta[index]
    if meta.tokens is None:
        meta.tokens = message_tokens(history.messages[index])
    return meta.tokens


def _tail_start(history: History, budget: int, floor: int) -> int:
    """Pick the first index of the kept tail: the recent messages that fit `budget`, never splitting a call."""
    messages = history.messages
    used = 0
    index = len(messages)
    for candidate in range(len(messages) - 1, floor - 1, -1):
        cost = _cost(history, candidate)
        if used + cost > budget and index < len(messages):
            break
        used += cost
        index = candidate
    # A tail must not begin with tool results whose call would be summarised away: take the call along.
    while index < len(messages) and messages[index].get("role") == "tool":
        issuer = index - 1
        while issuer >= floor and messages[issuer].get("role") == "tool":
            issuer -= 1
        if (
            issuer >= floor
            and messages[issuer].get("role") == "assistant"
            and messages[issuer].get("tool_calls")
        ):
            index = issuer
        else:
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
            lines.append(f"[tool result: {message.get('name')}]\n{shrink_text(content, max_tool_tokens)}")
        elif role == "assistant":
            text = content
            for call in message.get("tool_calls") or []:
                args = call["function"].get("arguments", "")
                if len(args) > 1500:
                    args = args[:1500] + "...[cut]"
                text += f"\n-> call {call['function']['name']}({args})"
            lines.append(f"[assistant]\n{text.strip()}")
        else:
            lines.append(f"[{role}]\n{content}")
    return "\n\n".join(lines)


def shrink_text(text: str, max_tokens: int) -> str:
    """Keep the start and the end of `text` within about `max_tokens` tokens, marking the cut."""
    total = count_text_tokens(text)
    if total <= max_tokens:
        return text
    keep = max(20, max_tokens - 20)
    encoder = _tiktoken_encoder()
    if encoder is not None:
        tokens = encoder.encode(text, disallowed_special=())
        head, tail = encoder.decode(tokens[: keep // 2]), encoder.decode(tokens[-(keep - keep // 2) :])
    else:
        chars = int(keep * 3.6)
        head, tail = text[: chars // 2], text[-(chars - chars // 2) :]
    return head + SHRUNK_MARKER.format(n=total - keep) + tail


async def compact_history(
    history: History,
    tools: list[dict[str, Any]],
    *,
    limit_tokens: int,
    context_window: int,
    summarise: Summariser | None,
    tail_tokens: int | None = None,
    truncate: bool = True,
) -> CompactionResult:
    """Shrink the history below `limit_tokens`.

    Keeps the system prompt, the first task and a recent tail (which may be the middle of one long turn),
    summarises everything between, then (when `truncate`) cuts tool outputs until the history fits.
    """
    old_tokens = history.tokens(tools)
    history.patch_dangling_tool_calls()
    real_users = history.real_user_indices()
    head_end = (real_users[0] + 1) if real_users else 1
    fixed = 3 + tools_tokens(tools) + sum(_cost(history, i) for i in range(head_end))
    room = limit_tokens - fixed
    if room <= 0 and truncate:
        raise CompactionError(
            f"the system prompt, tool definitions and the task alone take {fixed:,} tokens, over the limit of "
            f"{limit_tokens:,}"
        )
    summary_tokens = max(128, min(2048, room // 3))
    if tail_tokens is None:
        tail_tokens = max(0, min(int((room - summary_tokens) * 0.8), context_window // 4))
    tail_start = max(head_end, _tail_start(history, tail_tokens, head_end))
    middle = history.messages[head_end:tail_start]
    summarised = 0
    method: list[str] = []
    skipped = ""
    if not middle:
        kept = len(history.messages) - head_end
        skipped = f"the {kept} message{'s' if kept != 1 else ''} after the task are recent enough to keep as they are"
    elif summarise is None:
        skipped = "no summariser"
    else:
        middle_tokens = sum(_cost(history, i) for i in range(head_end, tail_start))
        summary = await _summarise_middle(
            history, middle, head_end, context_window, summary_tokens, summarise
        )
        note = SUMMARY_NOTE + summary
        if not summary:
            skipped = "the model returned an empty summary"
        elif message_tokens({"role": "user", "content": note}) >= middle_tokens:
            skipped = f"a summary would not be shorter than the {len(middle)} messages it replaces"
        else:
            middle_turns = {history.meta[i].turn for i in range(head_end, tail_start)}
            del history.messages[head_end:tail_start]
            del history.meta[head_end:tail_start]
            history.messages.insert(head_end, {"role": "user", "content": note})
            history.meta.insert(head_end, MessageMeta("summary", max(middle_turns, default=history.turn)))
            summarised = len(middle)
            method.append("summary")
    truncated = _truncate_tool_outputs(history, tools, limit_tokens) if truncate else 0
    if truncated:
        method.append("truncation")
    new_tokens = history.tokens(tools)
    if truncate and new_tokens > limit_tokens:
        raise CompactionError(
            f"the history is still {new_tokens:,} tokens after compaction (limit {limit_tokens:,}); the kept "
            "messages alone are too large"
        )
    return CompactionResult(
        old_tokens,
        new_tokens,
        summarised,
        truncated,
        "+".join(method) or "none",
        "" if summarised else skipped,
    )


async def _summarise_middle(
    history: History,
    middle: list[dict[str, Any]],
    head_end: int,
    context_window: int,
    summary_tokens: int,
    summarise: Summariser,
) -> str:
    """Ask the model for a summary of `middle`; the request itself is sized to fit the window."""
    task = ""
    if head_end > 1 and isinstance(history.messages[head_end - 1].get("content"), str):
        task = shrink_text(history.messages[head_end - 1]["content"], max(100, context_window // 20))
    excerpt = _render_for_summary(middle, max_tool_tokens=max(150, context_window // 40))
    budget = max(
        800, int(context_window * 0.75) - summary_tokens - count_text_tokens(SUMMARY_PROMPT + task) - 50
    )
    excerpt = shrink_text(excerpt, budget)
    request = [{"role": "system", "content": SUMMARY_PROMPT}]
    body = (
        (f"The task the agent is working on:\n{task}\n\n" if task else "")
        + "Conversation excerpt:\n\n"
        + excerpt
    )
    request.append({"role": "user", "content": body})
    return (await summarise(request, summary_tokens)).strip()


def _truncate_tool_outputs(history: History, tools: list[dict[str, Any]], limit_tokens: int) -> int:
    """Cut tool outputs (oldest first, then the largest recent ones) until the history fits; return how many."""
    if history.tokens(tools) <= limit_tokens:
        return 0
    messages = history.messages
    truncated = 0
    last_call = max(
        (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages)
    )
    # Outputs the model has already answered: a placeholder is enough.
    for index, message in enumerate(messages[:last_call]):
        if message.get("role") != "tool" or _cost(history, index) < 200:
            continue
        messages[index] = {**message, "content": TRUNCATED_OUTPUT.format(n=_cost(history, index))}
        history.meta[index].tokens = None
        truncated += 1
        if history.tokens(tools) <= limit_tokens:
            return truncated
    # Outputs the model has not read yet: keep their start and end, largest first.
    recent = sorted(
        (i for i, m in enumerate(messages) if m.get("role") == "tool" and isinstance(m.get("content"), str)),
        key=lambda i: -_cost(history, i),
    )
    for index in recent:
        excess = history.tokens(tools) - limit_tokens
        if excess <= 0:
            return truncated
        cost = _cost(history, index)
        if cost < 150:
            continue
        target = max(100, cost - excess - 40)
        messages[index] = {**messages[index], "content": shrink_text(messages[index]["content"], target)}
        history.meta[index].tokens = None
        truncated += 1
    if history.tokens(tools) <= limit_tokens:
        return truncated
    # Last resort: long assistant arguments and pasted text after the task.
    for index in range(2, len(messages)):
        message = messages[index]
        meta = history.meta[index]
        if meta.kind in ("task", "system") or _cost(history, index) < 500:
            continue
        if message.get("role") == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = dict(call["function"])
                if len(function.get("arguments", "")) > 400:
                    function["arguments"] = json.dumps({"_truncated": "arguments removed to save context"})
                calls.append({**call, "function": function})
            messages[index] = {**message, "tool_calls": calls}
        elif isinstance(message.get("content"), str):
            messages[index] = {**message, "content": shrink_text(message["content"], 300)}
        meta.tokens = None
        truncated += 1
        if history.tokens(tools) <= limit_tokens:
            break
    return truncated
