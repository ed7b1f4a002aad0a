"""Find in the conversation: a one-line bar above the prompt; Enter or Up for an older match, Down for a newer one."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static


class FindBar(Horizontal):
    """Hidden until opened; posts `FindBar.Search` for each step and `FindBar.Closed` on Esc."""

    DEFAULT_CSS = """
    FindBar {
        height: auto;
        padding: 0 1;
        display: none;
        &.-visible { display: block; }
        & > Input { width: 1fr; }
        & > #find-count { width: auto; min-width: 12; padding: 0 1; color: $text-muted; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close find", tooltip="Close the find bar.", id="find-close"),
        Binding("up", "step(-1)", "Older match", tooltip="Go to the previous (older) match.", id="find-older"),
        Binding("down", "step(1)", "Newer match", tooltip="Go to the next (newer) match.", id="find-newer"),
    ]

    class Search(Message):
        """Find `query`; `direction` is -1 for an older match, 1 for a newer one."""

        def __init__(self, query: str, direction: int) -> None:
            super().__init__()
            self.query = query
            self.direction = direction

    class Closed(Message):
        """The bar was closed."""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="find in the conversation (Enter/↑ older · ↓ newer · Esc close)", compact=True,
                    id="find-input")
        yield Static("", id="find-count", markup=False)

    @property
    def input(self) -> Input:
        """The query field."""
        return self.query_one("#find-input", Input)

    def open(self, query: str = "") -> None:
        """Show the bar and focus the field (with `query` filled in when given)."""
        self.add_class("-visible")
        if query:
            self.input.value = query
        self.input.focus()

    def show_count(self, text: str) -> None:
        """Show "2/5" or "no match"."""
        self.query_one("#find-count", Static).update(text)

    @on(Input.Submitted, "#find-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_step(-1)

    def action_step(self, direction: int) -> None:
        """Ask for the next match in one direction."""
        query = self.input.value.strip()
        if query:
            self.post_message(self.Search(query, direction))

    def action_close(self) -> None:
        """Hide the bar."""
        self.remove_class("-visible")
        self.show_count("")
        self.post_message(self.Closed())
