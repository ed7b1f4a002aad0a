"""Repetition guard: notice when the model repeats the same calls, say so once per streak."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class CallSignature:
    """A completed tool call reduced to what makes two calls 'the same'."""

    name: str
    args_hash: str
    result_hash: str


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=8).hexdigest()


def canonical_arguments(raw: str) -> str:
    """Normalise JSON arguments so key order and whitespace do not matter."""
    if not raw or not raw.strip():
        return ""
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (json.JSONDecodeError, TypeError, ValueError):
        return raw


def signature(name: str, raw_arguments: str, result: str) -> CallSignature:
    """Build the signature of one finished call."""
    return CallSignature(name, _hash(canonical_arguments(raw_arguments)), _hash(result))


@dataclass
class LoopFinding:
    """What the guard saw and the note it wants the model to read."""

    kind: str  # "identical" or "cycle"
    tools: list[str]
    message: str


class DoomLoopGuard:
    """Tracks finished calls of one turn and fires at most once per streak."""

    IDENTICAL_THRESHOLD = 3
    MAX_CYCLE = 5

    def __init__(self) -> None:
        self.history: list[CallSignature] = []
        # Index in history up to which a finding was already reported; a new streak must start after it.
        self._reported_until = 0

    def reset(self) -> None:
        """Forget everything (new user turn)."""
        self.history.clear()
        self._reported_until = 0

    def record(self, sig: CallSignature) -> None:
        """Add a finished call."""
        self.history.append(sig)

    def check(self) -> LoopFinding | None:
        """Return a finding for a streak not reported before, or None."""
        tail = self.history[self._reported_until :]
        finding = self._identical(tail) or self._cycle(tail)
        if finding is not None:
            self._reported_until = len(self.history)
        return finding

    def _identical(self, tail: list[CallSignature]) -> LoopFinding | None:
        n = self.IDENTICAL_THRESHOLD
        if len(tail) < n:
            return None
        last = tail[-n:]
        if all(sig == last[0] for sig in last):
            name = last[0].name
            return LoopFinding(
                "identical",
                [name],
                f"[ml-intern repetition guard] You called '{name}' {n} times in a row with the same arguments "
                "and got the same result each time. Repeating it will not change anything. Step back: try a "
                "different tool or different arguments, or explain to the user what is blocking you.",
            )
        return None

    def _cycle(self, tail: list[CallSignature]) -> LoopFinding | None:
        for length in range(2, self.MAX_CYCLE + 1):
            if len(tail) < 2 * length:
                break
            block = tail[-length:]
            if tail[-2 * length : -length] == block and len({s for s in block}) > 1:
                names = [s.name for s in block]
                return LoopFinding(
                    "cycle",
                    names,
                    "[ml-intern repetition guard] You are repeating the same cycle of tool calls ("
                    + " -> ".join(names)
                    + ") with the same results. Break the cycle: change approach, inspect the state differently, "
                    "or tell the user what you are stuck on.",
                )
        return None
