"""Plain types at the LLM seam: what the loop sends, what a model client returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class LLMToolCall:
    """One tool call assembled from the model's output."""

    id: str
    name: str
    arguments: str  # raw JSON text, parsed later by the loop


@dataclass
class TokenUsage:
    """Token counts reported by the provider (zeros when it reports none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass
class LLMRequest:
    """One call to the model."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = True
    max_tokens: int | None = None
    reasoning_effort: str | None = None
    purpose: str = "main"  # main, compaction, research, probe


@dataclass
class LLMResponse:
    """The assembled answer of one call."""

    content: str = ""
    tool_calls: list[LLMToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    model: str = ""


class LLMError(Exception):
    """An LLM call failed for good; `message` is written for the user, `kind` classifies it."""

    def __init__(self, message: str, kind: str = "error", retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # auth, credits, model_not_found, context_overflow, rate_limit, transient, bad_request, error
        self.retryable = retryable


class ContextOverflowError(LLMError):
    """The request did not fit the model's context window."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="context_overflow")


class LLMClient(Protocol):
    """Anything that can answer an LLMRequest; `on_chunk` receives streamed text as it arrives."""

    async def complete(self, request: LLMRequest, on_chunk: Callable[[str], None] | None = None) -> LLMResponse:
        """Run the request (with retries) and return the assembled response."""
        ...
