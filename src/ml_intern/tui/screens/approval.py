"""The approval modal: one pending tool call at a time, all answers returned together."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from ml_intern.core.approval import suggest_rule_pattern
from ml_intern.core.events import ApprovalItem
from ml_intern.core.operations import ApprovalAnswer

DIFF_TOOLS = {"write", "edit"}


@dataclass
class ApprovalResult:
    """The answers for every pending call, or `interrupted` when the user stopped the turn instead."""

    answers: list[ApprovalAnswer] = field(default_factory=list)
    interrupted: bool = False


def render_diff(diff: str) -> Content:
    """Colour a unified diff: additions, removals, hunk headers."""
    parts: list[tuple[str, str] | str] = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            parts.append((line, "bold"))
        elif line.startswith("+"):
            parts.append((line, "$text-success on $success-muted 30%"))
        elif line.startswith("-"):
            parts.append((line, "$text-error on $error-muted 30%"))
        elif line.startswith("@@"):
            parts.append((line, "$text-accent"))
        else:
            parts.append(line)
    return Content.assemble(*parts)


def render_preview(item: ApprovalItem) -> Content:
    """Return the most readable preview of a call: command, diff, cost, or JSON arguments."""
    parts: list[tuple[str, str] | str | Content] = []
    if item.estimated_cost_usd is not None:
        parts.append((f"Estimated cost: ${item.estimated_cost_usd:.2f}\n", "bold $text-warning"))
    for warning in item.warnings:
        parts.append((f"⚠ {warning}\n", "$text-warning"))
    if parts:
        parts.append("\n")
    if item.tool == "bash":
        command = str(item.arguments.get("command", "")) or item.preview.removeprefix("$ ")
        parts.append(("$ ", "bold $text-accent"))
        parts.append((command, "bold"))
        for key in ("work_dir", "timeout"):
            if key in item.arguments:
                parts.append((f"\n{key}: {item.arguments[key]}", "$text-muted"))
    elif item.tool in DIFF_TOOLS and item.preview:
        parts.append(render_diff(item.preview))
    elif item.preview:
        parts.append(item.preview)
    else:
        parts.append(json.dumps(item.arguments, indent=2, ensure_ascii=False))
    return Content.assemble(*parts)


class ApprovalScreen(ModalScreen[ApprovalResult]):
    """Ask about each pending call in turn; dismiss with every answer at once."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "approve", "Approve", tooltip="Run this call once.", id="approval-approve"),
        Binding("a", "always", "Always (session)", tooltip="Run it, and similar calls for the rest of this session.",
                id="approval-always-session"),
        Binding("A", "always_forever", "Always (save)",
                tooltip="Run it, and save a rule so similar calls never ask again.", id="approval-always-forever"),
        Binding("n", "deny", "Deny", tooltip="Do not run this call.", id="approval-deny"),
        Binding("f", "feedback", "Deny + feedback", tooltip="Do not run it and tell the model why.",
                id="approval-feedback"),
        Binding("escape", "escape", "Interrupt", tooltip="Deny everything pending and stop the turn.",
                id="approval-interrupt"),
    ]

    DEFAULT_CSS = """
    ApprovalScreen {
        align: center middle;
        background: $background 60%;
    }
    ApprovalScreen > #approval-dialog {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 90%;
        border: thick $warning;
        background: $surface;
        padding: 0 1;
    }
    #approval-title { text-style: bold; color: $text-warning; width: 1fr; }
    #approval-counter { color: $text-muted; width: auto; }
    #approval-reason { color: $text-muted; margin: 0 0 1 0; }
    #approval-preview-scroll { height: auto; background: $panel; padding: 0 1; }
    #approval-keys { margin: 1 0 0 0; color: $text-muted; }
    #approval-feedback { display: none; margin: 1 0 0 0; }
    ApprovalScreen.-feedback #approval-feedback { display: block; }
    ApprovalScreen.-feedback #approval-keys { display: none; }
    """

    def __init__(self, items: list[ApprovalItem]) -> None:
        super().__init__()
        self.items = items
        self.index = 0
        self.answers: list[ApprovalAnswer] = []

    @property
    def current(self) -> ApprovalItem:
        """The call being asked about."""
        return self.items[self.index]

    def compose(self) -> ComposeResult:
        with Vertical(id="approval-dialog"):
            with Horizontal(classes="title-row"):
                yield Label(id="approval-title", markup=False)
                yield Label(id="approval-counter", markup=False)
            yield Static(id="approval-reason", markup=False)
            with VerticalScroll(id="approval-preview-scroll"):
                yield Static(id="approval-preview", markup=False)
            yield Static(id="approval-keys", markup=False)
            yield Input(placeholder="Tell the model why (Enter sends, Esc goes back)", id="approval-feedback")

    def on_mount(self) -> None:
        self.query_one("#approval-dialog").styles.height = "auto"
        self.query_one(".title-row").styles.height = 1
        self._show()

    def _show(self) -> None:
        item = self.current
        subject = f": {item.subject}" if item.subject and item.tool not in ("bash",) else ""
        self.query_one("#approval-title", Label).update(f"Allow {item.tool}{subject}?")
        self.query_one("#approval-counter", Label).update(
            f"{self.index + 1} of {len(self.items)}" if len(self.items) > 1 else ""
        )
        reason = self.query_one("#approval-reason", Static)
        reason.update(item.reason or "")
        reason.display = bool(item.reason)
        preview = render_preview(item)
        self.query_one("#approval-preview", Static).update(preview)
        scroll = self.query_one("#approval-preview-scroll", VerticalScroll)
        scroll.styles.height = self._preview_height(preview)
        scroll.scroll_home(animate=False)
        rule = self._rule_pattern(item)
        keys = Content.assemble(
            ("y", "bold $text-success"), " approve   ",
            ("a", "bold $text-accent"), " always this session   ",
            ("A", "bold $text-accent"), " always (save)   ",
            ("n", "bold $text-error"), " deny   ",
            ("f", "bold $text-error"), " deny with feedback   ",
            ("esc", "bold"), " interrupt",
            (f"\n\"always\" allows {item.tool}: {rule}" if rule else "", "$text-muted"),
        )
        self.query_one("#approval-keys", Static).update(keys)

    def _preview_height(self, preview: Content) -> int:
        """Lines the preview needs, capped at half the terminal (an auto height would not shrink)."""
        width = max(20, min(110, int(self.app.size.width * 0.9)) - 6)
        lines = sum(max(1, -(-len(line) // width)) for line in preview.plain.split("\n"))
        return max(1, min(lines, max(3, self.app.size.height // 2)))

    @staticmethod
    def _rule_pattern(item: ApprovalItem) -> str | None:
        subject = item.subject or (str(item.arguments.get("command", "")) if item.tool == "bash" else "")
        return suggest_rule_pattern(item.tool, subject) if subject else None

    def _answer(self, approved: bool, *, feedback: str | None = None, remember: str | None = None) -> None:
        item = self.current
        self.answers.append(
            ApprovalAnswer(
                tool_call_id=item.tool_call_id,
                approved=approved,
                feedback=feedback,
                remember=remember,  # type: ignore[arg-type]
                rule_pattern=self._rule_pattern(item) if remember else None,
            )
        )
        if self.index + 1 < len(self.items):
            self.index += 1
            self._show()
        else:
            self.dismiss(ApprovalResult(self.answers))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        feedback_open = self.has_class("-feedback")
        if action in {"approve", "always", "always_forever", "deny", "feedback"}:
            return not feedback_open
        return True

    def action_approve(self) -> None:
        """Approve this call once."""
        self._answer(True)

    def action_always(self) -> None:
        """Approve and remember for the session."""
        self._answer(True, remember="session")

    def action_always_forever(self) -> None:
        """Approve and save a rule."""
        self._answer(True, remember="forever")

    def action_deny(self) -> None:
        """Deny this call."""
        self._answer(False)

    def action_feedback(self) -> None:
        """Open the feedback input."""
        self.add_class("-feedback")
        feedback = self.query_one("#approval-feedback", Input)
        feedback.value = ""
        feedback.focus()

    def action_escape(self) -> None:
        """Close the feedback input, or interrupt: deny everything and stop the turn."""
        if self.has_class("-feedback"):
            self.remove_class("-feedback")
            self.set_focus(None)
            return
        self.interrupt()

    def interrupt(self) -> None:
        """Deny every call not yet answered and close."""
        for item in self.items[len(self.answers):]:
            self.answers.append(ApprovalAnswer(tool_call_id=item.tool_call_id, approved=False))
        self.dismiss(ApprovalResult(self.answers, interrupted=True))

    @on(Input.Submitted, "#approval-feedback")
    def _feedback_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.remove_class("-feedback")
        self.set_focus(None)
        self._answer(False, feedback=text or None)
