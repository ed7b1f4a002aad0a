"""The Agent: accepts operations, runs them one at a time, and emits events for any front end."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml_intern import paths
from ml_intern.config import ApprovalRule, Settings, save_user_settings
from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from ml_intern.core.approval import ApprovalPolicy, Approver, suggest_rule_pattern
from ml_intern.core.context import CompactionError, History, RewindPoint, SnapshotStore, compact_history
from ml_intern.core.doom_loop import DoomLoopGuard
from ml_intern.core.llm import context_window_for, validate_model_id
from ml_intern.core.llm_types import LLMClient, LLMError, LLMRequest, LLMResponse
from ml_intern.core.prompts import render_system_prompt
from ml_intern.core.session import SessionStore, find_session, load_session, new_session_id, title_from_text
from ml_intern.core.tools import ToolContext, ToolRouter


@dataclass
class AgentSessionState:
    """Per-conversation state tools see: files read, the plan, and undo bookkeeping."""

    agent: Agent
    files_read: set[str] = field(default_factory=set)
    plan: list[dict[str, Any]] = field(default_factory=list)

    def record_file_change(self, path: Path) -> None:
        """Snapshot a file before a tool changes it (undo restores it)."""
        self.agent.snapshots.snapshot(self.agent.history.turn, Path(path))

    def record_side_effect(self, description: str) -> None:
        """Note an effect undo cannot reverse."""
        self.agent.snapshots.side_effect(self.agent.history.turn, description)


class Agent:
    """One conversation with a model and its tools; front ends talk to it only through submit() and events()."""

    def __init__(
        self,
        settings: Settings,
        *,
        tools: ToolRouter | None = None,
        llm: LLMClient | None = None,
        approver: Approver | None = None,
        workdir: Path | str | None = None,
        headless: bool = False,
        session_id: str | None = None,
        services: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.workdir = Path(workdir or settings.workdir or os.getcwd()).resolve()
        self.headless = headless
        self.approver = approver
        self.policy = ApprovalPolicy(settings.approval_mode, list(settings.approval_rules))
        self.router: ToolRouter = tools if tools is not None else ToolRouter()
        self._tools_given = tools is not None
        self._llm = llm
        self.services: dict[str, Any] = dict(services or {})
        self.services.setdefault("agent", self)
        self.session_id = session_id or new_session_id()
        self.store = SessionStore(self.session_id, enabled=settings.save_sessions)
        self.history = History("")
        self.snapshots = SnapshotStore(paths.snapshots_dir() / self.session_id) if settings.save_sessions else SnapshotStore(
            Path(os.environ.get("TMPDIR", "/tmp")) / f"ml-intern-snapshots-{self.session_id}"
        )
        self.state = AgentSessionState(self)
        self.doom_guard = DoomLoopGuard()
        self.malformed_streak: dict[str, int] = {}
        # Resolved in start() (litellm's model map loads off the event loop); 0 until then.
        self.context_window = settings.context_window or 0
        self.session_tokens = 0
        self.session_cost_usd = 0.0
        self.spent_usd = 0.0
        self.last_turn_outcome: str | None = None
        self.terminated = False
        self.title = ""
        self._events: asyncio.Queue[ev.Event] = asyncio.Queue()
        self._ops: asyncio.Queue[ops.Operation] = asyncio.Queue()
        self._seq = 0
        self._loop_task: asyncio.Task[None] | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[ops.ApprovalAnswer]] = {}
        self._interrupting = False
        self._persisted = 0
        self._schemas_cache: list[dict[str, Any]] | None = None
        self._started = False
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._background: set[asyncio.Task[Any]] = set()
        self._mcp_task: asyncio.Task[None] | None = None
        self._store_warned = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def llm(self) -> LLMClient:
        """The model client (litellm unless one was injected)."""
        if self._llm is None:
            from ml_intern.core.llm import LiteLLMClient

            self._llm = LiteLLMClient.from_settings(self.settings, on_retry=self._on_retry)
        return self._llm

    @property
    def busy(self) -> bool:
        """Whether a turn is running."""
        return self._turn_task is not None and not self._turn_task.done()

    @property
    def pending_approvals(self) -> list[str]:
        """Tool call ids waiting for an answer."""
        return [k for k, f in self._pending.items() if not f.done()]

    async def start(self) -> None:
        """Load tools and the model library off the event loop, then start accepting operations."""
        if self._started:
            return
        self._started = True
        if not self._tools_given:
            from ml_intern.tools import build_router

            self.router = await asyncio.to_thread(build_router, self.settings)
        if self._llm is None:
            from ml_intern.core.llm import load_litellm

            await asyncio.to_thread(load_litellm)
        if self.settings.mcpServers and "mcp" not in self.services:
            self._mcp_task = asyncio.create_task(self._start_mcp(), name="ml-intern-mcp")
        if self.settings.messaging.enabled and "notification_gateway" not in self.services:
            from ml_intern.core.notifications import NotificationGateway

            self.services["notification_gateway"] = NotificationGateway(self.settings.messaging.destinations)
        if not self.context_window:
            self.context_window = await asyncio.to_thread(
                context_window_for, self.settings.model_name, self.settings.context_window
            )
        self._schemas_cache = None
        self.history.set_system_prompt(self._system_prompt())
        self.store.write_meta(model=self.settings.model_name, workdir=str(self.workdir), created=True)
        self._persisted = 1
        self.emit(
            ev.Ready(
                tool_count=len(self.router.names()),
                model=self.settings.model_name,
                session_id=self.session_id,
            )
        )
        self._loop_task = asyncio.create_task(self._submission_loop(), name="ml-intern-agent")

    async def _start_mcp(self) -> None:
        """Connect configured MCP servers and register their tools; a failing server never stops the agent."""
        from ml_intern.tools.mcp_client import MCPManager

        manager = MCPManager(self.settings.mcpServers, emit=self.emit)
        self.services["mcp"] = manager
        try:
            await manager.start()
        except Exception as exc:
            self.emit(ev.ToolLog(tool="system", log=f"MCP servers failed to start: {type(exc).__name__}: {exc}"))
            return
        self._register_mcp_tools()

    def _register_mcp_tools(self) -> None:
        """Replace the MCP tools in the router with what the servers offer now."""
        manager = self.services.get("mcp")
        if manager is None:
            return
        for spec in self.router.specs():
            if spec.source.startswith("mcp:"):
                self.router.unregister(spec.name)
        for spec in manager.tool_specs():
            self.router.register(spec)
        self.tools_changed()
        self.history.set_system_prompt(self._system_prompt())

    async def reconnect_mcp(self, name: str) -> Any:
        """Restart one MCP server and refresh the tools the model sees; return its new status."""
        manager = self.services.get("mcp")
        if manager is None:
            raise KeyError(name)
        status = await manager.reconnect(name)
        self._register_mcp_tools()
        return status

    async def mcp_ready(self, timeout: float = 60.0) -> None:
        """Wait (bounded) until MCP servers finished connecting, so the first turn sees their tools."""
        task = self._mcp_task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            self.emit(ev.ToolLog(tool="system", log="MCP servers are still connecting; continuing without them."))

    def _system_prompt(self) -> str:
        return render_system_prompt(
            workdir=str(self.workdir),
            model=self.settings.model_name,
            tool_names=self.router.names(),
            runtime=self.settings.tool_runtime,
            headless=self.headless,
        )

    def submit(self, operation: ops.Operation) -> None:
        """Hand the agent an operation; interrupts, approvals and mode changes act at once, the rest queue."""
        if isinstance(operation, ops.Interrupt):
            self._interrupt()
        elif isinstance(operation, ops.ExecApproval):
            self._answer(operation)
        elif isinstance(operation, ops.SetApprovalMode):
            self.policy.mode = operation.mode
            self.settings.approval_mode = operation.mode
            self.emit(ev.ApprovalModeChanged(mode=operation.mode))
        elif isinstance(operation, ops.SetModel):
            task = asyncio.get_running_loop().create_task(self._switch_model(operation.model))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self._idle.clear()
            self._ops.put_nowait(operation)

    async def wait_idle(self) -> None:
        """Wait until every submitted operation has finished."""
        await self._idle.wait()

    async def events(self) -> AsyncIterator[ev.Event]:
        """Yield every event until shutdown (a single consumer)."""
        while True:
            event = await self._events.get()
            yield event
            if event.type == "shutdown":
                return

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the running turn and the submission loop, and close everything."""
        if self._closed:
            return
        if self.busy:
            self._interrupt()
        self._ops.put_nowait(ops.ShutdownOp())
        if self._loop_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._loop_task), timeout)
            except TimeoutError:
                self._loop_task.cancel()
        else:
            await self._close()

    async def _close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._mcp_task is not None and not self._mcp_task.done():
            self._mcp_task.cancel()
        for task in list(self._background):
            task.cancel()
        sandbox = self.services.get("sandbox")
        if sandbox is not None and hasattr(sandbox, "teardown"):
            try:
                await asyncio.wait_for(sandbox.teardown(emit=self.emit), 30)
            except Exception as exc:
                self.emit(ev.ToolLog(tool="system", log=f"Sandbox teardown failed: {exc}"))
        for name in ("jobs", "mcp", "notification_gateway"):
            service = self.services.get(name)
            closer = getattr(service, "aclose", None)
            if closer is not None:
                try:
                    await asyncio.wait_for(closer(), 5)
                except Exception:
                    pass
        await self.flush_traces()
        self.store.close()
        self.emit(ev.Shutdown())

    # ------------------------------------------------------------------ events

    def emit(self, event: ev.Event) -> None:
        """Number, persist and queue an event."""
        self._seq += 1
        event.seq = self._seq
        self._events.put_nowait(event)
        if event.type == "assistant_chunk":
            return
        self.store.write_event(event.to_json_dict())
        if self.store.write_errors and not self._store_warned:
            # Saving failed (full disk, read-only home): say so once; the session itself goes on in memory.
            self._store_warned = True
            self.emit(ev.ToolLog(tool="system", log=f"Session saving stopped: {self.store.last_error}"))
        if event.type in _AUTO_NOTIFY_TYPES and "notification_gateway" in self.services:
            from ml_intern.core.notifications import build_auto_notifications

            notifications = build_auto_notifications(
                event, self.settings.messaging, session_id=self.session_id, model=self.settings.model_name
            )
            if notifications:
                self.services["notification_gateway"].submit(notifications)

    def _on_retry(self, attempt: int, delay: float, reason: str) -> None:
        self.emit(ev.Retrying(attempt=attempt, delay_s=round(delay, 2), reason=reason))

    def sync_store(self, rewrite: bool = False) -> None:
        """Persist history messages added since the last call (or the whole history after a rewrite)."""
        count = len(self.history)
        if rewrite or self._persisted > count:
            self.store.write_rewrite(self.history.to_records())
        else:
            for record in self.history.to_records(self._persisted):
                if record["kind"] == "task":
                    self.snapshots.remember_plan(record["turn"], self.state.plan)
                    if not self.title:
                        self.title = title_from_text(str(record["message"].get("content") or ""))
                        self.store.write_meta(title=self.title, model=self.settings.model_name)
                self.store.write_message(record)
        self._persisted = count
        rules = [rule.model_dump() for rule in self.policy.session_rules]
        if rules != self.store.approval_rules:
            self.store.write_meta(approval_rules=rules)

    # ------------------------------------------------------------------ helpers used by the turn loop

    def tool_schemas(self) -> list[dict[str, Any]]:
        """The tool schemas sent with every request (cached until tools change)."""
        if self._schemas_cache is None:
            self._schemas_cache = self.router.llm_schemas()
        return self._schemas_cache

    def tools_changed(self) -> None:
        """Invalidate cached schemas after registering or removing tools."""
        self._schemas_cache = None

    def tool_context(self, tool_name: str, tool_call_id: str) -> ToolContext:
        """Build the context one tool call runs with."""
        return ToolContext(
            tool_name=tool_name,
            tool_call_id=tool_call_id,
            emit=self.emit,
            state=self.state,
            workdir=self.workdir,
            config=self.settings,
            services=self.services,
        )

    def account_usage(self, response: LLMResponse) -> None:
        """Add a call's tokens and cost to the session and report them."""
        self.session_tokens += response.usage.total_tokens
        self.session_cost_usd += response.cost_usd
        self.spent_usd += response.cost_usd
        self.emit(
            ev.Usage(
                prompt_tokens=response.usage.prompt_tokens,
                completion_tokens=response.usage.completion_tokens,
                total_tokens=response.usage.total_tokens,
                context_tokens=self.history.tokens(self.tool_schemas()),
                context_window=self.context_window,
                cost_usd=response.cost_usd,
                session_cost_usd=round(self.session_cost_usd, 6),
                session_tokens=self.session_tokens,
                model=self.settings.model_name,
            )
        )
        self.store.append("usage", {"session_tokens": self.session_tokens, "session_cost_usd": self.session_cost_usd})

    def over_budget(self) -> bool:
        """Whether the session's estimated spend reached the configured cap."""
        cap = self.settings.spend_cap_usd
        return cap is not None and self.spent_usd >= cap

    async def request_approval(self, items: list[ev.ApprovalItem]) -> dict[str, ops.ApprovalAnswer]:
        """Ask the approver, or the front end through an event, and wait for every answer."""
        if self.approver is not None:
            answers = await self.approver.decide(items)
            return {a.tool_call_id: a for a in answers}
        loop = asyncio.get_running_loop()
        futures = {item.tool_call_id: loop.create_future() for item in items}
        self._pending.update(futures)
        self.emit(ev.ApprovalRequired(tools=items, count=len(items)))
        try:
            results = await asyncio.gather(*futures.values())
        finally:
            for key in futures:
                self._pending.pop(key, None)
        return {a.tool_call_id: a for a in results}

    def remember_answer(self, tool: str, subject: str, answer: ops.ApprovalAnswer) -> None:
        """Turn an 'always' answer into an approval rule (for the session, or saved to config.toml)."""
        if answer.remember is None:
            return
        rule = ApprovalRule(
            tool=tool,
            pattern=answer.rule_pattern or suggest_rule_pattern(tool, subject),
            action="allow" if answer.approved else "deny",
        )
        forever = answer.remember == "forever"
        self.policy.add_rule(rule, forever=forever)
        if forever:
            try:
                save_user_settings({"approval_rules": [r.model_dump() for r in self.policy.saved_rules]})
            except OSError as exc:
                self.emit(ev.ToolLog(tool="system", log=f"Could not save the approval rule: {exc}"))

    async def maybe_compact(self, force: bool = False) -> bool:
        """Compact when the next request would pass the threshold (or when forced); return whether it ran."""
        schemas = self.tool_schemas()
        window = self.context_window or context_window_for(self.settings.model_name, self.settings.context_window)
        limit = int(window * self.settings.compact_threshold)
        tokens = self.history.tokens(schemas)
        if not force and tokens <= limit:
            return False
        if force:
            # The provider refused a request we counted as fitting: our count is low, so aim well below it.
            limit = min(limit, max(1, int(tokens * 0.8)))
        return await self._compact(limit, window, manual=False)

    def _summariser(self, window: int) -> Any:
        async def summarise(messages: list[dict[str, Any]], max_tokens: int) -> str:
            response = await self.llm.complete(
                LLMRequest(
                    model=self.settings.model_name,
                    messages=messages,
                    stream=False,
                    purpose="compaction",
                    max_tokens=max_tokens,
                )
            )
            self.account_usage(response)
            return response.content

        return summarise

    async def _compact(self, limit: int, window: int, *, manual: bool) -> bool:
        """Run one compaction; automatic ones end the session when nothing fits, manual ones say why not."""
        schemas = self.tool_schemas()
        tail_tokens = None
        if manual:
            # On request, keep about the last quarter of the conversation (by tokens) and summarise the rest.
            self.history.tokens(schemas)
            users = self.history.real_user_indices()
            after_task = self.history.meta[(users[0] + 1 if users else 1) :]
            tail_tokens = min(window // 8, sum(meta.tokens or 0 for meta in after_task) // 4)
        try:
            try:
                result = await compact_history(
                    self.history, schemas, limit_tokens=limit, context_window=window,
                    summarise=self._summariser(window), tail_tokens=tail_tokens, truncate=not manual,
                )
            except LLMError as exc:
                if manual:
                    self.emit(ev.CompactSkipped(reason=f"the summary request failed: {exc.message}"))
                    return False
                self.emit(ev.ToolLog(tool="system", log=f"Summary failed ({exc.message}); truncating tool outputs instead."))
                result = await compact_history(
                    self.history, schemas, limit_tokens=limit, context_window=window, summarise=None
                )
        except CompactionError as exc:
            self.sync_store(rewrite=True)
            self.terminated = True
            self.emit(
                ev.SessionTerminated(
                    reason="compaction_failed",
                    message=f"The conversation no longer fits the model's context window ({exc}). Your work is "
                    "saved: start a new session with /new, or resume this one with a larger-context model.",
                )
            )
            raise _TurnAborted() from None
        if not result.summarised_messages and not result.truncated_outputs:
            self.emit(ev.CompactSkipped(reason=result.skipped_reason or "nothing to compact"))
            return False
        self.sync_store(rewrite=True)
        done = []
        if result.summarised_messages:
            done.append(f"summarised {result.summarised_messages} messages")
        if result.truncated_outputs:
            done.append(f"cut {result.truncated_outputs} long outputs")
        self.emit(
            ev.Compacted(
                old_tokens=result.old_tokens,
                new_tokens=result.new_tokens,
                message=f"Compacted the history ({' and '.join(done)}): "
                f"{result.old_tokens:,} -> {result.new_tokens:,} tokens.",
            )
        )
        self.report_context()
        return True

    def report_context(self) -> None:
        """Emit a usage event with the current context size (after compaction, undo, resume)."""
        self.emit(
            ev.Usage(
                context_tokens=self.history.tokens(self.tool_schemas()),
                context_window=self.context_window,
                session_cost_usd=round(self.session_cost_usd, 6),
                session_tokens=self.session_tokens,
                model=self.settings.model_name,
            )
        )

    # ------------------------------------------------------------------ operations

    async def _submission_loop(self) -> None:
        try:
            while True:
                if self._ops.empty():
                    self._idle.set()
                operation = await self._ops.get()
                if isinstance(operation, ops.ShutdownOp):
                    break
                try:
                    await self._dispatch(operation)
                except Exception as exc:  # an operation must never kill the loop
                    self.emit(ev.Error(error=f"{operation.type} failed: {type(exc).__name__}: {exc}"))
        finally:
            await self._close()
            self._idle.set()

    async def _dispatch(self, operation: ops.Operation) -> None:
        if isinstance(operation, ops.UserInput):
            if self.terminated:
                self.emit(ev.Error(error="This session was terminated; use /new to start a fresh one.", kind="terminated"))
                return
            await self.mcp_ready()
            self._turn_task = asyncio.create_task(self._turn(operation.text), name="ml-intern-turn")
            await asyncio.wait({self._turn_task})
            self._share_trace()
        elif isinstance(operation, ops.Undo):
            self._undo(operation)
        elif isinstance(operation, ops.Compact):
            await self._manual_compact()
        elif isinstance(operation, ops.New):
            self._new()
        elif isinstance(operation, ops.Resume):
            self._resume(operation.session_id)
        elif isinstance(operation, ops.Rename):
            self._rename(operation.title)
        elif isinstance(operation, ops.Export):
            await self._export(operation.path)
        elif isinstance(operation, ops.ShareTraces):
            await self._share_traces(operation)

    async def _turn(self, text: str) -> None:
        from ml_intern.core.loop import run_turn

        self._interrupting = False
        try:
            await run_turn(self, text)
        except asyncio.CancelledError:
            if not self._interrupting:
                raise
            self._after_interrupt()
        except _TurnAborted:
            self.last_turn_outcome = "terminated"
            self.emit(ev.TurnComplete(history_size=len(self.history), final_response=None))
        except Exception as exc:
            self.last_turn_outcome = "error"
            self.history.patch_dangling_tool_calls()
            self.sync_store(rewrite=True)
            self.emit(ev.Error(error=f"Internal error during the turn: {type(exc).__name__}: {exc}", kind="internal"))

    def _interrupt(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        if self.busy and self._turn_task is not None:
            self._interrupting = True
            self._turn_task.cancel()

    def _after_interrupt(self) -> None:
        patched = self.history.patch_dangling_tool_calls(
            "Interrupted by the user before this call finished; it may have partly run."
        )
        self.history.add_injected("[ml-intern] The user interrupted the previous turn. Wait for their next instruction.")
        self.sync_store(rewrite=patched > 0)
        self.last_turn_outcome = "interrupted"
        self.emit(ev.Interrupted())

    def _answer(self, operation: ops.ExecApproval) -> None:
        unknown = []
        for answer in operation.approvals:
            future = self._pending.get(answer.tool_call_id)
            if future is None:
                unknown.append(answer.tool_call_id)
            elif not future.done():
                future.set_result(answer)
        if unknown and not self._pending:
            self.emit(ev.Error(error="No pending approval matches " + ", ".join(unknown), kind="approval"))

    async def _switch_model(self, model: str) -> None:
        """Validate a model id, ping local servers with a one-token request, then switch."""
        model = model.strip()
        problem = validate_model_id(model)
        if problem:
            self.emit(ev.Error(error=f"Cannot switch model: {problem}.", kind="bad_model"))
            return
        from ml_intern.core.llm import is_local_model

        if is_local_model(model) and self._llm is None or (is_local_model(model) and _is_litellm(self._llm)):
            self.emit(ev.ToolLog(tool="system", log=f"Checking {model} with a one-token request…"))
            try:
                await asyncio.wait_for(
                    self.llm.complete(
                        LLMRequest(model=model, messages=[{"role": "user", "content": "ping"}], stream=False,
                                   max_tokens=1, purpose="probe")
                    ),
                    30,
                )
            except (LLMError, TimeoutError) as exc:
                message = getattr(exc, "message", None) or "no answer within 30 s"
                self.emit(ev.Error(error=f"Switch failed, still using {self.settings.model_name}: {message}", kind="bad_model"))
                return
        self._set_model(model)

    def _set_model(self, model: str) -> None:
        self.settings.model_name = model.strip()
        self.context_window = context_window_for(self.settings.model_name, self.settings.context_window)
        self.history.set_system_prompt(self._system_prompt())
        self.store.write_meta(model=self.settings.model_name)
        self.emit(ev.ModelChanged(model=self.settings.model_name, context_window=self.context_window))

    def _undo(self, operation: ops.Undo) -> None:
        """Remove the last N real user turns; restore the files they changed unless told not to."""
        start = self.history.undo_start(max(1, operation.turns))
        if start is None:
            self.emit(ev.UndoComplete(turns=0, message="Nothing to undo: you have not sent a message yet."))
            return
        index, first_turn, compacted = start
        turns = 1 if compacted else sum(1 for i in self.history.real_user_indices() if i >= index)
        removed_text = None if compacted else str(self.history.messages[index].get("content") or "")
        plan = self.snapshots.plan_before(first_turn)
        removed = self.history.truncate(index)
        if operation.restore_files:
            restored, not_undone = self.snapshots.restore_from(first_turn)
            for path in restored:
                self.state.files_read.discard(path)
        else:
            restored, not_undone = [], self.snapshots.forget_from(first_turn)
        self.doom_guard.reset()
        self.malformed_streak.clear()
        self.terminated = False
        self.sync_store(rewrite=True)
        if plan is not None and plan != self.state.plan:
            self.state.plan = plan
            self.emit(ev.PlanUpdate(plan=[ev.PlanItem(**item) for item in plan]))
        parts = [f"Removed {removed} message{'s' if removed != 1 else ''} ({turns} turn{'s' if turns != 1 else ''})."]
        if compacted:
            parts.append("The start of this turn was compacted into a summary, which stays.")
        if restored:
            parts.append(f"Restored {len(restored)} file{'s' if len(restored) != 1 else ''}.")
        elif not operation.restore_files:
            parts.append("Files were left as they are.")
        if not_undone:
            parts.append(
                f"Not undone: {len(not_undone)} effect{'s' if len(not_undone) != 1 else ''} outside ml-intern's "
                "control (shell commands, remote operations)."
            )
        self.emit(
            ev.UndoComplete(
                removed_messages=removed,
                restored_files=restored,
                not_undone=not_undone,
                message=" ".join(parts),
                user_text=removed_text,
                turns=turns,
            )
        )
        self.report_context()

    def rewind_points(self) -> list[RewindPoint]:
        """The real user messages the conversation can be rewound to, newest first (for the rewind picker)."""
        points = self.history.rewind_points()
        for point in points:
            point.files_changed = sorted(
                {path for turn, changes in self.snapshots.turns.items() if turn >= point.turn for path in changes.files}
            )
        return points

    def _reattach_jobs(self, job_ids: list[str]) -> None:
        """Follow a resumed session's cloud jobs again, in the background."""
        from ml_intern.core.jobs import get_job_watcher

        watcher = get_job_watcher(self.services, self.emit)

        async def reattach() -> None:
            try:
                await watcher.reattach(job_ids)
            except Exception as exc:
                self.emit(ev.ToolLog(tool="system", log=f"Could not re-attach jobs {', '.join(job_ids)}: {exc}"))

        task = asyncio.get_running_loop().create_task(reattach())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _manual_compact(self) -> None:
        """Compact on request: summarise all but the recent messages, or say why nothing was done."""
        window = self.context_window or context_window_for(self.settings.model_name, self.settings.context_window)
        tokens = self.history.tokens(self.tool_schemas())
        users = self.history.real_user_indices()
        after_task = len(self.history) - (users[0] + 1 if users else 1)
        if after_task < 2:
            self.emit(
                ev.CompactSkipped(
                    reason=f"the conversation is too short to summarise ({after_task} message"
                    f"{'s' if after_task != 1 else ''} after the task, {tokens:,} of {window:,} tokens)"
                )
            )
            return
        await self._compact(tokens, window, manual=True)

    def _reset_conversation(self, session_id: str) -> None:
        self.store.discard_if_empty()
        self.session_id = session_id
        self.store = SessionStore(session_id, enabled=self.settings.save_sessions)
        self.history = History(self._system_prompt())
        self.snapshots = SnapshotStore(paths.snapshots_dir() / session_id) if self.settings.save_sessions else self.snapshots
        self.state = AgentSessionState(self)
        self.doom_guard.reset()
        self.malformed_streak.clear()
        self.policy.session_rules = []
        self.session_tokens = 0
        self.session_cost_usd = 0.0
        self.spent_usd = 0.0
        self.terminated = False
        self.title = ""
        self._persisted = 1  # the system prompt is rebuilt on load, never saved as a message

    def _new(self) -> None:
        previous = self.session_id
        self._share_trace(previous)
        self._reset_conversation(new_session_id())
        self.store.write_meta(model=self.settings.model_name, workdir=str(self.workdir), created=True)
        self.sync_store()
        self.emit(ev.PlanUpdate(plan=[]))
        self.emit(ev.NewComplete(session_id=self.session_id, previous_session_id=previous))
        self.report_context()

    def _resume(self, query: str) -> None:
        path = find_session(query)
        if path is None:
            self.emit(ev.Error(error=f"No saved session matches '{query}'. Use --list-sessions to see them.", kind="resume"))
            return
        loaded = load_session(path)
        if not loaded.records:
            self.emit(ev.Error(error=f"Session {loaded.info.session_id} has no messages to restore.", kind="resume"))
            return
        self._reset_conversation(loaded.info.session_id)
        if loaded.model and loaded.model != self.settings.model_name and not validate_model_id(loaded.model):
            self.settings.model_name = loaded.model
            self.context_window = context_window_for(loaded.model, self.settings.context_window)
        self.history = History(self._system_prompt())
        self.history.load_records(loaded.records)
        # Calls that were running when the last process died have no result: say so, so the model checks.
        self.history.patch_dangling_tool_calls(
            "No result: ml-intern stopped (crash, kill or power loss) while this call was running. It may have "
            "partly run: check its effects before running it again."
        )
        self.state.plan = loaded.plan
        self.policy.session_rules = [ApprovalRule(**rule) for rule in loaded.approval_rules]
        self.title = loaded.info.title
        self._persisted = len(self.history)
        self.store.approval_rules = list(loaded.approval_rules)
        self.store.write_meta(model=self.settings.model_name, resumed=True, title=self.title)
        self.sync_store(rewrite=True)
        if loaded.job_ids:
            self._reattach_jobs(loaded.job_ids)
        self.emit(ev.PlanUpdate(plan=[ev.PlanItem(**item) for item in loaded.plan]))
        self.emit(
            ev.ResumeComplete(
                session_id=self.session_id,
                restored_count=len(self.history) - 1,
                model=self.settings.model_name,
                title=self.title,
            )
        )
        self.report_context()

    def _rename(self, title: str) -> None:
        title = " ".join(title.split())[:120]
        if not title:
            self.emit(ev.Error(error="A session title cannot be empty.", kind="rename"))
            return
        self.title = title
        self.store.write_meta(title=title, renamed=True)
        self.emit(ev.SessionRenamed(session_id=self.session_id, title=title))

    # ------------------------------------------------------------------ traces

    async def _export(self, target: str | None) -> None:
        """Write this session as a Claude Code JSONL trace (default: a file in the working directory)."""
        from ml_intern.core.traces import default_export_path, export_trace

        self.sync_store()
        if not self.store.enabled or not self.store.path.exists():
            self.emit(ev.Error(error="Nothing to export: this session is not saved (save_sessions is off).", kind="export"))
            return
        if target:
            path = Path(target).expanduser()
            path = path if path.is_absolute() else self.workdir / path
        else:
            path = default_export_path(self.workdir, self.session_id)
        try:
            written, lines = await asyncio.to_thread(export_trace, self.store.path, path)
        except OSError as exc:
            self.emit(ev.Error(error=f"Could not export the session to {path}: {exc}", kind="export"))
            return
        self.emit(ev.TraceExported(session_id=self.session_id, path=str(written), lines=lines))

    def _trace_uploader(self) -> Any:
        uploader = self.services.get("trace_uploader")
        if uploader is None:
            from ml_intern.core.traces import TraceUploader

            factory = self.services.get("hf_api")
            uploader = TraceUploader(
                self.settings.personal_trace_repo_template,
                self.emit,
                api_factory=(factory if callable(factory) else (lambda: factory)) if factory is not None else None,
            )
            self.services["trace_uploader"] = uploader
        return uploader

    def _share_trace(self, session_id: str | None = None) -> None:
        """Queue this session's trace for upload when sharing is on (never blocks, never raises)."""
        if not self.settings.share_traces or not self.store.enabled or not self.store.message_lines:
            return
        if session_id is None or session_id == self.session_id:
            self._trace_uploader().schedule(self.session_id, self.store.path)

    async def flush_traces(self, timeout: float = 5.0) -> None:
        """Upload this session's final trace when sharing is on, waiting at most `timeout` seconds."""
        if not self.settings.share_traces:
            return
        self._share_trace()
        uploader = self.services.get("trace_uploader")
        if uploader is not None and not await uploader.flush(timeout):
            uploader.cancel()

    async def _share_traces(self, operation: ops.ShareTraces) -> None:
        """Show or change trace sharing and the visibility of the user's trace dataset."""
        from ml_intern.core.traces import TraceUploadError

        notes: list[str] = []
        if operation.enabled is not None and operation.enabled != self.settings.share_traces:
            self.settings.share_traces = operation.enabled
            try:
                await asyncio.to_thread(save_user_settings, {"share_traces": operation.enabled})
            except OSError as exc:
                notes.append(f"(not saved to config.toml: {exc})")
            if operation.enabled:
                self._share_trace()
        uploader = self._trace_uploader()
        repo_id, private = "", None
        try:
            if operation.visibility is not None:
                repo_id = await asyncio.to_thread(uploader.set_visibility, operation.visibility == "private")
                private = operation.visibility == "private"
            else:
                repo_id, private = await asyncio.to_thread(uploader.visibility)
        except TraceUploadError as exc:
            notes.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - any Hub failure becomes a sentence in the answer
            from ml_intern.tools.hf_common import describe_http_error

            notes.append(describe_http_error(exc, "the trace dataset"))
        state = "on" if self.settings.share_traces else "off"
        where = f" to {repo_id}" if repo_id else ""
        shown = {None: "not created yet", True: "private", False: "PUBLIC"}[private] if repo_id else "unknown"
        message = f"Trace sharing is {state}{where} (dataset {shown})."
        if not self.settings.share_traces:
            message += " Turn it on with /share-traces on; traces go only to your own dataset."
        self.emit(
            ev.TraceSharing(
                enabled=self.settings.share_traces,
                repo_id=repo_id,
                private=private,
                message=" ".join([message, *notes]),
            )
        )


_AUTO_NOTIFY_TYPES = frozenset({"approval_required", "error", "turn_complete"})


def _is_litellm(client: Any) -> bool:
    from ml_intern.core.llm import LiteLLMClient

    return isinstance(client, LiteLLMClient)


class _TurnAborted(Exception):
    """The session was terminated mid-turn (the event was already emitted)."""
