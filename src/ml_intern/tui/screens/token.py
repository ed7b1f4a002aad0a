"""First-launch Hugging Face token prompt: a masked field, checked against the Hub, saved like `hf auth login`."""

from __future__ import annotations

import asyncio
import os
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

TOKENS_URL = "https://huggingface.co/settings/tokens"


class TokenRejected(Exception):
    """The Hub did not accept the token, or could not be reached; the message never contains the token."""


def needs_hf_token(model: str) -> bool:
    """Whether `model` goes through the Hugging Face router and no token is available (blocking: reads files)."""
    from ml_intern.core.llm import resolve_model

    if resolve_model(model).get("_route") != "hf_router":
        return False
    from huggingface_hub import get_token

    return get_token() is None


def validate_and_save_token(token: str) -> str:
    """Check `token` with whoami on the configured endpoint, save it as the active token; return the user name.

    Blocking. `huggingface_hub.login()` validates against the endpoint fixed when the library was imported, so
    this validates against HF_ENDPOINT itself and then makes the two calls `login()` makes to store the token.
    """
    from huggingface_hub import HfApi

    from ml_intern.tools.hf_common import describe_http_error, hf_endpoint

    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise TokenRejected("That does not look like a token (it is empty or has spaces).")
    if token.startswith("api_org"):
        raise TokenRejected("That is an organization token: paste a personal access token.")
    try:
        info = HfApi(endpoint=hf_endpoint(), token=token).whoami()
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message for the user
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            message = "The Hub did not accept this token (401). Copy it again, or create a new one."
        else:
            message = describe_http_error(exc, "Could not check the token")
        raise TokenRejected(message.replace(token, "***")) from None
    user = str(info.get("name") or "")
    access = (info.get("auth") or {}).get("accessToken") or {}
    token_name = str(access.get("displayName") or f"ml-intern-{user or 'token'}")
    try:
        from huggingface_hub._login import _set_active_token
        from huggingface_hub.utils._auth import _save_token
    except ImportError:  # the private helpers moved: fall back to the public call (default endpoint)
        from huggingface_hub import login

        login(token=token, add_to_git_credential=False)
    else:
        _save_token(token=token, token_name=token_name)
        _set_active_token(token_name=token_name, add_to_git_credential=False)
    os.environ["HF_TOKEN"] = token
    return user


class TokenScreen(ModalScreen[str | None]):
    """Ask once for a Hugging Face token; dismisses with the user name, or None when skipped."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "skip", "Skip", tooltip="Continue without a token (set HF_TOKEN later).", id="token-skip"),
    ]
    DEFAULT_CSS = """
    TokenScreen { align: center middle; background: $background 60%; }
    TokenScreen > Vertical {
        width: 84; max-width: 95%; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    TokenScreen #token-title { text-style: bold; color: $text-accent; margin: 0 0 1 0; }
    TokenScreen #token-body { margin: 0 0 1 0; }
    TokenScreen #token-error { color: $text-error; height: auto; margin: 1 0 0 0; display: none; }
    TokenScreen #token-error.-visible { display: block; }
    TokenScreen #token-hint { color: $text-muted; margin: 1 0 0 0; }
    """

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model
        self.checking = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Hugging Face token needed", id="token-title")
            yield Static(
                Content.assemble(
                    (self.model, "bold"),
                    " runs through the Hugging Face inference router, which needs an access token. "
                    "Create one (with the “Make calls to Inference Providers” permission) at ",
                    (TOKENS_URL, f'link="{TOKENS_URL}" underline'),
                    " and paste it here. It is checked with the Hub, saved like `hf auth login`, "
                    "and never shown or logged.",
                ),
                id="token-body",
            )
            yield Input(placeholder="hf_…", password=True, id="token-input")
            yield Static("", id="token-error", markup=False)
            yield Static(
                "Enter save · Esc skip (set HF_TOKEN or run `hf auth login` later; local models such as "
                "ollama/… need no token)",
                id="token-hint",
                markup=False,
            )

    def on_mount(self) -> None:
        self.query_one("#token-input", Input).focus()

    @on(Input.Submitted, "#token-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.checking:
            return
        self.checking = True
        self._show_error("")
        self.query_one("#token-hint", Static).update("Checking the token with the Hub…")
        self.check_token(event.value)

    @work(group="token-check", exclusive=True, exit_on_error=False)
    async def check_token(self, token: str) -> None:
        """Validate and save off the event loop; errors stay in the dialog."""
        try:
            user = await asyncio.to_thread(validate_and_save_token, token)
        except TokenRejected as exc:
            self.checking = False
            self._show_error(str(exc))
            self.query_one("#token-hint", Static).update("Enter try again · Esc skip")
            return
        except Exception as exc:  # noqa: BLE001 - e.g. the token file cannot be written
            self.checking = False
            self._show_error(f"Could not save the token: {type(exc).__name__}: {exc}".replace(token.strip(), "***"))
            return
        self.dismiss(user)

    def _show_error(self, text: str) -> None:
        error = self.query_one("#token-error", Static)
        error.update(text)
        error.set_class(bool(text), "-visible")

    def action_skip(self) -> None:
        """Continue without a token."""
        self.dismiss(None)


if __name__ == "__main__":
    from textual.app import App

    class _Demo(App[Any]):
        def on_mount(self) -> None:
            self.push_screen(TokenScreen("moonshotai/Kimi-K2.6"), lambda user: self.exit(user))

    _Demo().run()
