"""The agent's todo plan: done, in progress, pending."""

from __future__ import annotations

from collections.abc import Sequence

from textual.content import Content
from textual.widgets import Static

from ml_intern.core.events import PlanItem

_MARKS = {
    "completed": ("✓ ", "$text-success", "strike $text-muted"),
    "in_progress": ("▶ ", "bold $text-accent", "bold"),
    "pending": ("○ ", "$text-muted", ""),
}


class PlanPane(Static):
    """Renders the latest PlanUpdate."""

    DEFAULT_CSS = """
    PlanPane {
        height: auto;
        max-height: 50%;
        padding: 0 1;
        border-title-color: $text-accent;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(markup=False, id=id)
        self.plan: list[PlanItem] = []

    def on_mount(self) -> None:
        self.show_plan([])

    def show_plan(self, plan: Sequence[PlanItem]) -> None:
        """Show a new plan."""
        self.plan = list(plan)
        done = sum(1 for item in self.plan if item.status == "completed")
        self.border_title = f"Plan {done}/{len(self.plan)}" if self.plan else "Plan"
        if not self.plan:
            self.update(Content.styled("No plan yet.", "italic $text-muted"))
            return
        parts: list[tuple[str, str] | str] = []
        for index, item in enumerate(self.plan):
            mark, mark_style, text_style = _MARKS[item.status]
            if index:
                parts.append("\n")
            parts += [(mark, mark_style), (item.content, text_style)]
        self.update(Content.assemble(*parts))
