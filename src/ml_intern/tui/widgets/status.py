"""One-line status bar: model, context used, tokens, cost, working or idle, approval mode."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.widgets import Static


def format_tokens(count: int) -> str:
    """Return 1234 as "1.2k", 1234567 as "1.2M"."""
    if count >= 1_000_000:
        return f"{count / 1_000_000:.1f}M"
    if count >= 1_000:
        return f"{count / 1_000:.1f}k"
    return str(count)


@dataclass
class StatusInfo:
    """Everything the status bar shows."""

    model: str = ""
    context_tokens: int = 0
    context_window: int = 0
    session_tokens: int = 0
    session_cost_usd: float = 0.0
    working: bool = False
    activity: str = ""
    approval_mode: str = "ask"
    queued: int = 0
    demo: bool = False
    connected: bool = False


class StatusBar(Static):
    """Fixed one-line bar; updated without a layout pass."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(markup=False, id=id)
        self.info = StatusInfo()

    def on_mount(self) -> None:
        self.show()

    def on_resize(self) -> None:
        self.show()

    def set(self, **changes: object) -> None:
        """Change some fields and repaint."""
        for key, value in changes.items():
            setattr(self.info, key, value)
        self.show()

    def show(self) -> None:
        """Repaint from `info`."""
        info = self.info
        sep = (" │ ", "$text-muted")
        parts: list[str | tuple[str, str]] = []
        if info.demo:
            parts += [(" DEMO ", "bold reverse $text-warning"), " "]
        if not info.connected:
            parts.append(("◌ starting", "$text-muted"))
        elif info.working:
            parts.append((f"● {info.activity or 'working'}", "bold $text-accent"))
        else:
            parts.append(("○ idle", "$text-success"))
        if info.queued:
            parts += [sep, (f"{info.queued} queued", "$text-warning")]
        parts += [sep, (info.model or "no model", "bold")]
        if info.context_window:
            used = info.context_tokens / info.context_window
            style = "$text-error" if used >= 0.85 else "$text-warning" if used >= 0.7 else ""
            parts.append(sep)
            parts.append((f"ctx {used:.0%}", style))
            if self.size.width >= 100:
                parts.append((f" of {format_tokens(info.context_window)}", "$text-muted"))
        parts += [sep, f"{format_tokens(info.session_tokens)} tok", sep, f"${info.session_cost_usd:.2f}"]
        mode_style = "bold $text-error" if info.approval_mode == "yolo" else "$text-muted"
        parts += [sep, (info.approval_mode if self.size.width < 100 else f"approve: {info.approval_mode}", mode_style)]
        self.update(Content.assemble(*parts), layout=False)
