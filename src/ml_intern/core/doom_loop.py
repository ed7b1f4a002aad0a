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
        # Calls before this index belong to streaks already reported or broken; new streaks start after it.
        self._window_start = 0
        # The reported pattern while the model keeps following it, and the position expected next.
        self._active: tuple[tuple[CallSignature, ...], int] | None = None

    def reset(self) -> None:
        """Forget everything (new user turn)."""
        self.history.clear()
        self._window_start = 0
        self._active = None

    def record(self, sig: CallSignature) -> None:
        """Add a finished call; a call that breaks a reported pattern ends its streak."""
        self.history.append(sig)
        if self._active is not None:
            pattern, position = self._active
            if sig == pattern[position % len(pattern)]:
                self._active = (pattern, position + 1)
            else:
                self._active = None
                self._window_start = len(self.history) - 1

    def check(self) -> LoopFinding | None:
        """Return a finding for a new streak, or None (a reported streak that continues stays quiet)."""
        if self._active is not None:
            return None
        tail = self.history[self._window_start :]
        finding = self._identical(tail)
        if finding is not None:
            self._active = ((tail[-1],), 0)
            return finding
        finding, block = self._cycle(tail)
        if finding is not None:
            self._active = (tuple(block), 0)
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

    def _cycle(self, tail: list[CallSignature]) -> tuple[LoopFinding | None, list[CallSignature]]:
        for length in range(2, self.MAX_CYCLE + 1):
            if len(tail) < 2 * length:
                break
            block = tail[-length:]
            if tail[-2 * length : -length] == block and len(set(block)) > 1:
                names = [s.name for s in block]
                return LoopFinding(
                    "cycle",
                    names,
                    "[ml-intern repetition guard] You are repeating the same cycle of tool calls ("
                    + " -> ".join(names)
                    + ") with the same results. Break the cycle: change approach, inspect the state differently, "
                    "or tell the user what you are stuck on.",
                ), block
        return None, []
