"""Shared Hub helpers: endpoint and token, the HfApi factory, safe HTTP, error wording, prices and cost."""

from __future__ import annotations

import functools
import os
import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import anyio

if TYPE_CHECKING:
    import httpx
    from huggingface_hub import HfApi

    from ml_intern.core.tools import ToolContext

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_DATASETS_SERVER = "https://datasets-server.huggingface.co"
DEFAULT_JOB_TIMEOUT = "30m"

# USD per hour (reference table); live prices from the Hub override these.
JOB_PRICES_USD_PER_HOUR: dict[str, float] = {
    "cpu-basic": 0.05,
    "cpu-upgrade": 0.25,
    "cpu-performance": 0.50,
    "cpu-xl": 1.00,
    "t4-small": 0.60,
    "t4-medium": 0.90,
    "l4x1": 1.00,
    "l4x4": 4.00,
    "l40sx1": 2.00,
    "l40sx4": 8.00,
    "l40sx8": 16.00,
    "a10g-small": 1.00,
    "a10g-large": 2.00,
    "a10g-largex2": 4.00,
    "a10g-largex4": 8.00,
    "a100-large": 4.00,
    "a100x4": 16.00,
    "a100x8": 32.00,
    "h200": 10.00,
    "h200x2": 20.00,
    "h200x4": 40.00,
    "h200x8": 80.00,
    "inf2x6": 6.00,
}
SPACE_PRICES_USD_PER_HOUR: dict[str, float] = {
    **JOB_PRICES_USD_PER_HOUR,
    "cpu-basic": 0.0,
    "cpu-upgrade": 0.05,
}
CPU_FLAVORS = frozenset({"cpu-basic", "cpu-upgrade", "cpu-performance", "cpu-xl"})
_PRICE_CACHE_TTL_S = 6 * 3600


def hf_endpoint() -> str:
    """Return the Hub endpoint (HF_ENDPOINT or huggingface.co) without a trailing slash."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hf_token() -> str | None:
    """Return the user's Hugging Face token (HF_TOKEN, saved login...), or None."""
    from huggingface_hub import get_token

    return get_token()


def datasets_server_url() -> str:
    """Return the dataset-viewer base URL: override, the public server, or the custom endpoint itself."""
    override = os.environ.get("HF_DATASETS_SERVER_URL")
    if override:
        return override.rstrip("/")
    endpoint = hf_endpoint()
    return DEFAULT_DATASETS_SERVER if endpoint == DEFAULT_ENDPOINT else endpoint


def is_hf_host(url: str) -> bool:
    """Return True if `url` points to a Hugging Face host that may receive the user's token."""
    try:
        parsed = urlparse(url)
    except ValueError:
        return False
    if parsed.scheme not in ("http", "https"):
        return False
    host = (parsed.hostname or "").lower()
    if not host:
        return False
    # Not *.hf.space: anyone can run a Space there, so it must never receive the token by default.
    for domain in ("huggingface.co", "hf.co"):
        if host == domain or host.endswith("." + domain):
            return parsed.scheme == "https"
    for base in (hf_endpoint(), datasets_server_url()):
        configured = urlparse(base)
        if host == (configured.hostname or "").lower() and parsed.port == configured.port:
            return True
    return False


def auth_headers(url: str) -> dict[str, str]:
    """Return an Authorization header for `url` only when it is a Hugging Face host."""
    token = hf_token()
    if token and is_hf_host(url):
        return {"Authorization": f"Bearer {token}"}
    return {}


def make_api(ctx: ToolContext | None = None) -> HfApi:
    """Return an HfApi for the configured endpoint and token (a registered `hf_api` service wins)."""
    if ctx is not None:
        factory = ctx.services.get("hf_api")
        if factory is not None:
            return factory() if callable(factory) else factory
    from huggingface_hub import HfApi

    return HfApi(endpoint=hf_endpoint(), token=hf_token())


async def in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking call in a worker thread; a cancelled caller does not wait for it."""
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), abandon_on_cancel=True)


_namespace_cache: dict[tuple[str, str], str] = {}


def whoami_name(api: HfApi) -> str:
    """Return the token owner's user name (cached per endpoint and token); blocking."""
    key = (api.endpoint, str(api.token))
    if key not in _namespace_cache:
        _namespace_cache[key] = api.whoami()["name"]
    return _namespace_cache[key]


def http_client(timeout: float = 30.0) -> httpx.AsyncClient:
    """Return an AsyncClient that never adds credentials by itself (use `auth_headers(url)`)."""
    import httpx

    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers={"User-Agent": "ml-intern"})


async def safe_get(
    client: httpx.AsyncClient, url: str, *, params: dict[str, Any] | None = None, max_redirects: int = 5
) -> httpx.Response:
    """GET with redirects followed by hand, so the token is re-decided for every hop."""
    for _ in range(max_redirects + 1):
        response = await client.get(url, params=params, headers=auth_headers(url))
        if response.is_redirect and "location" in response.headers:
            url = str(response.url.join(response.headers["location"]))
            params = None
            continue
        return response
    return response


def describe_http_error(exc: BaseException, what: str) -> str:
    """Turn a Hub or HTTP error into one clear sentence for the model."""
    status = _status_of(exc)
    detail = _server_message(exc)
    if status == 401:
        hint = "" if hf_token() else " No Hugging Face token is set (export HF_TOKEN)."
        return f"{what}: not authorized (401). Private or gated resources need a token with access.{hint}{detail}"
    if status == 403:
        return (
            f"{what}: access denied (403). If it is gated, accept its conditions on the Hub page, "
            f"and make sure your token has the needed permission.{detail}"
        )
    if status == 404:
        return f"{what}: not found (404). Check the id, repo_type and revision.{detail}"
    if status == 402:
        return (
            f"{what}: payment required (402). The account has no credits or billing set up; add a payment "
            f"method or credits at https://huggingface.co/settings/billing, or use a namespace with billing.{detail}"
        )
    if status == 409:
        return f"{what}: conflict (409), it probably exists already.{detail}"
    if status == 429:
        return f"{what}: rate limited (429); wait a little and retry.{detail}"
    if status is not None and status >= 500:
        return f"{what}: the Hub had a server error ({status}); retry later.{detail}"
    if status is not None:
        return f"{what}: HTTP {status}.{detail}"
    name = type(exc).__name__
    if "Connect" in name or "Timeout" in name or isinstance(exc, OSError):
        return f"{what}: could not reach the server ({name}). Check the network or HF_ENDPOINT."
    return f"{what}: {name}: {exc}"


def _status_of(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _server_message(exc: BaseException) -> str:
    server = getattr(exc, "server_message", None)
    if server:
        return f" Server said: {str(server).strip()[:300]}"
    response = getattr(exc, "response", None)
    try:
        body = response.json() if response is not None else None
    except Exception:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return f" Server said: {str(body['error'])[:300]}"
    return ""


def is_payment_error(exc: BaseException) -> bool:
    """Return True for a 402 (no credits / billing) error."""
    return _status_of(exc) == 402


# ---------------------------------------------------------------------------------------------- prices and cost

_live_prices: dict[str, float] = {}
_live_prices_at = 0.0
_price_failure_at = 0.0
_PRICE_RETRY_S = 600
_price_lock = threading.Lock()


def parse_timeout_hours(timeout: Any) -> float | None:
    """Hours in a job timeout: None/"" is the 30 min default; numbers are seconds; `<n>[s|m|h|d]`."""
    if timeout is None or timeout == "":
        return 0.5
    if isinstance(timeout, bool):
        return None
    if isinstance(timeout, (int, float)):
        return timeout / 3600 if timeout > 0 else None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(timeout).lower())
    if not match:
        return None
    value = float(match.group(1))
    factor = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    seconds = value * factor
    return seconds / 3600 if seconds > 0 else None


def timeout_seconds(timeout: Any) -> int | None:
    """Seconds in a job timeout, or None when it cannot be parsed."""
    hours = parse_timeout_hours(timeout)
    return None if hours is None else round(hours * 3600)


def refresh_job_prices(api: HfApi) -> dict[str, float]:
    """Fetch live job prices from the Hub (cached 6 h); blocking. Falls back silently to the table."""
    global _live_prices_at
    global _price_failure_at
    with _price_lock:
        if _live_prices and time.time() - _live_prices_at < _PRICE_CACHE_TTL_S:
            return dict(_live_prices)
        if time.time() - _price_failure_at < _PRICE_RETRY_S:
            return {}
    try:
        hardware = api.list_jobs_hardware()
    except Exception:
        _price_failure_at = time.time()
        return {}
    prices: dict[str, float] = {}
    for item in hardware:
        per_unit = float(getattr(item, "unit_cost_usd", 0.0) or 0.0)
        unit = str(getattr(item, "unit_label", "minute") or "minute").lower()
        factor = {"second": 3600, "minute": 60, "hour": 1}.get(unit, 60)
        prices[item.name] = round(per_unit * factor, 4)
    with _price_lock:
        _live_prices.clear()
        _live_prices.update(prices)
        _live_prices_at = time.time()
    return prices


def job_price_per_hour(flavor: str) -> float | None:
    """USD per hour of a job flavor: live price if fetched, else the reference table."""
    return _live_prices.get(flavor, JOB_PRICES_USD_PER_HOUR.get(flavor))


def space_price_per_hour(hardware: str) -> float | None:
    """USD per hour of Space hardware (cpu-basic is free)."""
    return SPACE_PRICES_USD_PER_HOUR.get(hardware)


def estimate_job_cost(flavor: str, timeout: Any) -> float | None:
    """Worst-case cost of a job: price per hour times the timeout in hours (None when unknown)."""
    price = job_price_per_hour(flavor)
    hours = parse_timeout_hours(timeout)
    if price is None or hours is None:
        return None
    return round(price * hours, 4)


def reset_caches() -> None:
    """Forget cached prices and user names (tests, endpoint changes)."""
    global _live_prices_at, _price_failure_at
    with _price_lock:
        _live_prices.clear()
        _live_prices_at = _price_failure_at = 0.0
    _namespace_cache.clear()


def repo_url(repo_id: str, repo_type: str = "model") -> str:
    """Return the web URL of a repo on the configured endpoint."""
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}.get(repo_type, "")
    return f"{hf_endpoint()}/{prefix}{repo_id}"


def truncate(text: str, limit: int, *, note: str = "truncated") -> str:
    """Cut text to `limit` characters with a marker saying how much was dropped."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... [{note}: {len(text) - limit:,} more chars]"


def tail_text(lines: list[str], max_lines: int = 200, max_chars: int = 20_000) -> str:
    """Return the last lines of a log within both a line and a character budget."""
    picked: list[str] = []
    size = 0
    for line in reversed(lines[-max_lines:]):
        if size + len(line) + 1 > max_chars:
            break
        picked.append(line)
        size += len(line) + 1
    picked.reverse()
    dropped = len(lines) - len(picked)
    head = f"[... {dropped:,} earlier lines omitted]\n" if dropped else ""
    return head + "\n".join(picked)
