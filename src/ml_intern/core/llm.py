"""litellm behind the LLMClient seam: model routing, streaming assembly, retries and friendly errors."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml_intern.core.llm_types import (
    ContextOverflowError,
    LLMError,
    LLMRequest,
    LLMResponse,
    LLMToolCall,
    TokenUsage,
)

HF_ROUTER_BASE_URL = "https://router.huggingface.co/v1"

LOCAL_PREFIXES: dict[str, tuple[str, str, str]] = {
    # prefix: (base-url env, default base, api-key env)
    "ollama/": ("OLLAMA_BASE_URL", "http://localhost:11434", "OLLAMA_API_KEY"),
    "vllm/": ("VLLM_BASE_URL", "http://localhost:8000", "VLLM_API_KEY"),
    "lm_studio/": ("LMSTUDIO_BASE_URL", "http://127.0.0.1:1234", "LMSTUDIO_API_KEY"),
    "llamacpp/": ("LLAMACPP_BASE_URL", "http://localhost:8080", "LLAMACPP_API_KEY"),
}
LOCAL_DEFAULT_KEY = "sk-local-no-key-required"

# Providers litellm talks to directly when their key is set (otherwise the id goes through the HF router).
_DIRECT_PROVIDERS = {
    "anthropic/": "ANTHROPIC_API_KEY",
    "openai/": "OPENAI_API_KEY",
    "gemini/": "GEMINI_API_KEY",
    "mistral/": "MISTRAL_API_KEY",
    "groq/": "GROQ_API_KEY",
    "openrouter/": "OPENROUTER_API_KEY",
    "deepseek/": "DEEPSEEK_API_KEY",
    "xai/": "XAI_API_KEY",
    "together_ai/": "TOGETHERAI_API_KEY",
}

# Shown by /model; any litellm id, Hugging Face router id or local prefix also works.
SUGGESTED_MODELS: list[tuple[str, str]] = [
    ("anthropic/claude-opus-4.8:fal-ai", "Claude Opus 4.8 (HF router)"),
    ("openai/gpt-5.5:fal-ai", "GPT-5.5 (HF router)"),
    ("moonshotai/Kimi-K2.6:novita", "Kimi K2.6 (HF router)"),
    ("zai-org/GLM-5.1:novita", "GLM 5.1 (HF router)"),
    ("deepseek-ai/DeepSeek-V4-Pro:novita", "DeepSeek V4 Pro (HF router)"),
    ("MiniMaxAI/MiniMax-M2.7:novita", "MiniMax M2.7 (HF router)"),
    ("ollama/llama3.1:8b", "Llama 3.1 8B on a local Ollama"),
    ("vllm/Qwen/Qwen3-8B", "A model on a local vLLM server"),
]

_litellm: Any = None


def load_litellm() -> Any:
    """Import litellm once, offline-safe and quiet (about 3 s: call it off the first-paint path)."""
    global _litellm
    if _litellm is not None:
        return _litellm
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    import logging
    import warnings

    warnings.filterwarnings("ignore", module="litellm")
    import litellm

    litellm.drop_params = True
    litellm.suppress_debug_info = True
    litellm.telemetry = False
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "litellm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    gc.freeze()  # litellm's import creates many long-lived objects; keep them out of every GC pass
    _litellm = litellm
    return litellm


def is_local_model(model_id: str) -> bool:
    """Return whether the id names a local OpenAI-compatible server."""
    return any(model_id.startswith(prefix) for prefix in LOCAL_PREFIXES)


def validate_model_id(model_id: str) -> str | None:
    """Return an error message for an unusable model id, or None."""
    model_id = model_id.strip()
    if not model_id or any(c.isspace() for c in model_id):
        return "the model id must be non-empty and contain no spaces"
    for prefix in LOCAL_PREFIXES:
        if model_id.startswith(prefix) and not model_id[len(prefix) :]:
            return f"'{prefix}' needs a model name after it, e.g. {prefix}llama3.1:8b"
    if "/" not in model_id:
        return (
            f"'{model_id}' is not a model id: use provider/model (anthropic/..., openai/...), a Hugging Face id "
            "like moonshotai/Kimi-K2.6, or a local prefix (ollama/, vllm/, lm_studio/, llamacpp/)"
        )
    return None


def _normalise_base(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def resolve_model(model_id: str, env: dict[str, str] | None = None, hf_token: str | None = None) -> dict[str, Any]:
    """Map a user-facing model id to litellm parameters (model, api_base, api_key)."""
    environ = os.environ if env is None else env
    model_id = model_id.strip()
    if model_id.startswith("huggingface/"):
        model_id = model_id[len("huggingface/") :]
    for prefix, (base_env, default_base, key_env) in LOCAL_PREFIXES.items():
        if model_id.startswith(prefix):
            base = environ.get(base_env) or environ.get("LOCAL_LLM_BASE_URL") or default_base
            key = environ.get(key_env) or environ.get("LOCAL_LLM_API_KEY") or LOCAL_DEFAULT_KEY
            return {
                "model": "openai/" + model_id[len(prefix) :],
                "api_base": _normalise_base(base),
                "api_key": key,
                "_route": "local",
            }
    if ":" not in model_id:
        for prefix, key_env in _DIRECT_PROVIDERS.items():
            if model_id.startswith(prefix) and environ.get(key_env):
                return {"model": model_id, "_route": "direct"}
    token = hf_token or environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN")
    if not token:
        try:
            from huggingface_hub import get_token

            token = get_token()
        except Exception:
            token = None
    base = environ.get("HF_ROUTER_BASE_URL") or HF_ROUTER_BASE_URL
    return {"model": "openai/" + model_id, "api_base": base, "api_key": token or "", "_route": "hf_router"}


_DEFAULT_WINDOW = 200_000
_LOCAL_DEFAULT_WINDOW = 32_768


def context_window_for(model_id: str, override: int | None = None) -> int:
    """Return the model's input window: the config override, litellm's local cost map, or a safe default."""
    if override:
        return int(override)
    if is_local_model(model_id):
        return _LOCAL_DEFAULT_WINDOW
    try:
        litellm = load_litellm()
    except Exception:
        return _DEFAULT_WINDOW
    bare = model_id.split(":", 1)[0]
    candidates = [model_id, bare, bare.split("/", 1)[-1], bare.lower(), bare.split("/", 1)[-1].lower()]
    cost_map: dict[str, Any] = getattr(litellm, "model_cost", {}) or {}
    for key in candidates:
        info = cost_map.get(key)
        if isinstance(info, dict):
            window = info.get("max_input_tokens") or info.get("max_tokens")
            if isinstance(window, int) and window > 0:
                return window
    return _DEFAULT_WINDOW


# ---------------------------------------------------------------------------------------------------------------
# Error classification


_OVERFLOW_PATTERNS = re.compile(
    r"context[_ ]window|maximum context length|max context length|prompt is too long|context length exceeded|"
    r"context_length_exceeded|too many input tokens|input is too long|reduce the length of the messages",
    re.I,
)
_CREDIT_PATTERNS = re.compile(r"\b402\b|payment required|insufficient[_ ]quota|credit|billing|exceeded your", re.I)
_RATE_PATTERNS = re.compile(r"\b429\b|rate.?limit|too many requests|throttl", re.I)
_TRANSIENT_PATTERNS = re.compile(
    r"timeout|timed out|\b50[0234]\b|service unavailable|bad gateway|internal server error|overloaded|capacity|"
    r"connection (reset|refused|error|aborted)|eof|broken pipe|incomplete chunked|peer closed|"
    r"server disconnected|remote ?protocol|stream (ended|interrupted|closed)",
    re.I,
)


@dataclass
class ErrorClass:
    """How to treat one failed attempt."""

    kind: str
    retryable: bool
    retry_after_s: float | None = None


def _status_of(exc: BaseException) -> int | None:
    for attr in ("status_code", "code", "http_status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _retry_after(exc: BaseException) -> float | None:
    headers: Any = None
    response = getattr(exc, "response", None)
    if response is not None:
        headers = getattr(response, "headers", None)
    headers = headers or getattr(exc, "litellm_response_headers", None) or getattr(exc, "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        ms = headers.get("retry-after-ms")
    except Exception:
        return None
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def classify_error(exc: BaseException) -> ErrorClass:
    """Decide whether a failure is retryable and what kind it is."""
    name = type(exc).__name__
    text = f"{name}: {exc}"
    status = _status_of(exc)
    if name == "ContextWindowExceededError" or _OVERFLOW_PATTERNS.search(text):
        return ErrorClass("context_overflow", False)
    if name == "AuthenticationError" or status in (401, 403):
        return ErrorClass("auth", False)
    if status == 402 or (name != "RateLimitError" and _CREDIT_PATTERNS.search(text) and status != 429):
        return ErrorClass("credits", False)
    if name == "RateLimitError" or status == 429 or _RATE_PATTERNS.search(text):
        return ErrorClass("rate_limit", True, _retry_after(exc))
    if name == "NotFoundError" or status == 404 or "model_not_found" in text or "does not exist" in text:
        return ErrorClass("model_not_found", False)
    if name in ("Timeout", "APIConnectionError", "ServiceUnavailableError", "InternalServerError", "APIError"):
        return ErrorClass("transient", True, _retry_after(exc))
    if isinstance(exc, (TimeoutError, ConnectionError, asyncio.IncompleteReadError)):
        return ErrorClass("transient", True)
    if status is not None and status >= 500:
        return ErrorClass("transient", True, _retry_after(exc))
    if name == "BadRequestError" or status == 400:
        return ErrorClass("bad_request", False)
    if _TRANSIENT_PATTERNS.search(text):
        return ErrorClass("transient", True)
    return ErrorClass("error", False)


def friendly_message(kind: str, exc: BaseException, model_id: str) -> str:
    """Write the error for a person: what happened and what to do next."""
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    route = resolve_model(model_id).get("_route", "")
    if kind == "auth":
        if route == "hf_router":
            return (
                f"Authentication failed for {model_id}: your Hugging Face token is missing or invalid. "
                "Set HF_TOKEN or run `hf auth login`, or pick a local model with /model."
            )
        if route == "local":
            return f"The local server rejected the API key for {model_id}. Check the *_API_KEY variable. ({detail})"
        return f"Authentication failed for {model_id}: check the provider API key. ({detail})"
    if kind == "credits":
        return (
            f"The provider says you are out of credits for {model_id} (HTTP 402). Add credits at "
            "https://huggingface.co/settings/billing or switch to another model with /model."
        )
    if kind == "model_not_found":
        return f"Model not found: '{model_id}'. Check the id, or use /model to pick another one. ({detail})"
    if kind == "context_overflow":
        return f"The request is larger than the context window of {model_id}. ({detail})"
    if kind == "rate_limit":
        return f"Rate limited by the provider of {model_id} and retries ran out. Wait a moment and retry. ({detail})"
    if kind == "transient":
        if route == "local":
            return f"Cannot reach the local model server for {model_id}: {detail}. Is it running?"
        return f"The model provider for {model_id} kept failing: {detail}"
    if kind == "bad_request":
        return f"The provider rejected the request for {model_id}: {detail}"
    return f"LLM call failed for {model_id}: {detail}"


# ---------------------------------------------------------------------------------------------------------------
# The client


RetryNotice = Callable[[int, float, str], None]


class LiteLLMClient:
    """An LLMClient over litellm with retries that honour Retry-After and can be interrupted."""

    def __init__(
        self,
        *,
        timeout_s: float = 600.0,
        max_retries: int = 4,
        base_delay_s: float = 2.0,
        max_retry_after_s: float = 120.0,
        stall_timeout_s: float = 120.0,
        on_retry: RetryNotice | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.max_retries = max(1, max_retries)
        self.base_delay_s = base_delay_s
        self.max_retry_after_s = max_retry_after_s
        self.on_retry = on_retry
        self.env = env

    @classmethod
    def from_settings(cls, settings: Any, on_retry: RetryNotice | None = None) -> LiteLLMClient:
        """Build a client from Settings."""
        return cls(
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            base_delay_s=settings.retry_base_delay_s,
            max_retry_after_s=settings.max_retry_after_s,
            stall_timeout_s=settings.llm_stall_timeout_s,
            on_retry=on_retry,
        )

    def _params(self, request: LLMRequest) -> dict[str, Any]:
        resolved = resolve_model(request.model, self.env)
        route = resolved.pop("_route")
        params: dict[str, Any] = {
            **resolved,
            "messages": request.messages,
            "timeout": self.timeout_s,
            "num_retries": 0,
        }
        if request.tools:
            params["tools"] = request.tools
            params["tool_choice"] = "auto"
        if request.max_tokens:
            params["max_tokens"] = request.max_tokens
        if request.reasoning_effort and route != "local":
            if route == "hf_router":
                params["extra_body"] = {"reasoning_effort": request.reasoning_effort}
            else:
                params["reasoning_effort"] = request.reasoning_effort
        return params

    async def complete(self, request: LLMRequest, on_chunk: Callable[[str], None] | None = None) -> LLMResponse:
        """Run the request with retries; raise LLMError (or ContextOverflowError) when it cannot succeed."""
        litellm = load_litellm()
        params = self._params(request)
        attempt = 0
        while True:
            attempt += 1
            streamed_any = False

            def relay(text: str) -> None:
                nonlocal streamed_any
                streamed_any = True
                if on_chunk is not None:
                    on_chunk(text)

            try:
                if request.stream:
                    response = await self._stream(litellm, params, relay)
                else:
                    response = await self._once(litellm, params)
                response.model = request.model
                return response
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                verdict = classify_error(exc)
                if verdict.kind == "context_overflow":
                    raise ContextOverflowError(friendly_message("context_overflow", exc, request.model)) from exc
                if not verdict.retryable or attempt >= self.max_retries:
                    raise LLMError(
                        friendly_message(verdict.kind, exc, request.model), verdict.kind, verdict.retryable
                    ) from exc
                delay = self._delay(attempt, verdict)
                if delay is None:
                    raise LLMError(
                        friendly_message(verdict.kind, exc, request.model)
                        + f" The provider asked to wait longer than {self.max_retry_after_s:.0f} s.",
                        verdict.kind,
                    ) from exc
                reason = f"{verdict.kind.replace('_', ' ')}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__}"
                if streamed_any:
                    reason += " (partial reply discarded)"
                if self.on_retry is not None:
                    self.on_retry(attempt, delay, reason)
                await asyncio.sleep(delay)  # cancellable: an interrupt ends the wait at once

    def _delay(self, attempt: int, verdict: ErrorClass) -> float | None:
        if verdict.retry_after_s is not None:
            if verdict.retry_after_s > self.max_retry_after_s:
                return None
            return verdict.retry_after_s
        base = self.base_delay_s * (2 ** (attempt - 1))
        if verdict.kind == "rate_limit":
            base *= 2
        return min(base, self.max_retry_after_s) * (0.8 + 0.4 * random.random())

    async def _once(self, litellm: Any, params: dict[str, Any]) -> LLMResponse:
        raw = await litellm.acompletion(stream=False, **params)
        choice = raw.choices[0]
        message = choice.message
        calls = [
            LLMToolCall(id=tc.id or f"call_{i}", name=tc.function.name or "", arguments=tc.function.arguments or "")
            for i, tc in enumerate(getattr(message, "tool_calls", None) or [])
        ]
        usage = _usage_of(getattr(raw, "usage", None))
        return LLMResponse(
            content=message.content or "",
            tool_calls=calls,
            finish_reason=choice.finish_reason,
            usage=usage,
            cost_usd=_cost(litellm, params["model"], usage),
        )

    async def _stream(self, litellm: Any, params: dict[str, Any], relay: Callable[[str], None]) -> LLMResponse:
        stream = await litellm.acompletion(stream=True, stream_options={"include_usage": True}, **params)
        content: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish_reason: str | None = None
        usage = TokenUsage()
        chunks = stream.__aiter__()
        try:
            while True:
                try:
                    # A stream that goes silent mid-reply is treated like a dropped connection and retried.
                    chunk = await asyncio.wait_for(chunks.__anext__(), self.stall_timeout_s)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    raise TimeoutError(f"the stream stalled: no data for {self.stall_timeout_s:.0f} s") from None
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage:
                    usage = _usage_of(chunk_usage)
                for choice in getattr(chunk, "choices", None) or []:
                    delta = choice.delta
                    text = getattr(delta, "content", None)
                    if text:
                        content.append(text)
                        relay(text)
                    for tc in getattr(delta, "tool_calls", None) or []:
                        index = tc.index if getattr(tc, "index", None) is not None else len(calls)
                        slot = calls.setdefault(index, {"id": "", "name": "", "arguments": []})
                        if tc.id:
                            slot["id"] = tc.id
                        function = getattr(tc, "function", None)
                        if function is not None:
                            if function.name:
                                slot["name"] += function.name
                            if function.arguments:
                                slot["arguments"].append(function.arguments)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:
                    pass
        if finish_reason is None and not content and not calls:
            raise ConnectionError("stream ended before any data arrived")
        if finish_reason is None:
            raise ConnectionError("stream interrupted before the model finished")
        tool_calls = [
            LLMToolCall(id=slot["id"] or f"call_{index}", name=slot["name"], arguments="".join(slot["arguments"]))
            for index, slot in sorted(calls.items())
        ]
        return LLMResponse(
            content="".join(content),
            tool_calls=tool_calls,
            finish_reason=finish_reason,
            usage=usage,
            cost_usd=_cost(litellm, params["model"], usage),
        )


def _usage_of(raw: Any) -> TokenUsage:
    if not raw:
        return TokenUsage()
    get = raw.get if isinstance(raw, dict) else lambda k, d=0: getattr(raw, k, d)
    prompt = int(get("prompt_tokens", 0) or 0)
    completion = int(get("completion_tokens", 0) or 0)
    total = int(get("total_tokens", 0) or 0) or prompt + completion
    return TokenUsage(prompt, completion, total)


def _cost(litellm: Any, model: str, usage: TokenUsage) -> float:
    if not usage.total_tokens:
        return 0.0
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
        )
        return float(prompt_cost + completion_cost)
    except Exception:
        return 0.0
