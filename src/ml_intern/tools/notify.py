"""The `notify` tool: send a message to Slack destinations the user allowed for the agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ml_intern.core.notifications import SEVERITIES, Notification, NotificationGateway, agent_destinations
from ml_intern.core.tools import Risk, ToolContext, ToolError, ToolResult, ToolSpec

if TYPE_CHECKING:
    from ml_intern.config import MessagingConfig, Settings


def _messaging(ctx: ToolContext, fallback: MessagingConfig) -> MessagingConfig:
    settings = ctx.config
    return getattr(settings, "messaging", None) or fallback


async def _notify(arguments: dict[str, Any], ctx: ToolContext, fallback: MessagingConfig) -> ToolResult:
    messaging = _messaging(ctx, fallback)
    requested = arguments.get("destinations") or []
    if isinstance(requested, str):
        requested = [requested]
    names = list(dict.fromkeys(str(n).strip() for n in requested if str(n).strip()))
    if not names:
        raise ToolError("give at least one destination name.")
    message = str(arguments.get("message") or "").strip()
    if not message:
        raise ToolError("message must not be empty.")
    severity = arguments.get("severity") or "info"
    if severity not in SEVERITIES:
        raise ToolError(f"severity must be one of {', '.join(SEVERITIES)}.")
    allowed = set(agent_destinations(messaging))
    lines: dict[str, str] = {}
    sendable: list[Notification] = []
    for name in names:
        if name not in messaging.destinations:
            lines[name] = "failed (unknown destination)"
        elif name not in allowed:
            lines[name] = "failed (not allowed for the agent: set allow_agent_tool for it)"
        else:
            title = str(arguments.get("title") or "ml-intern")
            sendable.append(Notification(name, title, message, severity))
    gateway = ctx.services.get("notification_gateway")
    if not isinstance(gateway, NotificationGateway):
        gateway = NotificationGateway(messaging.destinations)
    for result in await gateway.send_many(sendable):
        lines[result.destination] = "sent" if result.ok else f"failed ({result.error})"
    output = "\n".join(f"{name}: {lines[name]}" for name in names)
    sent = [name for name in names if lines[name] == "sent"]
    if sent and hasattr(ctx.state, "record_side_effect"):
        ctx.state.record_side_effect(f"notify: message sent to {', '.join(sent)}")
    return ToolResult(output, success=len(sent) == len(names), data={"sent": sent})


def tool_specs(settings: Settings) -> list[ToolSpec]:
    """The `notify` tool, offered only when some destination allows the agent to use it."""
    names = agent_destinations(settings.messaging)
    if not names:
        return []
    fallback = settings.messaging

    async def handler(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        return await _notify(arguments, ctx, fallback)

    return [
        ToolSpec(
            name="notify",
            description=(
                "Send a short out-of-band message (e.g. Slack) to the user: long job finished, result ready, "
                "blocked on a decision. Not for routine progress."
            ),
            parameters={
                "type": "object",
                "properties": {
                    "destinations": {
                        "type": "array",
                        "items": {"type": "string", "enum": names},
                        "minItems": 1,
                    },
                    "message": {"type": "string", "description": "Markdown allowed"},
                    "title": {"type": "string"},
                    "severity": {"type": "string", "enum": list(SEVERITIES), "description": "Default info"},
                },
                "required": ["destinations", "message"],
            },
            handler=handler,
            # The user allow-listed these destinations for the agent; asking first would defeat the purpose.
            risk=Risk.READ,
            read_only=False,
            undoable=False,
        )
    ]
