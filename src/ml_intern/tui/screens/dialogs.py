"""Small dialogs: quit confirmation and the model picker."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

SUGGESTED_MODELS = [
    "anthropic/claude-opus-4.8:fal-ai",
    "anthropic/claude-sonnet-4.6",
    "openai/gpt-5.2",
    "moonshotai/Kimi-K2.6",
    "Qwen/Qwen3.5-397B-A17B",
    "ollama/qwen3:8b",
    "vllm/local-model",
]

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
    """Pick a suggested model or type any litellm id."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel", id="model-cancel")]
    DEFAULT_CSS = _DIALOG_CSS.format(name="ModelPicker") + """
    ModelPicker OptionList { height: auto; max-height: 12; margin: 1 0 0 0; }
    """

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Current model: {self.current}", markup=False)
            yield Input(placeholder="model id (Enter to switch)", id="model-input")
            options = [Option(model, id=model) for model in dict.fromkeys([self.current, *SUGGESTED_MODELS])]
            yield OptionList(*options, id="model-options")

    @on(Input.Submitted, "#model-input")
    def _typed(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    @on(OptionList.OptionSelected, "#model-options")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Close without switching."""
        self.dismiss(None)
