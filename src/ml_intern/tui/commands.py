"""Slash commands typed in the prompt; one registry so new commands are one decorated function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ml_intern.tui.screens.main import MainScreen

CommandHandler = Callable[["MainScreen", str], Awaitable[None] | None]


@dataclass(frozen=True)
class SlashCommand:
    """A `/name [args]` command."""

    name: str
    help: str
    handler: CommandHandler
    usage: str = ""


COMMANDS: dict[str, SlashCommand] = {}


def slash_command(name: str, help: str, usage: str = "") -> Callable[[CommandHandler], CommandHandler]:
    """Register a handler for `/name`."""

    def register(handler: CommandHandler) -> CommandHandler:
        COMMANDS[name] = SlashCommand(name, help, handler, usage)
        return handler

    return register


def parse_slash(text: str) -> tuple[str, str] | None:
    """Split "/model gpt-5" into ("model", "gpt-5"); None when the text is not a command."""
    if not text.startswith("/") or text.startswith("//"):
        return None
    name, _, argument = text[1:].partition(" ")
    return name.strip().lower(), argument.strip()


def help_text() -> str:
    """Return the list of commands, one per line."""
    width = max(len(f"/{c.name} {c.usage}".rstrip()) for c in COMMANDS.values())
    return "\n".join(f"{f'/{c.name} {c.usage}'.rstrip():<{width}}  {c.help}" for c in COMMANDS.values())


@slash_command("help", "Show commands and keys")
async def _help(screen: MainScreen, argument: str) -> None:
    await screen.show_help()


@slash_command("undo", "Remove the last turn and restore the files it changed")
def _undo(screen: MainScreen, argument: str) -> None:
    screen.action_undo()


@slash_command("compact", "Summarise the history to free context")
def _compact(screen: MainScreen, argument: str) -> None:
    screen.action_compact()


@slash_command("new", "Save this conversation and start a fresh one")
def _new(screen: MainScreen, argument: str) -> None:
    screen.action_new_session()


@slash_command("clear", "Clear the screen (the conversation is kept)")
async def _clear(screen: MainScreen, argument: str) -> None:
    await screen.clear_transcript()


@slash_command("model", "Switch model (opens a picker without an id)", "[id]")
def _model(screen: MainScreen, argument: str) -> None:
    if argument:
        screen.set_model(argument)
    else:
        screen.action_switch_model()


@slash_command("mcp", "List MCP servers, their state and tools; reconnect one", "[reconnect NAME]")
async def _mcp(screen: MainScreen, argument: str) -> None:
    action, _, name = argument.partition(" ")
    if not action:
        await screen.show_mcp_status()
    elif action == "reconnect" and name.strip():
        screen.reconnect_mcp(name.strip())
    else:
        await screen.notice("Usage: /mcp, or /mcp reconnect NAME", "error")


@slash_command("find", "Find text in the conversation (Ctrl+F; Enter for the next match)", "<text>")
def _find(screen: MainScreen, argument: str) -> None:
    screen.open_find(argument)


@slash_command("copy", "Copy the last reply, or its code block, to the clipboard", "[code]")
async def _copy(screen: MainScreen, argument: str) -> None:
    if argument in ("", "reply"):
        screen.action_copy_last_reply()
    elif argument == "code":
        screen.action_copy_last_code()
    else:
        await screen.notice("Usage: /copy [code]", "error")


@slash_command("yolo", "Stop asking for approvals (approval mode yolo)")
def _yolo(screen: MainScreen, argument: str) -> None:
    screen.set_approval_mode("yolo")


@slash_command("approval-mode", "Show or set the approval mode", "[ask|auto|yolo]")
async def _approval_mode(screen: MainScreen, argument: str) -> None:
    if not argument:
        await screen.notice(f"Approval mode: {screen.status.info.approval_mode}")
    elif argument in ("ask", "auto", "yolo"):
        screen.set_approval_mode(argument)
    else:
        await screen.notice(f"Unknown approval mode {argument!r}: use ask, auto or yolo.", "error")


@slash_command("status", "Show model, context, tokens and cost")
async def _status(screen: MainScreen, argument: str) -> None:
    await screen.show_status()


@slash_command("theme", "Show themes or switch (saved to config.toml)", "[name]")
async def _theme(screen: MainScreen, argument: str) -> None:
    if argument:
        screen.app_set_theme(argument)
    else:
        names = ", ".join(sorted(screen.app.available_themes))
        await screen.notice(f"Theme: {screen.app.theme}. Available: {names}")


@slash_command("rewind", "Rewind to before an earlier message (conversation, or conversation and files)")
def _rewind(screen: MainScreen, argument: str) -> None:
    from ml_intern.tui.screens.rewind import open_rewind

    open_rewind(screen)


@slash_command("resume", "Resume a saved session (opens a picker without an id)", "[id]")
async def _resume(screen: MainScreen, argument: str) -> None:
    if argument:
        from ml_intern.core.operations import Resume

        await screen.clear_transcript()
        screen.submit(Resume(session_id=argument))
    else:
        from ml_intern.tui.screens.sessions import open_session_picker

        open_session_picker(screen)


@slash_command("rename", "Give this session a title", "<title>")
async def _rename(screen: MainScreen, argument: str) -> None:
    if not argument:
        await screen.notice("Usage: /rename <title>", "error")
        return
    from ml_intern.core.operations import Rename

    screen.submit(Rename(title=argument))


@slash_command("export", "Write this session as a Claude Code JSONL trace (default: in the working folder)", "[path]")
def _export(screen: MainScreen, argument: str) -> None:
    from ml_intern.core.operations import Export

    screen.submit(Export(path=argument or None))


@slash_command("share-traces", "Show trace sharing, turn it on/off, or set your dataset's visibility",
               "[on|off|private|public]")
async def _share_traces(screen: MainScreen, argument: str) -> None:
    from ml_intern.core.operations import ShareTraces

    choice = argument.lower()
    if choice in ("", "status"):
        screen.submit(ShareTraces())
    elif choice in ("on", "off"):
        screen.submit(ShareTraces(enabled=choice == "on"))
    elif choice in ("private", "public"):
        screen.submit(ShareTraces(visibility=choice))  # type: ignore[arg-type]
    else:
        await screen.notice("Usage: /share-traces [on|off|private|public]", "error")


@slash_command("quit", "Quit ml-intern")
def _quit(screen: MainScreen, argument: str) -> None:
    screen.action_quit()
