"""Out-of-band notifications: Slack gateway with retries, env defaults, auto-event messages, bells."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TextIO

if TYPE_CHECKING:
    from ml_intern.config import MessagingConfig, SlackDestination
    from ml_intern.core.events import Event

Severity = Literal["info", "success", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "success", "warning", "error")
AUTO_EVENT_TYPES = ("approval_required", "error", "turn_complete")
DEFAULT_SLACK_API_URL = "https://slack.com/api"
DEFAULT_DESTINATION_NAME = "slack.default"
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0, 4.0)
SLACK_TIMEOUT_S = 10.0
MAX_SLACK_TEXT = 39_000
_FALSEY = {"0", "false", "no", "off", ""}


@dataclass
class Notification:
    """One message for one destination."""

    destination: str
    title: str
    message: str
    severity: Severity = "info"
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class DeliveryResult:
    """What happened to one notification."""

    destination: str
    ok: bool
    error: str | None = None
    external_id: str | None = None  # Slack's message `ts`
    attempts: int = 1


class RetryableNotificationError(Exception):
    """A failure worth retrying (timeouts, 429, 5xx, Slack's `ratelimited`)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotificationError(Exception):
    """A final failure (bad token, unknown channel...)."""


# --- Slack mrkdwn -----------------------------------------------------------------------------------------

_CODE_SPLIT = re.compile(r"(```.*?```|`[^`\n]+`)", re.DOTALL)
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_slack_mrkdwn(text: str) -> str:
    """Convert markdown to Slack mrkdwn: code kept, links `<url|label>`, bold/headings `*x*`, `_x_`, `~x~`."""
    text = text.replace("\x00", "").replace("\x01", "")
    parts = _CODE_SPLIT.split(text)
    # Odd parts are code spans or blocks: only escaped.
    return "".join(_escape(part) if i % 2 else _inline_mrkdwn(part) for i, part in enumerate(parts))


def _inline_mrkdwn(part: str) -> str:
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        label = _escape(match.group(1)).replace("|", "∣")
        links.append(f"<{match.group(2)}|{label}>")
        return f"\x00{len(links) - 1}\x00"

    part = _escape(_LINK.sub(keep_link, part))
    part = re.sub(r"^#{1,6}\s+(.+?)\s*#*$", r"**\1**", part, flags=re.MULTILINE)
    part = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: "\x01" + (m.group(1) or m.group(2)) + "\x01", part)
    part = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"_\1_", part)
    part = re.sub(r"~~(.+?)~~", r"~\1~", part)
    part = part.replace("\x01", "*")
    return re.sub(r"\x00(\d+)\x00", lambda m: links[int(m.group(1))], part)


def format_slack_text(notification: Notification) -> str:
    """The Slack text: severity tag and title, the message, then metadata lines, as mrkdwn."""
    lines = [f"[{notification.severity.upper()}] {notification.title}".rstrip(), notification.message]
    lines += [f"{key}: {value}" for key, value in notification.metadata.items() if value]
    text = to_slack_mrkdwn("\n".join(line for line in lines if line))
    return text if len(text) <= MAX_SLACK_TEXT else text[: MAX_SLACK_TEXT - 1] + "…"


# --- gateway ----------------------------------------------------------------------------------------------


def slack_api_url() -> str:
    """Return the Slack Web API base (`SLACK_API_URL` or slack.com/api) without a trailing slash."""
    return (os.environ.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL).rstrip("/")


async def post_to_slack(destination: SlackDestination, notification: Notification) -> str | None:
    """Post one message with chat.postMessage; return its `ts`, or raise a (retryable) notification error."""
    import httpx

    if not destination.token or not destination.channel:
        raise NotificationError("the destination needs a token and a channel")
    payload: dict[str, Any] = {
        "channel": destination.channel,
        "text": format_slack_text(notification),
        "mrkdwn": True,
        "unfurl_links": False,
        "unfurl_media": False,
    }
    if destination.username:
        payload["username"] = destination.username
    if destination.icon_emoji:
        payload["icon_emoji"] = destination.icon_emoji
    headers = {
        "Authorization": f"Bearer {destination.token}",
        "Content-Type": "application/json; charset=utf-8",
    }
    try:
        async with httpx.AsyncClient(timeout=SLACK_TIMEOUT_S) as client:
            response = await client.post(f"{slack_api_url()}/chat.postMessage", json=payload, headers=headers)
    except httpx.TimeoutException:
        raise RetryableNotificationError(f"Slack did not answer within {SLACK_TIMEOUT_S:g} s") from None
    except httpx.HTTPError as exc:
        raise RetryableNotificationError(f"cannot reach Slack ({type(exc).__name__})") from None
    retry_after = response.headers.get("retry-after", "")
    retry_after_s = float(retry_after) if retry_after.isdigit() else None
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryableNotificationError(f"Slack answered HTTP {response.status_code}", retry_after_s)
    try:
        body = response.json()
    except ValueError:
        raise RetryableNotificationError("Slack sent an invalid response") from None
    if response.status_code >= 400 or not body.get("ok"):
        error = str(body.get("error") or f"HTTP {response.status_code}")
        if error == "ratelimited":
            raise RetryableNotificationError("Slack rate limit", retry_after_s)
        raise NotificationError(f"Slack refused the message: {error}")
    return body.get("ts")


class NotificationGateway:
    """Sends notifications with retries; `submit` runs them in the background, `aclose` waits for them."""

    def __init__(
        self, destinations: Mapping[str, SlackDestination], retry_delays_s: Sequence[float] = RETRY_DELAYS_S
    ) -> None:
        self.destinations = dict(destinations)
        self.retry_delays_s = tuple(retry_delays_s)
        self._pending: set[asyncio.Task[DeliveryResult]] = set()

    async def send(self, notification: Notification) -> DeliveryResult:
        """Deliver one notification, retrying transient failures; never raises (except cancellation)."""
        destination = self.destinations.get(notification.destination)
        if destination is None:
            return DeliveryResult(notification.destination, False, "unknown destination", attempts=0)
        for attempts, delay in enumerate((*self.retry_delays_s, None), 1):
            try:
                ts = await post_to_slack(destination, notification)
            except RetryableNotificationError as exc:
                if delay is None:
                    return DeliveryResult(notification.destination, False, str(exc), attempts=attempts)
                wait = max(delay, min(exc.retry_after_s or 0.0, 30.0))
                await asyncio.sleep(wait)
            except NotificationError as exc:
                return DeliveryResult(notification.destination, False, str(exc), attempts=attempts)
            else:
                return DeliveryResult(notification.destination, True, external_id=ts, attempts=attempts)
        raise AssertionError("unreachable")

    async def send_many(self, notifications: Iterable[Notification]) -> list[DeliveryResult]:
        """Deliver several notifications concurrently."""
        return list(await asyncio.gather(*(self.send(n) for n in notifications)))

    def submit(self, notifications: Iterable[Notification]) -> None:
        """Send in the background (for auto-notifications); failures are dropped after the retries."""
        for notification in notifications:
            task = asyncio.get_running_loop().create_task(self.send(notification))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def aclose(self, timeout_s: float = 5.0) -> None:
        """Wait briefly for background sends, then cancel what is left."""
        if not self._pending:
            return
        _, still_running = await asyncio.wait(set(self._pending), timeout=timeout_s)
        for task in still_running:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*still_running, return_exceptions=True)


# --- configuration ----------------------------------------------------------------------------------------


def apply_slack_env_defaults(messaging: MessagingConfig, env: Mapping[str, str]) -> MessagingConfig:
    """Add a Slack destination from SLACK_BOT_TOKEN + SLACK_CHANNEL_ID (or SLACK_CHANNEL) unless disabled."""
    from ml_intern.config import SlackDestination

    if env.get("ML_INTERN_SLACK_NOTIFICATIONS", "true").strip().lower() in _FALSEY:
        return messaging
    token = env.get("SLACK_BOT_TOKEN", "").strip()
    channel = (env.get("SLACK_CHANNEL_ID") or env.get("SLACK_CHANNEL") or "").strip()
    if not token or not channel:
        return messaging
    name = env.get("ML_INTERN_SLACK_DESTINATION", "").strip() or DEFAULT_DESTINATION_NAME
    updated = messaging.model_copy(deep=True)
    if name not in updated.destinations:
        updated.destinations[name] = SlackDestination(
            token=token,
            channel=channel,
            allow_agent_tool=_env_flag(env, "ML_INTERN_SLACK_ALLOW_AGENT_TOOL"),
            allow_auto_events=_env_flag(env, "ML_INTERN_SLACK_ALLOW_AUTO_EVENTS"),
        )
    if env.get("ML_INTERN_SLACK_AUTO_EVENTS"):
        wanted = [e.strip() for e in env["ML_INTERN_SLACK_AUTO_EVENTS"].split(",")]
        updated.auto_event_types = [e for e in wanted if e in AUTO_EVENT_TYPES]
    updated.enabled = True
    return updated


def _env_flag(env: Mapping[str, str], name: str, default: bool = True) -> bool:
    value = env.get(name)
    return default if value is None else value.strip().lower() not in _FALSEY


def agent_destinations(messaging: MessagingConfig) -> list[str]:
    """Names of the destinations the `notify` tool may use."""
    if not messaging.enabled:
        return []
    return [name for name, dest in messaging.destinations.items() if dest.allow_agent_tool]


def build_auto_notifications(
    event: Event, messaging: MessagingConfig, *, session_id: str = "", model: str = ""
) -> list[Notification]:
    """Notifications for an approval_required, error or turn_complete event (empty when not configured)."""
    event_type = getattr(event, "type", "")
    if (
        not messaging.enabled
        or event_type not in messaging.auto_event_types
        or event_type not in AUTO_EVENT_TYPES
    ):
        return []
    targets = [name for name, dest in messaging.destinations.items() if dest.allow_auto_events]
    if not targets:
        return []
    session = f"Session {session_id}" if session_id else "The session"
    severity: Severity
    if event_type == "approval_required":
        tools = [getattr(item, "tool", "?") for item in getattr(event, "tools", [])]
        title, severity = "Agent approval required", "warning"
        message = (
            f"{session} is waiting for approval for {len(tools)} tool call(s). Tools: {', '.join(tools)}"
        )
    elif event_type == "error":
        title, severity = "Agent error", "error"
        message = f"{session} hit an error.\n{str(getattr(event, 'error', ''))[:500]}"
    else:
        title, severity = "Agent task complete", "success"
        final = str(getattr(event, "final_response", None) or "")[:MAX_SLACK_TEXT]
        message = f"{session} completed successfully." + (f"\n{final}" if final else "")
    metadata = {"session_id": session_id, "model": model, "event_type": event_type}
    return [Notification(name, title, message, severity, dict(metadata)) for name in targets]


# --- terminal ---------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal_notification_sequence(title: str, body: str = "", *, tmux: bool | None = None) -> str:
    """BEL plus an OSC 9 desktop notification (`ESC ] 9 ; text BEL`), wrapped for tmux passthrough."""
    text = _CONTROL.sub(" ", f"{title}: {body}" if body else title).strip()[:200]
    osc = f"\x1b]9;{text}\x07"
    if tmux if tmux is not None else bool(os.environ.get("TMUX")):
        osc = "\x1bPtmux;" + osc.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return "\a" + osc


def terminal_notify(title: str, body: str = "", stream: TextIO | None = None) -> None:
    """Ring the bell and raise a desktop notification (iTerm2, WezTerm, kitty, Windows Terminal...)."""
    out = stream if stream is not None else sys.__stdout__
    if out is None:
        return
    with contextlib.suppress(OSError, ValueError):
        out.write(terminal_notification_sequence(title, body))
        out.flush()
