"""The main screen: conversation, prompt, side panes, status bar; renders agent events."""

from __future__ import annotations

import asyncio
import inspect
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from ml_intern.core import events as ev
from ml_intern.core.jobs import TERMINAL_STAGES
from ml_intern.core.operations import (
    Compact,
    ExecApproval,
    Interrupt,
    New,
    Operation,
    SetApprovalMode,
    SetModel,
    Undo,
    UserInput,
)
from ml_intern.tui.commands import COMMANDS, help_text, parse_slash
from ml_intern.tui.messages import AgentAttached, AgentEvent, AgentStartFailed
from ml_intern.tui.screens.approval import ApprovalResult, ApprovalScreen
from ml_intern.tui.screens.dialogs import ConfirmScreen, ModelPicker
from ml_intern.tui.widgets.conversation import (
    AssistantMessage,
    Conversation,
    Notice,
    ToolCallBlock,
    UserMessage,
    summarize_arguments,
)
from ml_intern.tui.widgets.findbar import FindBar
from ml_intern.tui.widgets.footer import LeanFooter
from ml_intern.tui.widgets.plan import PlanPane
from ml_intern.tui.widgets.prompt import PromptInput
from ml_intern.tui.widgets.status import StatusBar
from ml_intern.tui.widgets.timeline import ToolTimeline

if TYPE_CHECKING:
    from ml_intern.tui.app import MLInternApp


# A turn that ran at least this long ends with a terminal notification (the user has probably looked away).
LONG_TURN_S = 10.0


class AgentLike(Protocol):
    """What the screen needs from the agent core."""

    busy: bool

    async def start(self) -> None: ...

    def submit(self, op: Operation) -> None: ...

    def events(self) -> Any: ...

    async def shutdown(self) -> None: ...


def make_runs_pane() -> Widget | None:
    """Return the Runs pane (jobs and sandboxes), or None if its module cannot be loaded."""
    try:
        from ml_intern.tui.widgets.runs import RunsPane
    except ImportError:
        return None
    return RunsPane(id="runs", classes="pane")


def _is_side_error(event: ev.Event) -> bool:
    """Errors about a side request (a refused model switch) that leave a running turn alone."""
    return isinstance(event, ev.Error) and event.kind == "bad_model"


def _mcp_line(status: Any) -> str:
    """One MCP server as a line of text: mark, name, transport, state, then its tools or its error."""
    mark = {"connected": "●", "connecting": "◌", "failed": "✗"}.get(status.state, "○")
    line = f"{mark} {status.name}  ({status.transport})  {status.state}"
    if status.error:
        line += f": {status.error}"
    if status.tool_names:
        line += f"\n    {len(status.tool_names)} tools: {', '.join(status.tool_names)}"
    elif status.state == "connected":
        line += "\n    no tools"
    return line


class MainScreen(Screen[None]):
    """Everything the user sees while working with the agent."""

    CSS_PATH = "main.tcss"
    AUTO_FOCUS = "#prompt"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (96, "-wide")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "interrupt", "Interrupt", tooltip="Stop the running turn, its tools and approvals.",
                id="interrupt"),
        Binding("ctrl+r", "undo", "Undo turn", tooltip="Remove the last turn and restore the files it changed.",
                id="undo"),
        Binding("f3", "rewind", "Rewind", tooltip="Rewind to before an earlier message (conversation, or files too).",
                show=False, id="rewind"),
        Binding("ctrl+l", "compact", "Compact", tooltip="Summarise the history to free context.", id="compact"),
        Binding("ctrl+n", "new_session", "New", tooltip="Save this conversation and start a fresh one.",
                id="new-session"),
        Binding("f2", "switch_model", "Model", tooltip="Switch the model.", id="switch-model"),
        Binding("ctrl+b", "toggle_sidebar", "Panes", tooltip="Show or hide the side panes.", id="toggle-sidebar"),
        Binding("ctrl+t", "toggle_timeline", "Timeline", tooltip="Show or hide the tool timeline.", show=False,
                id="toggle-timeline"),
        Binding("ctrl+g", "toggle_plan", "Plan", tooltip="Show or hide the plan.", show=False, id="toggle-plan"),
        Binding("ctrl+o", "toggle_runs", "Runs", tooltip="Show or hide the Runs pane (jobs and sandboxes).",
                show=False, id="toggle-runs"),
        # Priority: the prompt's TextArea binds F6 to "select line".
        Binding("f6", "focus_next_pane", "Next pane", tooltip="Move focus to the next pane.", show=False,
                priority=True, id="focus-next-pane"),
        Binding("f1", "help", "Help", tooltip="Show commands and keys.", show=False, id="help"),
        Binding("ctrl+f", "find", "Find", tooltip="Find text in the conversation.", show=False, id="find"),
        Binding("c", "copy_block", "Copy", tooltip="Copy the focused message or tool output (OSC 52).",
                id="copy-block"),
        Binding("b", "copy_code", "Copy code", tooltip="Copy the focused reply's code blocks, one per press.",
                id="copy-code"),
    ]

    # (action, palette title, palette help) for every hotkey.
    PALETTE_ACTIONS: ClassVar[list[tuple[str, str, str]]] = [
        ("interrupt", "Interrupt", "Stop the running turn, its tools and pending approvals"),
        ("undo", "Undo last turn", "Remove the last turn and restore the files it changed"),
        ("rewind", "Rewind…", "Rewind to before an earlier message: conversation only, or files too"),
        ("compact", "Compact history", "Summarise the history to free context"),
        ("new_session", "New session", "Save this conversation and start a fresh one"),
        ("switch_model", "Switch model", "Pick or type a model id"),
        ("toggle_sidebar", "Toggle side panes", "Show or hide plan, timeline and runs"),
        ("toggle_timeline", "Toggle tool timeline", "Show or hide the tool-call table"),
        ("toggle_plan", "Toggle plan", "Show or hide the plan pane"),
        ("toggle_runs", "Toggle Runs pane", "Show or hide jobs and sandboxes"),
        ("focus_next_pane", "Focus next pane", "Prompt, conversation, timeline, runs"),
        ("find", "Find in conversation", "Search the transcript and jump to the next match"),
        ("copy_block", "Copy focused message", "Copy the focused message or tool output to the clipboard"),
        ("copy_last_reply", "Copy last reply", "Copy the agent's last reply to the clipboard"),
        ("copy_last_code", "Copy last code block", "Copy the last code block of the agent's replies"),
        ("help", "Help", "Show slash commands and keys"),
    ]

    def __init__(self, agent_factory: Callable[[], Any], *, demo: bool = False, model: str = "",
                 approval_mode: str = "ask", max_blocks: int = 120, startup_ops: list[Operation] | None = None,
                 initial_text: str = "") -> None:
        super().__init__()
        self.agent_factory = agent_factory
        self.agent: AgentLike | None = None
        self.demo = demo
        self.max_blocks = max_blocks
        self.working = False
        self._unsent_ops: list[Operation] = list(startup_ops or [])
        self._submitted: deque[UserMessage] = deque()
        self._assistant: AssistantMessage | None = None
        self._last_streamed = ""
        self._tool_blocks: weakref.WeakValueDictionary[str, ToolCallBlock] = weakref.WeakValueDictionary()
        self._approval_batches: deque[list[ev.ApprovalItem]] = deque()
        self._approval_screen: ApprovalScreen | None = None
        self._approval_cancelled = False
        self._running_tools: dict[str, str] = {}
        self._runs_pane = make_runs_pane()
        self._initial_model = model
        self._initial_mode = approval_mode
        self._initial_text = initial_text
        self._pending_model: str | None = None
        self._turn_started: float | None = None
        self._code_cursor: weakref.WeakKeyDictionary[Widget, int] = weakref.WeakKeyDictionary()
        self._find_current: weakref.ref[Widget] | None = None
        self._find_query = ""

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="body"):
            with Vertical(id="main-column"):
                yield Conversation(id="conversation", max_blocks=self.max_blocks)
                yield Static("", id="queued-hint", markup=False)
                yield FindBar(id="find-bar")
                yield PromptInput(id="prompt", placeholder=self._placeholder())
            with Vertical(id="side"):
                yield PlanPane(id="plan")
                timeline = ToolTimeline(id="timeline")
                timeline.add_class("pane")
                timeline.border_title = "Tools"
                yield timeline
                if self._runs_pane is not None:
                    self._runs_pane.border_title = "Runs"
                    yield self._runs_pane
        yield StatusBar(id="status")
        yield LeanFooter()

    @staticmethod
    def _placeholder() -> str:
        return "Ask ml-intern…  (Enter send · Ctrl+J newline · /help)"

    @property
    def _app(self) -> MLInternApp:
        return self.app  # type: ignore[return-value]

    @property
    def conversation(self) -> Conversation:
        """The transcript."""
        return self.query_one("#conversation", Conversation)

    @property
    def prompt(self) -> PromptInput:
        """The prompt."""
        return self.query_one("#prompt", PromptInput)

    @property
    def status(self) -> StatusBar:
        """The status bar."""
        return self.query_one("#status", StatusBar)

    @property
    def timeline(self) -> ToolTimeline:
        """The tool timeline."""
        return self.query_one("#timeline", ToolTimeline)

    def on_mount(self) -> None:
        self.status.set(demo=self.demo, model=self._initial_model, approval_mode=self._initial_mode)
        self.query_one("#plan", PlanPane).border_title = "Plan"
        if self._initial_text:
            self.prompt.load_text(self._initial_text)
            self.prompt.move_cursor(self.prompt.document.end)
        self.run_agent()
        self.load_prompt_history()

    # -- agent bridge -----------------------------------------------------------------------------

    @work(group="agent", exit_on_error=False, name="agent-bridge")
    async def run_agent(self) -> None:
        """Create and start the agent off the first paint, then forward its events as messages."""
        try:
            agent = self.agent_factory()
            if inspect.isawaitable(agent):
                agent = await agent
            self.post_message(AgentAttached(agent))
            await agent.start()
        except Exception as exc:  # noqa: BLE001 - shown to the user, the app keeps running
            self.post_message(AgentStartFailed(f"{type(exc).__name__}: {exc}"))
            return
        async for event in agent.events():
            self.post_message(AgentEvent(event))

    def on_agent_attached(self, message: AgentAttached) -> None:
        self.agent = message.agent  # type: ignore[assignment]
        unsent, self._unsent_ops = self._unsent_ops, []
        for op in unsent:
            message.agent.submit(op)  # type: ignore[attr-defined]

    async def on_agent_start_failed(self, message: AgentStartFailed) -> None:
        self.status.set(connected=False, working=False, activity="")
        await self.notice(f"The agent could not start: {message.error}", "error")

    def submit(self, op: Operation) -> None:
        """Send an operation to the agent (held until the agent exists)."""
        if self.agent is None:
            self._unsent_ops.append(op)
        else:
            self.agent.submit(op)

    @work(group="history", exit_on_error=False)
    async def load_prompt_history(self) -> None:
        """Read the persistent prompt history in a thread."""
        app: MLInternApp = self.app  # type: ignore[assignment]
        if app.history_file is None:
            return
        from ml_intern.tui.history import load_history

        entries = await asyncio.to_thread(load_history, app.history_file)
        self.prompt.load_history(entries)

    @work(group="history", exit_on_error=False)
    async def save_prompt_history(self, text: str) -> None:
        """Append a prompt to the history file in a thread."""
        app: MLInternApp = self.app  # type: ignore[assignment]
        if app.history_file is None:
            return
        from ml_intern.tui.history import append_history

        await asyncio.to_thread(append_history, app.history_file, text)

    # -- the prompt ------------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def _prompt_submitted(self, event: PromptInput.Submitted) -> None:
        text = event.text
        self.prompt.clear()
        self.prompt.remember(text)
        self.save_prompt_history(text)
        command = parse_slash(text)
        if command is not None:
            name, argument = command
            slash = COMMANDS.get(name)
            if slash is None:
                await self.notice(f"Unknown command /{name}. Type /help for the list.", "error")
                return
            result = slash.handler(self, argument)
            if inspect.isawaitable(result):
                await result
            return
        queued = self.working or self.agent is None or bool(self._submitted)
        message = UserMessage(text, queued=queued)
        self._submitted.append(message)
        await self.conversation.add_block(message)
        self.conversation.anchor()
        self._update_queued()
        self.submit(UserInput(text=text))

    def _update_queued(self) -> None:
        queued = sum(1 for message in self._submitted if message.queued)
        self.status.set(queued=queued)
        hint = self.query_one("#queued-hint", Static)
        text = f"{queued} message{'s' if queued != 1 else ''} queued: sent when the agent is free" if queued else ""
        if hint.content != text:  # an update re-lays out the whole screen
            hint.update(text)
        hint.set_class(bool(queued), "-visible")

    # -- event handlers ---------------------------------------------------------------------------

    async def on_agent_event(self, message: AgentEvent) -> None:
        event = message.event
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        if event.type in ev.TURN_ENDING_EVENTS and event.type != "compacted" and not _is_side_error(event):
            await self._finish_stream()
            self._set_working(False)

    def _set_working(self, working: bool, activity: str = "") -> None:
        if working == self.working and not activity:
            return
        if not working:
            self._running_tools.clear()
        self.working = working
        self.status.set(working=working, activity=activity)
        self.refresh_bindings()

    async def _finish_stream(self) -> None:
        if self._assistant is not None:
            assistant, self._assistant = self._assistant, None
            self._last_streamed = "".join(assistant.streamed_text)
            await assistant.finish()

    async def _on_ready(self, event: ev.Ready) -> None:
        self.status.set(connected=True, model=event.model or self.status.info.model)
        if self.demo:
            await self.notice(
                "DEMO: a scripted model drives the real agent and real tools in a temporary folder. "
                "No key, no network. Press Enter to run the prefilled task.",
                "warning",
            )

    def _on_processing(self, event: ev.Processing) -> None:
        if self._submitted:
            self._submitted.popleft().queued = False
            self._update_queued()
        self._last_streamed = ""
        self._turn_started = time.monotonic()
        self._set_working(True, "working")

    async def _on_assistant_chunk(self, event: ev.AssistantChunk) -> None:
        if self._assistant is None:
            self._assistant = AssistantMessage()
            await self.conversation.add_block(self._assistant)
        await self._assistant.write(event.content)

    async def _on_assistant_stream_end(self, event: ev.AssistantStreamEnd) -> None:
        await self._finish_stream()

    async def _on_assistant_message(self, event: ev.AssistantMessage) -> None:
        streamed = self._last_streamed or ("".join(self._assistant.streamed_text) if self._assistant else "")
        if streamed.strip() and streamed.strip() == event.content.strip():
            return
        await self._finish_stream()
        if event.content.strip():
            await self.conversation.add_block(AssistantMessage(event.content))
        self._last_streamed = event.content

    async def _ensure_tool(self, tool_call_id: str, tool: str, arguments: dict[str, Any] | None) -> ToolCallBlock:
        """Return the call's block, creating it (and its timeline row) on first sight."""
        block = self._tool_blocks.get(tool_call_id)
        if block is None:
            await self._finish_stream()
            self._last_streamed = ""
            block = ToolCallBlock(tool, arguments or {}, tool_call_id)
            self._tool_blocks[tool_call_id] = block
            await self.conversation.add_block(block)
        elif arguments and not block.arguments:
            block.arguments = arguments
            block.refresh_content()
        self.timeline.add_call(tool_call_id, tool, arguments or {}, update=True)
        return block

    async def _on_tool_call(self, event: ev.ToolCall) -> None:
        await self._ensure_tool(event.tool_call_id, event.tool, event.arguments)

    async def _on_tool_output(self, event: ev.ToolOutput) -> None:
        block = await self._ensure_tool(event.tool_call_id, event.tool, None)
        block.set_output(event.output, event.success, event.duration_s)
        self.timeline.set_output(event.tool_call_id, event.tool, event.output, event.success, event.duration_s)
        self._running_tools.pop(event.tool_call_id, None)
        self._show_activity()

    async def _on_tool_log(self, event: ev.ToolLog) -> None:
        if event.tool == "system" or event.tool_call_id is None:
            await self.notice(event.log)
            return
        block = self._tool_blocks.get(event.tool_call_id)
        if block is not None:
            block.add_log(event.log)
        self.timeline.add_log(event.tool_call_id, event.log)

    async def _on_tool_state_change(self, event: ev.ToolStateChange) -> None:
        block = await self._ensure_tool(event.tool_call_id, event.tool, None)
        block.set_state(event.state)
        self.timeline.set_state(event.tool_call_id, event.state, event.tool)
        if event.state == "running":
            self._running_tools[event.tool_call_id] = event.tool
        else:
            self._running_tools.pop(event.tool_call_id, None)
        self._show_activity()

    def _show_activity(self) -> None:
        if not self.working:
            return
        running = list(self._running_tools.values())
        if running:
            more = f" +{len(running) - 1}" if len(running) > 1 else ""
            self.status.set(activity=f"running {running[-1]}{more}")
        else:
            self.status.set(activity="thinking")

    async def _on_approval_required(self, event: ev.ApprovalRequired) -> None:
        for item in event.tools:
            await self._ensure_tool(item.tool_call_id, item.tool, item.arguments)
        self._approval_batches.append(list(event.tools))
        self.status.set(activity="waiting for approval")
        first = event.tools[0] if event.tools else None
        body = f"{first.tool} {summarize_arguments(first.tool, first.arguments, 60)}" if first else ""
        more = f" (+{len(event.tools) - 1} more)" if len(event.tools) > 1 else ""
        self._app.terminal_notify("ml-intern needs your approval", body + more)
        self._show_next_approval()

    def _show_next_approval(self) -> None:
        if self._approval_screen is not None or not self._approval_batches:
            return
        items = self._approval_batches.popleft()
        self._approval_cancelled = False
        self._approval_screen = ApprovalScreen(items)
        self.app.push_screen(self._approval_screen, self._approval_answered)

    def _approval_answered(self, result: ApprovalResult | None) -> None:
        self._approval_screen = None
        if self._approval_cancelled or result is None:
            self._approval_cancelled = False
        elif result.interrupted:
            self._approval_batches.clear()
            self.submit(Interrupt())
        else:
            self.submit(ExecApproval(approvals=result.answers))
            self.status.set(activity="working")
        self._show_next_approval()

    def _close_approval(self) -> None:
        self._approval_batches.clear()
        if self._approval_screen is not None and self._approval_screen.is_attached:
            self._approval_cancelled = True
            self._approval_screen.dismiss(ApprovalResult(interrupted=True))

    async def _on_turn_complete(self, event: ev.TurnComplete) -> None:
        await self._finish_stream()
        self._notify_if_long("ml-intern finished", " ".join((event.final_response or "").split())[:120])

    def _notify_if_long(self, title: str, body: str) -> None:
        """Notify the terminal when the turn that just ended ran long enough for the user to look away."""
        started, self._turn_started = self._turn_started, None
        if started is not None and time.monotonic() - started >= LONG_TURN_S:
            self._app.terminal_notify(title, body)

    async def _on_iteration_limit_reached(self, event: ev.IterationLimitReached) -> None:
        await self.notice(event.message or f"Stopped after {event.max_iterations} iterations.", "warning")

    async def _on_error(self, event: ev.Error) -> None:
        if event.kind == "bad_model":
            self._pending_model = None
            still = "" if "still using" in event.error.lower() else f" Still using {self.status.info.model}."
            await self.notice(event.error + still, "error")
            return
        await self.notice(f"Error: {event.error}", "error")
        self._notify_if_long("ml-intern stopped with an error", event.error[:120])
        if event.fatal:
            self._close_approval()

    async def _on_interrupted(self, event: ev.Interrupted) -> None:
        self._close_approval()
        await self.notice("Interrupted.", "warning")

    async def _on_compacted(self, event: ev.Compacted) -> None:
        text = event.message or f"Compacted the history: {event.old_tokens:,} → {event.new_tokens:,} tokens."
        await self.notice(text, "success")

    async def _on_compact_skipped(self, event: ev.CompactSkipped) -> None:
        await self.notice(f"Nothing compacted: {event.reason}")

    async def _on_undo_complete(self, event: ev.UndoComplete) -> None:
        for _ in range(event.turns):
            await self._remove_last_turn_blocks()
        lines = [event.message or f"Undid the last turn ({event.removed_messages} messages)."]
        if event.restored_files:
            lines.append("Restored: " + ", ".join(event.restored_files))
        if event.not_undone:
            lines.append("Not undone: " + "; ".join(event.not_undone))
        await self.notice("\n".join(lines), "success")
        if event.user_text and not self.prompt.text:
            self.prompt.load_text(event.user_text)
            self.prompt.move_cursor(self.prompt.document.end)

    async def _remove_last_turn_blocks(self) -> None:
        children = list(self.conversation.children)
        for index in range(len(children) - 1, -1, -1):
            child = children[index]
            if isinstance(child, UserMessage) and not child.queued:
                await self.conversation.remove_children(
                    [c for c in children[index:] if not (isinstance(c, UserMessage) and c.queued)]
                )
                return

    def _on_plan_update(self, event: ev.PlanUpdate) -> None:
        self.query_one("#plan", PlanPane).show_plan(event.plan)

    def _on_usage(self, event: ev.Usage) -> None:
        self.status.set(
            model=event.model or self.status.info.model,
            context_tokens=event.context_tokens,
            context_window=event.context_window or self.status.info.context_window,
            session_tokens=event.session_tokens,
            session_cost_usd=event.session_cost_usd,
        )

    async def _on_session_terminated(self, event: ev.SessionTerminated) -> None:
        await self.notice(f"Session ended: {event.message}", "error")

    async def _on_new_complete(self, event: ev.NewComplete) -> None:
        await self.clear_transcript()
        self.timeline.clear()
        self.query_one("#plan", PlanPane).show_plan([])
        self.status.set(context_tokens=0)
        await self.notice(f"New session {event.session_id}.")

    async def _on_resume_complete(self, event: ev.ResumeComplete) -> None:
        await self.clear_transcript()
        self.timeline.clear()
        await self.show_restored_history(event.restored_count)
        title = f" “{event.title}”" if event.title else ""
        await self.notice(f"Resumed session {event.session_id}{title} ({event.restored_count} messages).", "success")
        if event.model:
            self.status.set(model=event.model)

    async def show_restored_history(self, count: int) -> None:
        """Show a resumed session's messages, tool calls (with their timeline rows) and plan."""
        from ml_intern.tui.transcript import restored_items

        history = getattr(self.agent, "history", None)
        if history is None:
            return
        items = restored_items(history.to_records(1)[:count])
        for item in items:
            if item.call is not None:
                call = item.call
                self.timeline.add_call(call.tool_call_id, call.tool, call.arguments)
                if call.output is not None:
                    self.timeline.set_output(call.tool_call_id, call.tool, call.output, call.success, None)
        keep = max(1, self.max_blocks - 10)
        hidden = len(items) - keep
        blocks: list[Widget] = []
        if hidden > 0:
            blocks.append(Notice(f"{hidden} earlier entries are not shown here (the Tools pane lists every call; "
                                 "/export writes the whole session)."))
        for item in items[-keep:]:
            if item.kind == "user":
                blocks.append(UserMessage(item.text))
            elif item.kind == "assistant":
                blocks.append(AssistantMessage(item.text))
            elif item.kind == "summary":
                blocks.append(Notice("Earlier messages were compacted into this summary:\n" + item.text.strip()))
            elif item.call is not None:
                call = item.call
                block = ToolCallBlock(call.tool, call.arguments, call.tool_call_id)
                if call.output is not None:
                    block.set_output(call.output, call.success, None)
                self._tool_blocks[call.tool_call_id] = block
                blocks.append(block)
        if blocks:
            await self.conversation.mount_all(blocks)
            await self.conversation.prune()
            self.conversation.scroll_end(animate=False)
            self.conversation.anchor()
        plan = getattr(getattr(self.agent, "state", None), "plan", None)
        if isinstance(plan, list):
            self.query_one("#plan", PlanPane).show_plan([ev.PlanItem(**entry) for entry in plan])

    async def _on_session_renamed(self, event: ev.SessionRenamed) -> None:
        await self.notice(f"Session renamed: {event.title}", "success")

    async def _on_trace_exported(self, event: ev.TraceExported) -> None:
        await self.notice(f"Exported the session ({event.lines} trace lines) to {event.path}", "success")

    async def _on_trace_sharing(self, event: ev.TraceSharing) -> None:
        await self.notice(event.message, "warning" if event.private is False else "info")

    def _on_trace_uploaded(self, event: ev.TraceUploaded) -> None:
        self.app.notify(f"Trace saved to your dataset {event.repo_id}", timeout=3)

    async def _on_doom_loop_detected(self, event: ev.DoomLoopDetected) -> None:
        await self.notice(f"Loop detected ({', '.join(event.tools)}): {event.message}", "warning")

    def _on_model_changed(self, event: ev.ModelChanged) -> None:
        self._pending_model = None
        self.status.set(model=event.model, context_window=event.context_window or self.status.info.context_window)
        self.app.notify(f"Model: {event.model}")
        app: MLInternApp = self.app  # type: ignore[assignment]
        if not self.demo:
            app.settings.model_name = event.model
            app.save_settings({"model_name": event.model})
            app.check_hf_token(event.model)

    def _on_approval_mode_changed(self, event: ev.ApprovalModeChanged) -> None:
        self.status.set(approval_mode=event.mode)
        self.app.notify(f"Approval mode: {event.mode}", severity="warning" if event.mode == "yolo" else "information")

    async def _on_retrying(self, event: ev.Retrying) -> None:
        self.status.set(activity=f"retrying in {event.delay_s:.0f}s")
        await self.notice(f"{event.reason}; retrying in {event.delay_s:.0f}s (attempt {event.attempt}).", "warning")

    def _on_job_update(self, event: ev.JobUpdate) -> None:
        if self._runs_pane is None:
            return
        if not self.has_class("-show-runs"):
            self.add_class("-show-runs")
        known = self._runs_pane.runs.get(event.job_id)  # type: ignore[attr-defined]
        was_final = known is not None and known.status in TERMINAL_STAGES
        self._runs_pane.apply(event)  # type: ignore[attr-defined]
        status = event.status.upper()
        if status in TERMINAL_STAGES and not was_final:
            run = self._runs_pane.runs[event.job_id]  # type: ignore[attr-defined]
            label = run.title or event.job_id
            self._app.terminal_notify(f"Job {status.lower()}", f"{label} ({run.hardware or event.kind})")

    # -- helpers used by commands ---------------------------------------------------------------

    async def notice(self, text: str, kind: str = "info") -> None:
        """Add a system line to the transcript."""
        await self.conversation.add_block(Notice(text, kind))

    async def clear_transcript(self) -> None:
        """Remove every block from the screen (the agent keeps the history)."""
        await self._finish_stream()
        await self.conversation.remove_children()
        self._submitted.clear()
        self._update_queued()

    async def show_help(self) -> None:
        """Show slash commands and hotkeys."""
        keys = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            key = self._key_for(binding.action) or binding.key
            keys.append(f"{self.app.get_key_display(Binding(key, ''))!s:<10} {binding.description}")
        keys.append(f"{'ctrl+p':<10} Command palette")
        keys.append(f"{'ctrl+q':<10} Quit")
        await self.notice("Commands\n" + help_text() + "\n\nKeys\n" + "\n".join(keys))

    def _key_for(self, action: str) -> str | None:
        for key, active in self.active_bindings.items():
            if active.binding.action == action:
                return key
        return None

    async def show_status(self) -> None:
        """Show the session's numbers."""
        info = self.status.info
        session_id = getattr(self.agent, "session_id", "") if self.agent else ""
        workdir = getattr(self.agent, "workdir", "") if self.agent else ""
        ctx = f"{info.context_tokens:,} / {info.context_window:,} tokens" if info.context_window else "unknown"
        await self.notice(
            f"Model: {info.model}\nContext: {ctx}\nSession tokens: {info.session_tokens:,}\n"
            f"Session cost: ${info.session_cost_usd:.4f}\nApproval mode: {info.approval_mode}\n"
            f"Session: {session_id}\nWorking directory: {workdir}"
        )

    def set_model(self, model: str) -> None:
        """Ask the agent to switch; the status bar and config.toml change only when it confirms (ModelChanged)."""
        model = model.strip()
        if not model:
            return
        if model == self.status.info.model:
            self.app.notify(f"Already using {model}.")
            return
        self._pending_model = model
        self.app.notify(f"Switching to {model}…", timeout=2)
        self.submit(SetModel(model=model))

    def _mcp_manager(self) -> Any:
        services = getattr(self.agent, "services", None)
        return services.get("mcp") if isinstance(services, dict) else None

    def _configured_mcp_servers(self) -> dict[str, Any]:
        settings = getattr(self.agent, "settings", None) or self._app.settings
        return dict(getattr(settings, "mcpServers", None) or {})

    async def show_mcp_status(self) -> None:
        """List every MCP server: transport, state, error and tools."""
        configured = self._configured_mcp_servers()
        manager = self._mcp_manager()
        if not configured and manager is None:
            await self.notice(
                "No MCP servers are configured. Add them under \"mcpServers\" in your config (stdio: "
                "\"command\" and \"args\"; http: \"url\"), then restart ml-intern."
            )
            return
        if manager is None:
            names = ", ".join(configured)
            await self.notice(f"MCP servers are still starting ({names}). Try /mcp again in a moment.")
            return
        statuses = manager.status()
        lines = [f"MCP servers ({len(statuses)})"] + [_mcp_line(status) for status in statuses]
        lines.append("Reconnect one with /mcp reconnect NAME.")
        failed = any(status.state == "failed" for status in statuses)
        await self.notice("\n".join(lines), "warning" if failed else "info")

    @work(group="mcp", exit_on_error=False)
    async def reconnect_mcp(self, name: str) -> None:
        """Restart one MCP server's session and report its new state."""
        manager = self._mcp_manager()
        if manager is None:
            await self.show_mcp_status()
            return
        if name not in manager.server_names:
            known = ", ".join(manager.server_names) or "none"
            await self.notice(f"No MCP server named {name!r} (configured: {known}).", "error")
            return
        self.app.notify(f"Reconnecting MCP server {name}…", timeout=3)
        # Through the agent, so the model sees the server's tools afterwards.
        reconnect = getattr(self.agent, "reconnect_mcp", None) or manager.reconnect
        status = await reconnect(name)
        await self.notice(_mcp_line(status), "success" if status.state == "connected" else "error")

    def set_approval_mode(self, mode: str) -> None:
        """Switch the approval mode for this session."""
        self.submit(SetApprovalMode(mode=mode))  # type: ignore[arg-type]
        self.status.set(approval_mode=mode)

    def app_set_theme(self, name: str) -> None:
        """Switch theme; the app saves it."""
        if name not in self.app.available_themes:
            self.app.notify(f"No theme named {name!r}.", severity="error")
            return
        self.app.theme = name

    # -- actions --------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "interrupt":
            return True if self.working else None
        if action in ("undo", "rewind", "compact", "new_session"):
            return None if self.working else True
        if action == "toggle_runs":
            return True if self._runs_pane is not None else None
        if action in ("copy_block", "copy_code"):
            block = self._focused_block()
            if block is None:
                return False
            return action == "copy_block" or isinstance(block, AssistantMessage)
        return True

    def action_interrupt(self) -> None:
        """Stop the running turn."""
        if self.working:
            self.submit(Interrupt())
            self.status.set(activity="interrupting")

    def action_undo(self) -> None:
        """Undo the last turn."""
        self.submit(Undo())

    def action_rewind(self) -> None:
        """Pick an earlier message to rewind to."""
        from ml_intern.tui.screens.rewind import open_rewind

        open_rewind(self)

    def action_compact(self) -> None:
        """Compact the history."""
        self.submit(Compact())
        self.status.set(activity="compacting")

    def action_new_session(self) -> None:
        """Start a fresh conversation."""
        self.submit(New())

    def action_switch_model(self) -> None:
        """Open the model picker."""

        def picked(model: str | None) -> None:
            if model:
                self.set_model(model)

        self.app.push_screen(ModelPicker(self.status.info.model), picked)

    def action_toggle_sidebar(self) -> None:
        """Show or hide the side panes."""
        if self.has_class("-narrow"):
            self.toggle_class("-force-side")
        else:
            self.toggle_class("-hide-side")

    def _ensure_side_visible(self) -> None:
        self.remove_class("-hide-side")
        if self.has_class("-narrow"):
            self.add_class("-force-side")

    def action_toggle_timeline(self) -> None:
        """Show or hide the tool timeline."""
        self.toggle_class("-hide-timeline")
        if not self.has_class("-hide-timeline"):
            self._ensure_side_visible()

    def action_toggle_plan(self) -> None:
        """Show or hide the plan."""
        self.toggle_class("-hide-plan")
        if not self.has_class("-hide-plan"):
            self._ensure_side_visible()

    def action_toggle_runs(self) -> None:
        """Show or hide the Runs pane."""
        if self._runs_pane is None:
            return
        self.toggle_class("-show-runs")
        if self.has_class("-show-runs"):
            self._ensure_side_visible()

    def action_focus_next_pane(self) -> None:
        """Cycle focus: prompt, conversation, timeline, runs."""
        candidates: list[Widget] = [self.prompt, self.conversation, self.timeline.table]
        if self._runs_pane is not None and self.has_class("-show-runs"):
            candidates.append(self._runs_pane.table)  # type: ignore[attr-defined]
        visible = [w for w in candidates if w.is_on_screen]
        if not visible:
            return
        focused = self.focused
        index = next((i for i, w in enumerate(visible) if focused is w or (focused and w in focused.ancestors)), -1)
        visible[(index + 1) % len(visible)].focus()

    # -- history access: copy and find ------------------------------------------------------------

    def _focused_block(self) -> Widget | None:
        """The transcript block that has focus (or contains it), if any."""
        node = self.focused
        conversation = self.conversation
        while node is not None and node.parent is not conversation:
            node = node.parent if isinstance(node.parent, Widget) else None
        return node

    def on_key(self, event: events.Key) -> None:
        """Typing while a transcript block has focus goes to the prompt (c and b are the block's copy keys)."""
        active = self.active_bindings.get(event.key)
        if active is not None and active.enabled:
            return
        if event.is_printable and event.character and self._focused_block() is not None:
            event.stop()
            self.prompt.focus()
            self.prompt.insert(event.character)

    def _copy(self, text: str, what: str) -> None:
        if not text:
            self.app.notify(f"Nothing to copy: {what} is empty.", severity="warning", timeout=3)
            return
        self.app.copy_to_clipboard(text)
        lines = text.count("\n") + 1
        self.app.notify(f"Copied {what} ({lines} line{'s' if lines != 1 else ''}) to the clipboard.", timeout=3)

    def action_copy_block(self) -> None:
        """Copy the focused message, or a tool call's output."""
        from ml_intern.tui.transcript import copy_text

        block = self._focused_block()
        if block is not None:
            self._copy(copy_text(block), "the tool output" if isinstance(block, ToolCallBlock) else "the message")

    def action_copy_code(self) -> None:
        """Copy the focused reply's code blocks, the next one on each press."""
        from ml_intern.tui.transcript import block_text, code_blocks

        block = self._focused_block()
        if not isinstance(block, AssistantMessage):
            return
        blocks = code_blocks(block_text(block))
        if not blocks:
            self.app.notify("This reply has no code block; press c to copy all of it.", timeout=3)
            return
        index = self._code_cursor.get(block, -1) + 1
        index = index if index < len(blocks) else 0
        self._code_cursor[block] = index
        self._copy(blocks[index], f"code block {index + 1}/{len(blocks)}")

    def _assistant_texts(self) -> list[str]:
        from ml_intern.tui.transcript import block_text

        texts = [block_text(b) for b in self.conversation.query_children(AssistantMessage)]
        return [t for t in texts if t.strip()] or ([self._last_streamed] if self._last_streamed.strip() else [])

    def action_copy_last_reply(self) -> None:
        """Copy the agent's last reply."""
        texts = self._assistant_texts()
        self._copy(texts[-1] if texts else "", "the last reply")

    def action_copy_last_code(self) -> None:
        """Copy the last code block the agent wrote."""
        from ml_intern.tui.transcript import code_blocks

        for text in reversed(self._assistant_texts()):
            blocks = code_blocks(text)
            if blocks:
                self._copy(blocks[-1], "the last code block")
                return
        self.app.notify("No code block in the replies on screen.", severity="warning", timeout=3)

    def action_find(self) -> None:
        """Open the find bar."""
        self.open_find()

    def open_find(self, query: str = "") -> None:
        """Show the find bar; with a query, jump to its newest match at once."""
        bar = self.query_one(FindBar)
        bar.open(query)
        if query:
            self.find_next(query, -1)

    @on(FindBar.Search)
    def _find_requested(self, event: FindBar.Search) -> None:
        self.find_next(event.query, event.direction)

    @on(FindBar.Closed)
    def _find_closed(self, event: FindBar.Closed) -> None:
        self._mark_match(None)
        self.prompt.focus()

    def find_next(self, query: str, direction: int = -1) -> Widget | None:
        """Scroll to and highlight the next match (older for -1, newer for 1), wrapping; return its block."""
        from ml_intern.tui.transcript import block_text

        needle = query.casefold()
        matches = [b for b in self.conversation.children if needle in block_text(b).casefold()]
        bar = self.query_one(FindBar)
        if not matches:
            self._mark_match(None)
            pruned = " (older blocks left the screen: /export has everything)" if self.conversation.pruned_blocks else ""
            bar.show_count("no match" + pruned)
            return None
        current = self._find_match() if self._find_query == needle else None
        if current in matches:
            index = (matches.index(current) + direction) % len(matches)
        else:
            index = len(matches) - 1 if direction < 0 else 0
        self._find_query = needle
        target = matches[index]
        if isinstance(target, ToolCallBlock) and not target.expanded:
            target.expanded = True
        self._mark_match(target)
        self.conversation.scroll_to_widget(target, animate=False, top=True)
        bar.show_count(f"{index + 1}/{len(matches)}")
        return target

    def _find_match(self) -> Widget | None:
        return self._find_current() if self._find_current is not None else None

    def _mark_match(self, block: Widget | None) -> None:
        previous = self._find_match()
        if previous is not None:
            previous.remove_class("-find-match")
        self._find_current = weakref.ref(block) if block is not None else None
        if block is not None:
            block.add_class("-find-match")

    async def action_help(self) -> None:
        """Show help."""
        await self.show_help()

    def action_quit(self) -> None:
        """Quit, asking first while a turn runs."""
        app: MLInternApp = self.app  # type: ignore[assignment]
        if not self.working:
            app.shutdown_and_exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                app.shutdown_and_exit()

        app.push_screen(ConfirmScreen("A turn is still running. Quit anyway?"), answered)
