"""The rewind picker: choose one of your earlier messages and rewind the conversation (and files) to before it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from ml_intern.core.context import RewindPoint

if TYPE_CHECKING:
    from ml_intern.tui.screens.main import MainScreen


@dataclass(frozen=True)
class RewindChoice:
    """Rewind `turns` user turns; `restore_files` also puts back the files they changed."""

    turns: int
    restore_files: bool


def point_row(point: RewindPoint) -> Content:
    """One line per message: when, how far back, and the text."""
    when = time.strftime("%H:%M", time.localtime(point.timestamp))
    text = " ".join(point.text.split())
    text = text[:110] + ("…" if len(text) > 110 else "")
    back = f"{point.turns_back} turn{'s' if point.turns_back != 1 else ''} back"
    return Content.assemble((f"{when}  ", "$text-muted"), (f"{back:<13}", "$text-accent"), text)


class RewindScreen(ModalScreen[RewindChoice | None]):
    """Pick a message of yours to rewind to (it is removed with everything after it)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "f",
            "rewind(True)",
            "Conversation and files",
            tooltip="Rewind and restore the files ml-intern changed.",
            id="rewind-with-files",
        ),
        Binding(
            "c",
            "rewind(False)",
            "Conversation only",
            tooltip="Rewind the conversation; leave files as they are.",
            id="rewind-conversation-only",
        ),
        Binding("escape", "cancel", "Cancel", tooltip="Close without rewinding.", id="rewind-cancel"),
    ]
    DEFAULT_CSS = """
    RewindScreen { align: center middle; background: $background 60%; }
    RewindScreen > Vertical {
        width: 90%; max-width: 130; height: auto; max-height: 85%; border: thick $primary; background: $surface;
        padding: 1 2;
    }
    RewindScreen #rewind-title { text-style: bold; margin: 0 0 1 0; }
    RewindScreen #rewind-points { height: auto; max-height: 16; }
    RewindScreen #rewind-detail { margin: 1 0 0 0; height: auto; max-height: 8; color: $text-muted; }
    RewindScreen #rewind-hint { margin: 1 0 0 0; }
    """

    def __init__(self, points: list[RewindPoint], workdir: Path | None = None) -> None:
        super().__init__()
        self.points = points
        self.workdir = workdir

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Rewind to before one of your messages", id="rewind-title")
            yield OptionList(
                *(Option(point_row(p), id=str(p.turns_back)) for p in self.points), id="rewind-points"
            )
            yield Static("", id="rewind-detail", markup=False)
            yield Label(
                Content.assemble(
                    ("f", "bold"),
                    "/",
                    ("Enter", "bold"),
                    " conversation and files   ",
                    ("c", "bold"),
                    " conversation only   ",
                    ("Esc", "bold"),
                    " cancel",
                ),
                id="rewind-hint",
            )

    def on_mount(self) -> None:
        options = self.query_one("#rewind-points", OptionList)
        if self.points:
            options.highlighted = 0
        options.focus()

    @property
    def highlighted(self) -> RewindPoint | None:
        """The message under the cursor."""
        index = self.query_one("#rewind-points", OptionList).highlighted
        return self.points[index] if index is not None and 0 <= index < len(self.points) else None

    @on(OptionList.OptionHighlighted, "#rewind-points")
    def _show_detail(self, event: OptionList.OptionHighlighted) -> None:
        point = self.highlighted
        if point is None:
            return
        lines = [f"Removes this message and the {point.messages_after - 1} after it."]
        if point.files_changed:
            names = [self._short(path) for path in point.files_changed]
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            lines.append(f"Files changed since then: {shown}.")
        else:
            lines.append("No file was changed by write or edit since then.")
        lines.append("Shell commands and remote operations are not undone.")
        self.query_one("#rewind-detail", Static).update("\n".join(lines))

    def _short(self, path: str) -> str:
        if self.workdir is not None:
            try:
                return str(Path(path).relative_to(self.workdir))
            except ValueError:
                pass
        return path

    @on(OptionList.OptionSelected, "#rewind-points")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.action_rewind(True)

    def action_rewind(self, restore_files: bool) -> None:
        """Close with the highlighted message and the chosen scope."""
        point = self.highlighted
        if point is not None:
            self.dismiss(RewindChoice(point.turns_back, restore_files))

    def action_cancel(self) -> None:
        """Close without rewinding."""
        self.dismiss(None)


def open_rewind(screen: MainScreen) -> None:
    """Show the rewind picker over the main screen and submit the chosen rewind."""
    agent: Any = screen.agent
    points: list[RewindPoint] = (
        agent.rewind_points() if agent is not None and hasattr(agent, "rewind_points") else []
    )
    if not points:
        screen.app.notify("Nothing to rewind yet: send a message first.")
        return

    def picked(choice: RewindChoice | None) -> None:
        if choice is None:
            return
        from ml_intern.core.operations import Undo

        screen.submit(Undo(turns=choice.turns, restore_files=choice.restore_files))

    screen.app.push_screen(RewindScreen(points, getattr(agent, "workdir", None)), picked)


if __name__ == "__main__":
    from textual.app import App

    now = time.time()
    demo_points = [
        RewindPoint(1, 9, 3, "now push the model to the Hub", now - 60, 4, ["/tmp/work/push.py"]),
        RewindPoint(
            2,
            5,
            2,
            "train for 3 epochs with lr 2e-5",
            now - 600,
            8,
            ["/tmp/work/push.py", "/tmp/work/train.py"],
        ),
        RewindPoint(
            3, 1, 1, "look at the IMDB dataset", now - 900, 12, ["/tmp/work/push.py", "/tmp/work/train.py"]
        ),
    ]

    class _Demo(App[Any]):
        def on_mount(self) -> None:
            self.push_screen(RewindScreen(demo_points, Path("/tmp/work")), lambda value: self.exit(value))

    print(_Demo().run())
