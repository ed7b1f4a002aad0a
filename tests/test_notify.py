"""notify tool, Slack gateway (retries, mrkdwn), env defaults, auto-notifications and terminal bells."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ml_intern.config import MessagingConfig, Settings, SlackDestination
from ml_intern.core.events import ApprovalItem, ApprovalRequired, Error, ToolLog, TurnComplete
from ml_intern.core.notifications import (
    Notification,
    NotificationGateway,
    apply_slack_env_defaults,
    build_auto_notifications,
    format_slack_text,
    terminal_notification_sequence,
    terminal_notify,
    to_slack_mrkdwn,
)
from ml_intern.core.tools import SimpleSessionState, ToolContext, ToolResult, ToolRouter
from ml_intern.tools import notify
from tests.harness.fake_slack import TOKEN, FakeSlack

FAST = (0.01, 0.02, 0.04)


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        monkeypatch.setenv("SLACK_API_URL", server.url)
        yield server


def _settings() -> Settings:
    return Settings(
        messaging=MessagingConfig(
            enabled=True,
            destinations={
                "team": SlackDestination(
                    token=TOKEN, channel="C123", allow_agent_tool=True, username="ml-intern"
                ),
                "oncall": SlackDestination(
                    token=TOKEN, channel="C456", allow_agent_tool=False, allow_auto_events=True
                ),
                "broken": SlackDestination(token="xoxb-wrong", channel="C123", allow_agent_tool=True),
            },
        )
    )


async def _call(
    settings: Settings, gateway: NotificationGateway | None = None, **arguments: Any
) -> ToolResult:
    router = ToolRouter(notify.tool_specs(settings))
    ctx = ToolContext(
        tool_name="notify",
        tool_call_id="c1",
        emit=lambda e: None,
        state=SimpleSessionState(),
        workdir=Path.cwd(),
        config=settings,
        services={"notification_gateway": gateway} if gateway else {},
    )
    result, _ = await router.call("notify", arguments, ctx)
    return result


async def test_only_allow_listed_destinations_receive(slack: FakeSlack) -> None:
    settings = _settings()
    result = await _call(
        settings,
        destinations=["team", "oncall", "nobody"],
        message="Training **finished**: see [run](https://hf.co/x)",
        title="Job done",
        severity="success",
    )
    assert result.output.splitlines() == [
        "team: sent",
        "oncall: failed (not allowed for the agent: set allow_agent_tool for it)",
        "nobody: failed (unknown destination)",
    ]
    assert not result.success and result.data["sent"] == ["team"]
    [message] = slack.messages
    assert message["channel"] == "C123" and message["username"] == "ml-intern"
    assert message["text"] == "[SUCCESS] Job done\nTraining *finished*: see <https://hf.co/x|run>"
    assert message["mrkdwn"] is True and message["unfurl_links"] is False and message["unfurl_media"] is False
    assert slack.requests[0]["headers"]["authorization"] == f"Bearer {TOKEN}"


async def test_final_errors_are_reported_per_destination(slack: FakeSlack) -> None:
    result = await _call(_settings(), destinations=["team", "broken"], message="hello")
    assert result.output.splitlines() == [
        "team: sent",
        "broken: failed (Slack refused the message: invalid_auth)",
    ]
    assert len(slack.requests) == 2  # invalid_auth is final: no retry


async def test_retries_on_429_5xx_and_ratelimited_then_gives_up(slack: FakeSlack) -> None:
    settings = _settings()
    gateway = NotificationGateway(settings.messaging.destinations, retry_delays_s=FAST)
    slack.fail_next = [
        (429, {"ok": False, "error": "ratelimited"}, {}),
        (502, "bad gateway", {}),
        (200, {"ok": False, "error": "ratelimited"}, {}),
    ]
    ok = await gateway.send(Notification("team", "t", "m"))
    assert ok.ok and ok.attempts == 4 and ok.external_id == "1700000000.000001"
    slack.fail_next = [(503, {"ok": False}, {})] * 4
    failed = await _call(settings, gateway, destinations=["team"], message="m")
    assert not failed.success and failed.output == "team: failed (Slack answered HTTP 503)"


async def test_unreachable_slack_fails_after_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9")
    gateway = NotificationGateway(_settings().messaging.destinations, retry_delays_s=FAST)
    result = await gateway.send(Notification("team", "t", "m"))
    assert not result.ok and result.attempts == 4 and "cannot reach Slack" in (result.error or "")


async def test_background_submit_and_close(slack: FakeSlack) -> None:
    gateway = NotificationGateway(_settings().messaging.destinations, retry_delays_s=FAST)
    gateway.submit([Notification("team", "a", "1"), Notification("oncall", "b", "2")])
    await gateway.aclose()
    assert sorted(m["channel"] for m in slack.messages) == ["C123", "C456"]


def test_tool_hidden_without_agent_destinations() -> None:
    assert notify.tool_specs(Settings()) == []
    disabled = _settings()
    disabled.messaging.enabled = False
    assert notify.tool_specs(disabled) == []
    [spec] = notify.tool_specs(_settings())
    assert spec.parameters["properties"]["destinations"]["items"]["enum"] == ["team", "broken"]
    assert len(json.dumps(spec.llm_schema())) < 900


def test_mrkdwn_conversion() -> None:
    text = (
        "# Result\n**bold** and *it* and ~~gone~~ a<b & c>d `x<y` [docs](https://a.b/c?d=1&e=2)\n"
        "```\nif a < b: **x**\n```"
    )
    assert to_slack_mrkdwn(text) == (
        "*Result*\n*bold* and _it_ and ~gone~ a&lt;b &amp; c&gt;d `x&lt;y` <https://a.b/c?d=1&e=2|docs>\n"
        "```\nif a &lt; b: **x**\n```"
    )
    note = Notification("team", "Title", "body", "warning", {"session_id": "s1", "model": ""})
    assert format_slack_text(note) == "[WARNING] Title\nbody\nsession_id: s1"


def test_env_defaults() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_CHANNEL_ID": "C9"}
    messaging = apply_slack_env_defaults(MessagingConfig(), env)
    dest = messaging.destinations["slack.default"]
    assert messaging.enabled and dest.token == "xoxb-1" and dest.channel == "C9"
    assert dest.allow_agent_tool and dest.allow_auto_events
    custom = apply_slack_env_defaults(
        MessagingConfig(),
        {
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_CHANNEL": "general",
            "ML_INTERN_SLACK_DESTINATION": "me",
            "ML_INTERN_SLACK_ALLOW_AGENT_TOOL": "false",
            "ML_INTERN_SLACK_AUTO_EVENTS": "error, turn_complete, bogus",
        },
    )
    assert not custom.destinations["me"].allow_agent_tool and custom.destinations["me"].channel == "general"
    assert custom.auto_event_types == ["error", "turn_complete"]
    existing = MessagingConfig(destinations={"slack.default": SlackDestination(token="keep", channel="K")})
    assert apply_slack_env_defaults(existing, env).destinations["slack.default"].token == "keep"
    off = apply_slack_env_defaults(MessagingConfig(), {**env, "ML_INTERN_SLACK_NOTIFICATIONS": "false"})
    assert not off.enabled and not off.destinations
    assert apply_slack_env_defaults(MessagingConfig(), {"SLACK_BOT_TOKEN": "x"}).destinations == {}


def test_auto_notifications_for_the_three_events() -> None:
    messaging = _settings().messaging
    approval = ApprovalRequired(tools=[ApprovalItem(tool="bash", arguments={}, tool_call_id="1")])
    [note] = build_auto_notifications(approval, messaging, session_id="s1", model="m")
    assert note.destination == "oncall" and note.severity == "warning"
    assert note.title == "Agent approval required"
    assert note.message == "Session s1 is waiting for approval for 1 tool call(s). Tools: bash"
    assert note.metadata == {"session_id": "s1", "model": "m", "event_type": "approval_required"}
    [error] = build_auto_notifications(Error(error="x" * 900), messaging, session_id="s1")
    assert error.severity == "error" and error.message == "Session s1 hit an error.\n" + "x" * 500
    [done] = build_auto_notifications(TurnComplete(history_size=3, final_response="All good"), messaging)
    assert done.severity == "success" and done.message == "The session completed successfully.\nAll good"
    assert build_auto_notifications(ToolLog(tool="x", log="y"), messaging) == []
    messaging.auto_event_types = ["error"]
    assert build_auto_notifications(approval, messaging) == []


def test_terminal_bell_and_osc9() -> None:
    stream = io.StringIO()
    terminal_notify("ml-intern", "approval\x1b needed\x07", stream)
    assert stream.getvalue() == "\a\x1b]9;ml-intern: approval  needed\x07"
    wrapped = terminal_notification_sequence("t", tmux=True)
    assert wrapped == "\a\x1bPtmux;\x1b\x1b]9;t\x07\x1b\\"
