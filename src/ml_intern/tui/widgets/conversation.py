"""The transcript: user messages, streamed assistant markdown, compact tool calls, notices."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from textual import events
from textual.await_remove import AwaitRemove
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Markdown, Static

from ml_intern.tui.quiet_gc import quiet_gc

STATE_GLYPHS: dict[str, tuple[str, str]] = {
    "awaiting_approval": ("?", "$text-warning"),
    "approved": ("·", "$text-muted"),
    "running": ("◌", "$text-accent"),
    "queued": ("◌", "$text-accent"),
    "done": ("✓", "$text-success"),
    "completed": ("✓", "$text-success"),
    "failed": ("✗", "$text-error"),
    "error": ("✗", "$text-error"),
    "rejected": ("⊘", "$text-error"),
    "cancelled": ("⊘", "$text-warning"),
    "canceled": ("⊘", "$text-warning"),
    "abandoned": ("⊘", "$text-warning"),
}

# The argument that best says what a call does, per tool; others fall back to compact JSON.
SUMMARY_KEYS = ("command", "path", "query", "url", "repo_id", "dataset", "operation", "prompt", "task")


def summarize_arguments(tool: str, arguments: dict[str, Any], width: int = 80) -> str:
    """Return a one-line summary of a call's arguments."""
    if tool == "plan_tool" and isinstance(arguments.get("todos"), list):
        text = f"{len(arguments['todos'])} items"
    else:
        text = ""
        for key in SUMMARY_KEYS:
            value = arguments.get(key)
            if isinstance(value, str) and value:
                text = value
                break
        if not text:
            text = json.dumps(arguments, ensure_ascii=False, separators=(",", ":")) if arguments else ""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_duration(seconds: float | None) -> str:
    """Return a short human duration ("0.4s", "1m12s")."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


class UserMessage(Static, can_focus=True):
    """What the user typed; shows "queued" until the agent picks it up."""

    DEFAULT_CSS = """
    UserMessage {
        margin: 1 0 0 0;
        padding: 0 1;
        border-left: thick $primary;
        background: $boost;
        &.-queued { border-left: thick $panel; color: $text-muted; }
        &:focus { border-left: thick $accent; text-style: none; }
    }
    """

    queued: reactive[bool] = reactive(False)

    def __init__(self, text: str, *, queued: bool = False) -> None:
        super().__init__(markup=False)
        self.text = text
        self.set_reactive(UserMessage.queued, queued)
        self.set_class(queued, "-queued")
        self.update(self._content())

    def _content(self) -> Content:
        body = Content(self.text)
        if self.queued:
            return Content.assemble(body, ("  (queued)", "italic $text-muted"))
        return body

    def watch_queued(self, queued: bool) -> None:
        self.set_class(queued, "-queued")
        self.update(self._content())


class AssistantMessage(Markdown, can_focus=True):
    """Assistant markdown, written once or streamed a frame's worth of fragments at a time."""

    DEFAULT_CSS = """
    AssistantMessage {
        margin: 1 0 0 0;
        padding: 0 1 0 1;
        background: transparent;
        &:focus { background: $boost; }
    }
    """

    # At most one `Markdown.append` (parse, update the last block, re-layout) per interval: appending per
    # fragment keeps the screen busy and starves its frames while a fast model streams.
    FLUSH_INTERVAL = 1 / 20
    # A keypress should paint on its own: an append waits this long after one (but text never waits longer
    # than MAX_KEY_DEFER after it arrived).
    KEY_YIELD = 0.1
    MAX_KEY_DEFER = 0.3

    def __init__(self, markdown: str = "") -> None:
        super().__init__(markdown)
        self.streamed_text: list[str] = []
        self._pending: list[str] = []
        self._append_task: asyncio.Task[None] | None = None
        self._next_flush: asyncio.TimerHandle | None = None
        self._pending_since = 0.0

    async def write(self, fragment: str) -> None:
        """Queue a streamed fragment; it is shown at once, or with the next flush if one ran recently."""
        if not fragment:
            return
        self.streamed_text.append(fragment)
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(fragment)
        if self._append_task is None and self._next_flush is None:
            self._flush()

    def _flush(self) -> None:
        self._next_flush = None
        now = time.monotonic()
        since_key = now - quiet_gc.last_keypress
        if since_key < self.KEY_YIELD and now - self._pending_since < self.MAX_KEY_DEFER:
            self._next_flush = asyncio.get_running_loop().call_later(self.KEY_YIELD - since_key, self._flush)
            return
        quiet_gc.note_activity()
        text = "".join(self._pending)
        self._pending.clear()
        self._append_task = asyncio.create_task(self._append(text), name="assistant-message-append")

    async def _append(self, text: str) -> None:
        try:
            await self.append(text)
            if isinstance(self.parent, Conversation):
                self.parent.slide_window()
        finally:
            self._append_task = None
            if self._pending and self.is_attached:
                self._next_flush = asyncio.get_running_loop().call_later(self.FLUSH_INTERVAL, self._flush)

    async def finish(self) -> None:
        """Show everything written so far, without waiting for the next flush."""
        if self._next_flush is not None:
            self._next_flush.cancel()
            self._next_flush = None
        while self._append_task is not None:
            await self._append_task
            if self._next_flush is not None:
                self._next_flush.cancel()
                self._next_flush = None
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            await self.append(text)

    def on_unmount(self) -> None:
        if self._next_flush is not None:
            self._next_flush.cancel()
            self._next_flush = None


class ToolCallBlock(Static, can_focus=True):
    """One tool call on one line; Enter or a click expands it to the full arguments and output."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "toggle", "Expand", tooltip="Show or hide the call's arguments and output.",
                id="tool-call-toggle"),
    ]

    DEFAULT_CSS = """
    ToolCallBlock {
        padding: 0 1;
        margin: 0 0 0 2;
        color: $text;
        &:focus { background: $boost; text-style: none; }
        &:hover { background: $boost; }
        &.-expanded { border-left: outer $panel; margin: 0 0 0 1; }
        &.-collapsed { text-wrap: nowrap; text-overflow: ellipsis; }
    }
    """

    MAX_EXPANDED_CHARS = 20_000

    expanded: reactive[bool] = reactive(False)

    def __init__(self, tool: str, arguments: dict[str, Any], tool_call_id: str) -> None:
        super().__init__(markup=False, classes="-collapsed")
        self.tool = tool
        self.arguments = arguments
        self.tool_call_id = tool_call_id
        self.state = "running"
        self.output: str | None = None
        self.success = True
        self.duration_s: float | None = None
        self.logs: list[str] = []
        self.refresh_content()

    def set_state(self, state: str) -> None:
        """Show a new state."""
        self.state = state
        self.refresh_content()

    def set_output(self, output: str, success: bool, duration_s: float | None) -> None:
        """Record the result of the call."""
        self.output = output
        self.success = success
        self.duration_s = duration_s
        if self.state in {"running", "approved", "awaiting_approval", "queued"}:
            self.state = "done" if success else "failed"
        self.refresh_content()

    def add_log(self, line: str) -> None:
        """Keep a progress line (shown when expanded; the latest one on the summary line)."""
        self.logs.append(line)
        if len(self.logs) > 200:
            del self.logs[:100]
        self.refresh_content()

    def refresh_content(self) -> None:
        """Re-render the call from its fields."""
        glyph, style = STATE_GLYPHS.get(self.state, ("·", "$text-muted"))
        parts: list[str | tuple[str, str] | Content] = [
            (f"{glyph} ", style),
            (self.tool, "bold"),
            "  ",
            (summarize_arguments(self.tool, self.arguments), "$text-muted"),
        ]
        if self.duration_s is not None:
            parts.append((f"  {format_duration(self.duration_s)}", "$text-muted"))
        elif self.state == "running" and self.logs:
            parts.append((f"  {self.logs[-1][:60]}", "italic $text-muted"))
        if self.expanded:
            parts.append(("\n── arguments\n", "$text-muted"))
            parts.append(json.dumps(self.arguments, indent=2, ensure_ascii=False))
            if self.logs and self.output is None:
                parts.append(("\n── log\n", "$text-muted"))
                parts.append("\n".join(self.logs[-50:]))
            if self.output is not None:
                parts.append((f"\n── output{'' if self.success else ' (failed)'}\n", "$text-muted"))
                output = self.output
                if len(output) > self.MAX_EXPANDED_CHARS:
                    output = output[: self.MAX_EXPANDED_CHARS] + "\n… (truncated; see the timeline for the rest)"
                parts.append((output, "" if self.success else "$text-error"))
        self.update(Content.assemble(*parts))

    def watch_expanded(self, expanded: bool) -> None:
        self.set_class(expanded, "-expanded")
        self.set_class(not expanded, "-collapsed")
        self.refresh_content()

    def action_toggle(self) -> None:
        """Expand or collapse."""
        self.expanded = not self.expanded

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.expanded = not self.expanded


class Notice(Static):
    """A system line: interrupted, compacted, errors, hints."""

    DEFAULT_CSS = """
    Notice {
        margin: 1 0 0 0;
        padding: 0 1;
        color: $text-muted;
        &.-error { color: $text-error; }
        &.-warning { color: $text-warning; }
        &.-success { color: $text-success; }
    }
    """

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(text, markup=False, classes=f"-{kind}")


class Conversation(VerticalScroll, can_focus=True):
    """The scrolling transcript; keeps at most `max_blocks` blocks mounted and only the newest laid out.

    Every layout walks every displayed widget, and a streamed reply re-lays out the screen many times a second,
    so while the view follows the end only the newest `window` pieces (blocks, or the paragraphs of a long reply)
    and at least two screens of them are displayed. Scrolling to the top shows older ones again, a step at a time;
    `scroll_to_widget` shows everything from its target down first.
    """

    DEFAULT_CSS = """
    Conversation {
        height: 1fr;
        padding: 0 1 1 1;
        scrollbar-size-vertical: 1;
        & .-windowed-out { display: none; }
    }
    """

    def __init__(self, *, max_blocks: int = 200, window: int = 40, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_blocks = max_blocks
        self.window = window
        self.pruned_blocks = 0

    def on_mount(self) -> None:
        self.anchor()
        # Pruned blocks are cyclic garbage: collect it while the user is not typing and nothing streams.
        quiet_gc.start(self)

    def on_unmount(self) -> None:
        quiet_gc.stop()

    async def add_block(self, block: Widget) -> Widget:
        """Mount a block at the end and prune the oldest ones beyond the limit."""
        await self.mount(block)
        await self.prune()
        self.slide_window()
        return block

    async def prune(self) -> None:
        """Remove the oldest blocks, in batches, once there are more than `max_blocks`."""
        children = list(self.children)
        excess = len(children) - self.max_blocks
        if excess <= 0:
            return
        batch = children[: excess + max(1, self.max_blocks // 10)]
        self.pruned_blocks += len(batch)
        await self.remove_children(batch)

    def remove_children(self, selector: str | type[Widget] | Iterable[Widget] = "*") -> AwaitRemove:
        """Remove blocks (undo, rewind, a new session), then refill the window from older hidden pieces."""
        removed = super().remove_children(selector)
        self.call_after_refresh(self.slide_window)
        return removed

    def on_resize(self) -> None:
        self.slide_window()

    def _pieces(self) -> list[Widget]:
        """What the window counts, oldest first: each block, or each paragraph of a long assistant reply."""
        pieces: list[Widget] = []
        for block in self.children:
            if isinstance(block, AssistantMessage) and len(block.children) > 1:
                pieces.extend(block.children)
            else:
                pieces.append(block)
        return pieces

    @property
    def hidden_pieces(self) -> int:
        """How many of the oldest pieces are out of the window (not laid out until scrolled to)."""
        return sum(1 for piece in self._pieces() if piece.has_class("-windowed-out"))

    def _show_from(self, pieces: list[Widget], first_shown: int) -> None:
        for index, piece in enumerate(pieces):
            piece.set_class(index < first_shown, "-windowed-out")
        for block in self.children:
            if isinstance(block, AssistantMessage) and len(block.children) > 1:
                block.set_class(all(child.has_class("-windowed-out") for child in block.children), "-windowed-out")

    def slide_window(self) -> None:
        """While the view follows the end, display only the newest pieces; never hide anything under a reader."""
        if not (self.is_anchored and self.is_vertical_scroll_end):
            return
        pieces = self._pieces()
        needed_height = 2 * self.scrollable_content_region.height
        height = 0
        first_shown = len(pieces)
        while first_shown > 0 and (len(pieces) - first_shown < self.window or height < needed_height):
            first_shown -= 1
            piece = pieces[first_shown]
            height += piece.outer_size.height + piece.styles.margin.top
        if first_shown or self.hidden_pieces:
            self._show_from(pieces, first_shown)

    def show_older(self, count: int | None = None) -> int:
        """Display up to `count` more hidden pieces above the view, keeping the view where it is; return how many."""
        pieces = self._pieces()
        hidden = sum(1 for piece in pieces if piece.has_class("-windowed-out"))
        shown = min(hidden, count if count is not None else max(1, self.window // 2))
        if not shown:
            return 0
        height_before = self.virtual_size.height
        self._show_from(pieces, hidden - shown)

        def keep_place() -> None:
            grown = self.virtual_size.height - height_before
            if grown > 0:
                self.scroll_to(y=self.scroll_y + grown, animate=False, immediate=True)

        self.call_after_refresh(keep_place)
        return shown

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 < old_value and self.max_scroll_y > 0 and self.hidden_pieces:
            self.show_older()

    def scroll_to_widget(self, widget: Widget, **kwargs: Any) -> bool:
        """Scroll to a block, displaying it and everything below it first if it was out of the window."""
        if widget.parent is self and widget.has_class("-windowed-out"):
            pieces = self._pieces()
            first = widget.children[0] if isinstance(widget, AssistantMessage) and len(widget.children) > 1 else widget
            self._show_from(pieces, pieces.index(first))
            self.call_after_refresh(super().scroll_to_widget, widget, **kwargs)
            return True
        return super().scroll_to_widget(widget, **kwargs)
