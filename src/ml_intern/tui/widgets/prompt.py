"""The multi-line prompt: Enter sends, Shift+Enter or Ctrl+J adds a line, Up/Down walk the history."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from ml_intern.tui.quiet_gc import quiet_gc


class PromptInput(TextArea):
    """A TextArea that submits on Enter and recalls earlier prompts."""

    DEFAULT_CSS = """
    PromptInput {
        height: auto;
        min-height: 3;
        max-height: 12;
        border: tall $primary 40%;
        padding: 0 1;
        &:focus { border: tall $primary; }
        & .text-area--cursor-line { background: transparent; }
    }
    """

    class Submitted(Message):
        """The user pressed Enter on a non-empty prompt."""

        def __init__(self, prompt: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt = prompt
            self.text = text

        @property
        def control(self) -> PromptInput:
            return self.prompt

    def __init__(self, *, id: str | None = None, placeholder: str = "") -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=False,
            placeholder=placeholder,
            highlight_cursor_line=False,
        )
        self.prompt_history: list[str] = []
        self._history_index: int | None = None
        self._draft = ""

    def load_history(self, entries: list[str]) -> None:
        """Prepend entries read from disk (older than anything typed this session)."""
        self.prompt_history = entries + self.prompt_history

    def remember(self, text: str) -> None:
        """Add a sent prompt to the in-memory history."""
        if text and (not self.prompt_history or self.prompt_history[-1] != text):
            self.prompt_history.append(text)
        self._history_index = None

    async def _on_key(self, event: events.Key) -> None:
        quiet_gc.note_keypress()
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            text = self.text.strip()
            if text:
                self.post_message(self.Submitted(self, text))
            return
        if event.key in ("shift+enter", "ctrl+j"):
            event.stop()
            event.prevent_default()
            start, end = self.selection
            self._replace_via_keyboard("\n", start, end)
            return
        await super()._on_key(event)

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.cursor_location[0] == 0 and self.prompt_history:
            self._recall(-1)
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self._history_index is not None and self.cursor_location[0] == self.document.line_count - 1:
            self._recall(+1)
            return
        super().action_cursor_down(select)

    def _recall(self, step: int) -> None:
        if self._history_index is None:
            if step > 0:
                return
            self._draft = self.text
            index = len(self.prompt_history) - 1
        else:
            index = self._history_index + step
        if index >= len(self.prompt_history):
            self._history_index = None
            self.load_text(self._draft)
            self.move_cursor(self.document.end)
            return
        index = max(0, index)
        self._history_index = index
        self.load_text(self.prompt_history[index])
        self.move_cursor((0, len(self.document.lines[0])) if step < 0 else self.document.end)
