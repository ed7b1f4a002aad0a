"""The Textual application: themes, keymap, palette commands, and `run_tui` for the CLI."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.theme import Theme

from ml_intern.core.operations import Operation, Resume
from ml_intern.tui.screens.main import MainScreen
from ml_intern.tui.themes import BUILTIN_FALLBACK_THEME, FALLBACK_THEME, load_theme_dir

if TYPE_CHECKING:
    from ml_intern.config import Settings

_DEFAULT = object()


class MLInternApp(App[int]):
    """ml-intern's full-screen front end."""

    TITLE = "ml-intern"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", tooltip="Quit ml-intern (asks first while a turn runs).", priority=True,
                id="quit"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        demo: bool = False,
        agent_factory: Callable[[], Any] | None = None,
        resume: str | None = None,
        continue_latest: bool = False,
        history_file: Path | None | object = _DEFAULT,
        theme_dirs: list[Path] | None = None,
        max_blocks: int = 120,
        save_settings: bool = True,
        token_prompt: bool | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.demo = demo
        self.agent_factory = agent_factory or self._create_agent
        self.resume = resume
        self.continue_latest = continue_latest
        self.max_blocks = max_blocks
        self.save_settings_enabled = save_settings
        self.main_screen: MainScreen | None = None
        # Ask for a Hugging Face token when the app builds the real agent itself (not in the demo or when embedded).
        self.token_prompt = (agent_factory is None) if token_prompt is None else token_prompt
        self.token_prompt = self.token_prompt and not demo
        self._token_prompt_done = False
        # (title, body) of every terminal notification sent, newest last (tests and /status read it).
        self.terminal_notifications: list[tuple[str, str]] = []
        if history_file is _DEFAULT:
            from ml_intern.tui.history import history_path

            history_file = history_path()
        self.history_file: Path | None = history_file  # type: ignore[assignment]
        if demo:
            self.title = "ml-intern — DEMO"
        if theme_dirs is None:
            from ml_intern import paths

            theme_dirs = [paths.shipped_themes_dir(), paths.config_dir() / "themes"]
        loaded = load_theme_dir(*theme_dirs)
        self.theme_problems = loaded.problems
        for theme in loaded.themes:
            self.register_theme(theme)
        if settings.keymap:
            self.set_keymap(dict(settings.keymap))

    # -- start-up -------------------------------------------------------------------------------

    def _make_main_screen(self) -> MainScreen:
        startup: list[Operation] = [Resume(session_id=self.resume)] if self.resume else []
        initial_text = ""
        if self.demo:
            from ml_intern.demo import DEMO_PROMPT

            initial_text = DEMO_PROMPT
        return MainScreen(
            self.agent_factory,
            demo=self.demo,
            model=self.settings.model_name,
            approval_mode=self.settings.approval_mode,
            max_blocks=self.max_blocks,
            startup_ops=startup,
            initial_text=initial_text,
        )

    async def on_mount(self) -> None:
        self._apply_initial_theme()
        # Pushed rather than returned from get_default_screen so the screen's own .tcss is loaded.
        self.main_screen = self._make_main_screen()
        await self.push_screen(self.main_screen)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.continue_latest and not self.resume:
            self._continue_latest()
        self.check_hf_token()

    def _apply_initial_theme(self) -> None:
        for problem in self.theme_problems:
            self.notify(f"Theme file skipped: {problem}", title="Theme", severity="warning", timeout=8)
        wanted = self.settings.theme
        if wanted in self.available_themes:
            self.theme = wanted
            return
        fallback = FALLBACK_THEME if FALLBACK_THEME in self.available_themes else BUILTIN_FALLBACK_THEME
        self.notify(f"Theme {wanted!r} is not available; using {fallback}.", title="Theme", severity="warning")
        self.theme = fallback

    def _theme_changed(self, theme: Theme) -> None:
        if theme.name != self.settings.theme:
            self.settings.theme = theme.name
            self.save_settings({"theme": theme.name})

    @work(group="settings", exit_on_error=False)
    async def save_settings(self, changes: dict[str, Any]) -> None:
        """Merge changes into config.toml off the event loop."""
        if not self.save_settings_enabled:
            return
        from ml_intern.config import save_user_settings

        try:
            await asyncio.to_thread(save_user_settings, changes)
        except OSError as exc:
            self.notify(f"Could not save settings: {exc}", severity="error")

    @work(group="hf-token", exclusive=True, exit_on_error=False)
    async def check_hf_token(self, model: str | None = None) -> None:
        """Ask for a Hugging Face token when the model needs the router and none is set (once per run)."""
        if not self.token_prompt or self._token_prompt_done:
            return
        from ml_intern.tui.screens.token import TokenScreen, needs_hf_token

        model = model or self.settings.model_name
        if not await asyncio.to_thread(needs_hf_token, model):
            return
        self._token_prompt_done = True
        user = await self.push_screen_wait(TokenScreen(model))
        main = self.main_screen
        if main is None:
            return
        if user is None:
            await main.notice(
                f"No Hugging Face token: {model} will fail until you set one. Export HF_TOKEN, run "
                "`hf auth login`, or pick a local model (ollama/…, vllm/…) with /model. Token page: "
                "https://huggingface.co/settings/tokens",
                "warning",
            )
        else:
            await main.notice(f"Signed in to Hugging Face as {user or 'you'}; the token is saved for next time.",
                              "success")

    def terminal_notify(self, title: str, body: str = "") -> None:
        """Ring the bell and raise a desktop notification (OSC 9) unless `terminal_notifications` is off."""
        if not getattr(self.settings, "terminal_notifications", True):
            return
        self.terminal_notifications.append((title, body))
        del self.terminal_notifications[:-50]
        if self.is_headless or self._driver is None:
            return
        from ml_intern.core.notifications import terminal_notification_sequence

        # Through the driver's writer thread, between frames: never a raw print to stdout.
        self._driver.write(terminal_notification_sequence(title, body))

    @work(group="sessions", exit_on_error=False)
    async def _continue_latest(self) -> None:
        from ml_intern.core.session import list_sessions

        sessions = await asyncio.to_thread(list_sessions)
        if not sessions:
            self.notify("No saved session to continue; starting a new one.")
        elif self.main_screen is not None:
            self.main_screen.submit(Resume(session_id=sessions[0].session_id))

    async def _create_agent(self) -> Any:
        """Build the real agent (the demo gets the scripted model and a temporary workspace)."""
        if self.demo:
            demo = await asyncio.to_thread(importlib.import_module, "ml_intern.demo")
            return demo.build_demo_agent(self.settings)
        module = await asyncio.to_thread(importlib.import_module, "ml_intern.core.agent")
        return module.Agent(self.settings)

    # -- commands and quitting ------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        main = self.main_screen
        if main is None:
            return
        for action, title, help_text in MainScreen.PALETTE_ACTIONS:
            if main.check_action(action, ()) is not True:
                continue
            key = main._key_for(action)
            suffix = f"  ({self.get_key_display(Binding(key, ''))})" if key else ""
            yield SystemCommand(title, help_text + suffix, partial(main.run_action, action))
        for mode in ("ask", "auto", "yolo"):
            yield SystemCommand(
                f"Approval mode: {mode}", f"Set the approval mode to {mode}", partial(main.set_approval_mode, mode)
            )
        for name in ("hf-dark", "hf-light", "high-contrast"):
            if name in self.available_themes:
                yield SystemCommand(f"Theme: {name}", "Switch theme (saved)", partial(setattr, self, "theme", name))

    async def action_quit(self) -> None:
        """Quit, through the main screen so a running turn asks first."""
        main = self.main_screen
        if main is not None and main.is_attached:
            main.action_quit()
        else:
            self.exit(0)

    @work(group="shutdown", exclusive=True, exit_on_error=False)
    async def shutdown_and_exit(self, return_code: int = 0) -> None:
        """Stop the agent (briefly) and exit."""
        agent = self.main_screen.agent if self.main_screen is not None else None
        if agent is not None:
            try:
                await asyncio.wait_for(agent.shutdown(timeout=2.0), 3.0)
            except Exception:
                pass
        self.exit(return_code)


def run_tui(
    settings: Settings, demo: bool = False, resume: str | None = None, continue_latest: bool = False
) -> int:
    """Run the full-screen app and return the process exit code."""
    app = MLInternApp(settings, demo=demo, resume=resume, continue_latest=continue_latest)
    result = app.run()
    return int(result or 0) if app.return_code in (None, 0) else int(app.return_code or 0)
