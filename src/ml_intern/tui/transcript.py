"""Plain-data views of the conversation: restored history as display items, block text for copy and find."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from textual.widget import Widget

ItemKind = Literal["user", "assistant", "tool", "summary"]


@dataclass
class RestoredCall:
    """One tool call of a restored session, with its result when the session has one."""

    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    output: str | None = None
    success: bool = True


@dataclass
class RestoredItem:
    """One thing to show for a restored session: a message, a tool call or a summary note."""

    kind: ItemKind
    text: str = ""
    call: RestoredCall | None = None


def message_text(content: Any) -> str:
    """Text of a message's content (a string, or a list of parts of which the text parts count)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text") or "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return "" if content is None else str(content)


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else {}
    except json.JSONDecodeError:
        return {"arguments": raw}
    return value if isinstance(value, dict) else {"arguments": value}


def restored_items(records: Iterable[dict[str, Any]]) -> list[RestoredItem]:
    """Turn history records (`{"message", "kind", "turn"}`) into what the transcript shows, in order.

    Injected guidance is the agent talking to the model and is left out, as it is during a live turn.
    """
    items: list[RestoredItem] = []
    calls: dict[str, RestoredCall] = {}
    for record in records:
        message = record.get("message") or {}
        kind = record.get("kind", "")
        if kind in ("system", "injected"):
            continue
        if kind == "summary":
            items.append(RestoredItem("summary", message_text(message.get("content"))))
        elif kind == "task":
            items.append(RestoredItem("user", message_text(message.get("content"))))
        elif message.get("role") == "assistant":
            text = message_text(message.get("content"))
            if text.strip():
                items.append(RestoredItem("assistant", text))
            for tool_call in message.get("tool_calls") or []:
                function = tool_call.get("function") or {}
                call = RestoredCall(str(tool_call.get("id") or ""), str(function.get("name") or "?"),
                                    _arguments(function.get("arguments")))
                calls[call.tool_call_id] = call
                items.append(RestoredItem("tool", call=call))
        elif message.get("role") == "tool":
            call = calls.get(str(message.get("tool_call_id") or ""))
            output = message_text(message.get("content"))
            if call is None:
                call = RestoredCall(str(message.get("tool_call_id") or ""), str(message.get("name") or "?"), {})
                items.append(RestoredItem("tool", call=call))
            call.output = output
            call.success = not output.lstrip().lower().startswith(("error", "the user denied"))
    return items


def code_blocks(markdown: str) -> list[str]:
    """The fenced and indented code blocks of a markdown text, in order."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(markdown)
    return [token.content.rstrip("\n") for token in tokens if token.type in ("fence", "code_block")]


def block_text(block: Widget) -> str:
    """The text a transcript block stands for: what was typed, the markdown, or a tool call and its output."""
    from ml_intern.tui.widgets.conversation import AssistantMessage, ToolCallBlock, UserMessage

    if isinstance(block, UserMessage):
        return block.text
    if isinstance(block, AssistantMessage):
        return "".join(block.streamed_text) or block.source
    if isinstance(block, ToolCallBlock):
        head = f"{block.tool} {json.dumps(block.arguments, ensure_ascii=False)}"
        return head if block.output is None else f"{head}\n{block.output}"
    content = getattr(block, "content", None)
    return str(content) if content is not None else ""


def copy_text(block: Widget) -> str:
    """What copying a block puts on the clipboard: a tool call's output (or command), else the block's text."""
    from ml_intern.tui.widgets.conversation import ToolCallBlock

    if isinstance(block, ToolCallBlock):
        if block.output is not None:
            return block.output
        command = block.arguments.get("command")
        return command if isinstance(command, str) else json.dumps(block.arguments, indent=2, ensure_ascii=False)
    return block_text(block)
