"""Small dialogs: quit confirmation and the model picker."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

_DIALOG_CSS = """
    {name} {{ align: center middle; background: $background 60%; }}
    {name} > Vertical {{
        width: 70; max-width: 95%; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }}
    {name} Label {{ width: 1fr; margin: 0 0 1 0; }}
"""


class ConfirmScreen(ModalScreen[bool]):
    """Ask a yes/no question."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "Yes", id="confirm-yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm-no"),
    ]
    DEFAULT_CSS = _DIALOG_CSS.format(name="ConfirmScreen")

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, markup=False)
            yield Label("[b]y[/b] yes   [b]n[/b] no")

    def action_answer(self, value: bool) -> None:
        """Close with the answer."""
        self.dismiss(value)


class ModelPicker(ModalScreen[str | None]):
    """Pick a suggested model (with what it is) or type any litellm id; the current one is marked."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="model-cancel"),
        Binding("down", "focus_options", "Suggestions", show=False, id="model-focus-options"),
    ]
    DEFAULT_CSS = _DIALOG_CSS.format(name="ModelPicker") + """
    ModelPicker > Vertical { width: 96; }
    ModelPicker OptionList { height: auto; max-height: 14; margin: 1 0 0 0; }
    ModelPicker #model-hint { color: $text-muted; margin: 1 0 0 0; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Current model: {self.current or 'none'}", markup=False)
            yield Input(placeholder="type any model id, or pick below (Enter to switch)", id="model-input")
            yield OptionList(*self._options(""), id="model-options")
            yield Label("Enter switch · ↓ suggestions · Esc cancel · local models (ollama/, vllm/…) need no token",
                        id="model-hint", markup=False)

    def _options(self, query: str) -> list[Option]:
        from ml_intern.core.llm import SUGGESTED_MODELS

        described = dict(SUGGESTED_MODELS)
        models = list(dict.fromkeys([*([self.current] if self.current else []), *described]))
        query = query.strip().lower()
        options = []
        for model in models:
            description = described.get(model, "")
            if query and query not in model.lower() and query not in description.lower():
                continue
            mark = ("● ", "$text-success") if model == self.current else ("  ", "")
            label = Content.assemble(mark, (model, "bold" if model == self.current else ""))
            if description or model == self.current:
                note = description + ("  (current)" if model == self.current else "")
                label = Content.assemble(label, ("  " + note.strip(), "$text-muted"))
            options.append(Option(label, id=model))
        return options

    @on(Input.Changed, "#model-input")
    def _filter(self, event: Input.Changed) -> None:
        options = self.query_one("#model-options", OptionList)
        options.clear_options()
        options.add_options(self._options(event.value))

    @on(Input.Submitted, "#model-input")
    def _typed(self, event: Input.Submitted) -> None:
        typed = event.value.strip()
        if typed:
            self.dismiss(typed)
            return
        options = self.query_one("#model-options", OptionList)
        if options.highlighted is not None:
            self.dismiss(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#model-options")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_focus_options(self) -> None:
        """Move from the id field to the suggestions."""
        options = self.query_one("#model-options", OptionList)
        if options.option_count:
            options.focus()
            if options.highlighted is None:
                options.highlighted = 0

    def action_cancel(self) -> None:
        """Close without switching."""
        self.dismiss(None)
