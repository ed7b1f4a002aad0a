"""The session picker: saved sessions newest first, filterable, with a preview of the highlighted one."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from ml_intern.core.session import SessionInfo, list_sessions, load_session

if TYPE_CHECKING:
    from ml_intern.tui.screens.main import MainScreen

PREVIEW_MESSAGES = 8


def session_row(info: SessionInfo, current: bool = False) -> Content:
    """Two lines for one session: its title, then date, model, size and id."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated)) if info.updated else "-"
    title = info.title or info.preview or "(untitled)"
    details = f"{when} · {info.model or '?'} · {info.messages} messages · {info.session_id}"
    parts: list[tuple[str, str] | str] = [(title, "bold")]
    if current:
        parts.append((" (this session)", "$text-accent"))
    parts += ["\n", (details, "$text-muted")]
    return Content.assemble(*parts)


def preview_text(path: Path, limit: int = PREVIEW_MESSAGES) -> str:
    """The last messages of a saved session as plain text (blocking: run it in a thread)."""
    loaded = load_session(path)
    lines: list[str] = []
    for record in loaded.records[-limit:]:
        message = record.get("message") or {}
        role = {"task": "you", "injected": "ml-intern", "summary": "summary"}.get(record.get("kind", ""), "")
        role = role or {"assistant": "assistant", "tool": f"tool {message.get('name', '')}"}.get(
            message.get("role", ""), message.get("role", "")
        )
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        calls = [c.get("function", {}).get("name", "") for c in message.get("tool_calls") or []]
        if calls:
            text = (text + "\n" if text else "") + "→ " + ", ".join(calls)
        text = " ".join(text.split())
        lines.append(f"{role}: {text[:240]}{'…' if len(text) > 240 else ''}")
    if loaded.plan:
        done = sum(1 for item in loaded.plan if item.get("status") == "completed")
        lines.append(f"\nplan: {done}/{len(loaded.plan)} done")
    return "\n\n".join(lines) or "(no messages)"


class SessionPicker(ModalScreen[str | None]):
    """Choose a saved session to resume; dismisses with its id, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without resuming.", id="sessions-cancel"),
        Binding("down", "focus_list", "Sessions", show=False, id="sessions-focus-list"),
    ]
    DEFAULT_CSS = """
    SessionPicker { align: center middle; background: $background 60%; }
    SessionPicker > Vertical {
        width: 90%; max-width: 150; height: 80%; border: thick $primary; background: $surface; padding: 1 2;
    }
    SessionPicker #sessions-title { text-style: bold; margin: 0 0 1 0; }
    SessionPicker #sessions-filter { margin: 0 0 1 0; }
    SessionPicker #sessions-body { height: 1fr; }
    SessionPicker #sessions-list { width: 3fr; height: 1fr; }
    SessionPicker #sessions-preview {
        width: 2fr; height: 1fr; padding: 0 1; border-left: solid $primary-muted; overflow-y: auto;
    }
    SessionPicker #sessions-hint { color: $text-muted; margin: 1 0 0 0; }
    """

    class Loaded(Message):
        """The saved sessions were read."""

        def __init__(self, sessions: list[SessionInfo]) -> None:
            super().__init__()
            self.sessions = sessions

    class PreviewLoaded(Message):
        """The preview of one session was read."""

        def __init__(self, session_id: str, text: str) -> None:
            super().__init__()
            self.session_id = session_id
            self.text = text

    def __init__(self, current_session_id: str = "", directory: Path | None = None) -> None:
        super().__init__()
        self.current_session_id = current_session_id
        self.directory = directory
        self.sessions: list[SessionInfo] = []
        self._highlighted: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Resume a session", id="sessions-title")
            yield Input(placeholder="filter by title, id or model", id="sessions-filter")
            with Horizontal(id="sessions-body"):
                yield OptionList(id="sessions-list")
                yield Static("Loading sessions…", id="sessions-preview", markup=False)
            yield Label("Enter resume · ↑↓ move · type to filter · Esc cancel", id="sessions-hint")

    @property
    def option_list(self) -> OptionList:
        """The list of sessions."""
        return self.query_one("#sessions-list", OptionList)

    def on_mount(self) -> None:
        self.load_sessions()

    @work(group="sessions", exit_on_error=False)
    async def load_sessions(self) -> None:
        """Read the session files in a thread."""
        sessions = await asyncio.to_thread(list_sessions, self.directory)
        self.post_message(self.Loaded(sessions))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.sessions = message.sessions
        self._show(self.sessions)
        if not self.sessions:
            self.query_one("#sessions-preview", Static).update("No saved sessions yet.")
        self.option_list.focus()

    def _show(self, sessions: list[SessionInfo]) -> None:
        options = self.option_list
        options.clear_options()
        options.add_options(
            Option(session_row(info, info.session_id == self.current_session_id), id=info.session_id)
            for info in sessions
        )
        if sessions:
            options.highlighted = 0

    @on(Input.Changed, "#sessions-filter")
    def _filter(self, event: Input.Changed) -> None:
        needle = event.value.strip().lower()
        shown = [
            info
            for info in self.sessions
            if not needle or needle in f"{info.title} {info.session_id} {info.model} {info.preview}".lower()
        ]
        self._show(shown)

    @on(Input.Submitted, "#sessions-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        option = self.option_list.highlighted_option
        if option is not None:
            self.dismiss(option.id)

    @on(OptionList.OptionHighlighted, "#sessions-list")
    def _highlighted_changed(self, event: OptionList.OptionHighlighted) -> None:
        session_id = event.option.id
        info = next((s for s in self.sessions if s.session_id == session_id), None)
        if info is None:
            return
        self._highlighted = session_id
        self.load_preview(info.session_id, info.path)

    @work(group="session-preview", exclusive=True, exit_on_error=False)
    async def load_preview(self, session_id: str, path: Path) -> None:
        """Read the highlighted session's last messages in a thread."""
        try:
            text = await asyncio.to_thread(preview_text, path)
        except Exception as exc:  # noqa: BLE001 - a damaged file must not break the picker
            text = f"Could not read this session: {exc}"
        self.post_message(self.PreviewLoaded(session_id, text))

    @on(PreviewLoaded)
    def _preview_loaded(self, message: PreviewLoaded) -> None:
        if message.session_id == self._highlighted:
            self.query_one("#sessions-preview", Static).update(message.text)

    @on(OptionList.OptionSelected, "#sessions-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_focus_list(self) -> None:
        """Move from the filter to the list."""
        self.option_list.focus()

    def action_cancel(self) -> None:
        """Close without resuming."""
        self.dismiss(None)


def open_session_picker(screen: MainScreen) -> None:
    """Show the picker over the main screen and resume the chosen session."""
    current = str(getattr(screen.agent, "session_id", "") or "")

    async def picked(session_id: str | None) -> None:
        if not session_id:
            return
        if session_id == current:
            await screen.notice("That is the session you are in.")
            return
        await screen.clear_transcript()
        from ml_intern.core.operations import Resume

        screen.submit(Resume(session_id=session_id))

    screen.app.push_screen(SessionPicker(current), picked)


if __name__ == "__main__":
    from textual.app import App

    class _Demo(App[Any]):
        def on_mount(self) -> None:
            self.push_screen(SessionPicker(), lambda value: self.exit(value))

    print(_Demo().run())
