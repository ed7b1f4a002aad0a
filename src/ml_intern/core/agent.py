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
from ml_intern.core.context import CompactionError, History, SnapshotStore, compact_history
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
        for spec in manager.tool_specs():
            self.router.register(spec)
        self.tools_changed()
        self.history.set_system_prompt(self._system_prompt())

    async def mcp_ready(self, timeout: float = 60.0) -> None:
        """Wait (bounded) until MCP servers finished connecting, so the first turn sees their tools."""
        task = self._mcp_task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except (TimeoutError, asyncio.TimeoutError):
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
            except (TimeoutError, asyncio.TimeoutError):
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
        for name in ("jobs", "mcp", "notification_gateway"):
            service = self.services.get(name)
            closer = getattr(service, "aclose", None)
            if closer is not None:
                try:
                    await asyncio.wait_for(closer(), 5)
                except Exception:
                    pass
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
        records = self.history.to_records()
        if rewrite or self._persisted > len(records):
            self.store.write_rewrite(records)
        else:
            for record in records[self._persisted :]:
                self.store.write_message(record)
        self._persisted = len(records)
        if not self.title:
            first = next((r for r in records if r["kind"] == "task"), None)
            if first is not None:
                self.title = title_from_text(str(first["message"].get("content") or ""))
                self.store.write_meta(title=self.title, model=self.settings.model_name)

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
            limit = min(limit, max(1, tokens - 1))
        return await self._compact(limit, window, manual=False)

    async def _compact(self, limit: int, window: int, *, manual: bool) -> bool:
        schemas = self.tool_schemas()

        async def summarise(messages: list[dict[str, Any]]) -> str:
            response = await self.llm.complete(
                LLMRequest(model=self.settings.model_name, messages=messages, stream=False, purpose="compaction",
                           max_tokens=min(4096, max(256, window // 10)))
            )
            self.account_usage(response)
            return response.content

        try:
            try:
                result = await compact_history(self.history, schemas, limit_tokens=limit, context_window=window, summarise=summarise)
            except LLMError as exc:
                self.emit(ev.ToolLog(tool="system", log=f"Summary failed ({exc.message}); truncating old tool outputs instead."))
                result = await compact_history(self.history, schemas, limit_tokens=limit, context_window=window, summarise=None)
        except CompactionError as exc:
            if manual:
                self.emit(ev.CompactSkipped(reason=f"Compaction could not help: {exc}."))
                return False
            self.terminated = True
            self.emit(
                ev.SessionTerminated(
                    reason="compaction_failed",
                    message=f"The conversation no longer fits the model's context window ({exc}). Your work is "
                    "saved: start a new session with /new, or resume this one with a larger-context model.",
                )
            )
            raise _TurnAborted() from None
        self.sync_store(rewrite=True)
        self.emit(
            ev.Compacted(
                old_tokens=result.old_tokens,
                new_tokens=result.new_tokens,
                message=f"Compacted {result.summarised_messages} messages ({result.method}); "
                f"{result.old_tokens:,} -> {result.new_tokens:,} tokens.",
            )
        )
        return True

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
        elif isinstance(operation, ops.Undo):
            self._undo(operation)
        elif isinstance(operation, ops.Compact):
            await self._manual_compact()
        elif isinstance(operation, ops.New):
            self._new()
        elif isinstance(operation, ops.Resume):
            self._resume(operation.session_id)

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
            except (LLMError, TimeoutError, asyncio.TimeoutError) as exc:
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
        users = self.history.real_user_indices()
        if not users:
            self.emit(ev.UndoComplete(message="Nothing to undo."))
            return
        count = max(1, min(operation.turns, len(users)))
        index = users[-count]
        removed_text = str(self.history.messages[index].get("content") or "")
        first_turn = self.history.meta[index].turn
        removed = self.history.truncate(index)
        if operation.restore_files:
            restored, not_undone = self.snapshots.restore_from(first_turn)
            for path in restored:
                self.state.files_read.discard(path)
        else:
            restored, not_undone = [], self.snapshots.forget_from(first_turn)
        self.sync_store(rewrite=True)
        parts = [f"Removed {removed} messages ({count} turn{'s' if count > 1 else ''})."]
        if restored:
            parts.append(f"Restored {len(restored)} file(s).")
        if not_undone:
            parts.append(f"Not undone: {len(not_undone)} effect(s) outside ml-intern's control (shell commands, remote operations).")
        self.emit(
            ev.UndoComplete(
                removed_messages=removed,
                restored_files=restored,
                not_undone=not_undone,
                message=" ".join(parts),
                user_text=removed_text,
            )
        )

    async def _manual_compact(self) -> None:
        real_users = self.history.real_user_indices()
        head_end = (real_users[0] + 1) if real_users else 1
        if len(self.history) - head_end < 4:
            self.emit(ev.CompactSkipped(reason=f"Nothing to compact yet: the conversation has only {len(self.history) - 1} messages."))
            return
        window = self.context_window or context_window_for(self.settings.model_name, self.settings.context_window)
        tokens = self.history.tokens(self.tool_schemas())
        await self._compact(max(tokens - 1, 1), window, manual=True)

    def _reset_conversation(self, session_id: str) -> None:
        self.store.close()
        self.session_id = session_id
        self.store = SessionStore(session_id, enabled=self.settings.save_sessions)
        self.history = History(self._system_prompt())
        self.snapshots = SnapshotStore(paths.snapshots_dir() / session_id) if self.settings.save_sessions else self.snapshots
        self.state = AgentSessionState(self)
        self.doom_guard.reset()
        self.session_tokens = 0
        self.session_cost_usd = 0.0
        self.spent_usd = 0.0
        self.terminated = False
        self.title = ""
        self._persisted = 0

    def _new(self) -> None:
        previous = self.session_id
        self._reset_conversation(new_session_id())
        self.store.write_meta(model=self.settings.model_name, workdir=str(self.workdir), created=True)
        self.sync_store()
        self.emit(ev.PlanUpdate(plan=[]))
        self.emit(ev.NewComplete(session_id=self.session_id, previous_session_id=previous))

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
        if loaded.model and not validate_model_id(loaded.model):
            self.settings.model_name = loaded.model
            self.context_window = context_window_for(loaded.model, self.settings.context_window)
        self.history = History(self._system_prompt())
        self.history.load_records(loaded.records)
        self.history.patch_dangling_tool_calls()
        self.state.plan = loaded.plan
        self.title = loaded.info.title
        self._persisted = len(self.history)
        self.store.write_meta(model=self.settings.model_name, resumed=True, title=self.title)
        self.sync_store(rewrite=True)
        jobs = self.services.get("jobs")
        if loaded.job_ids and jobs is not None and hasattr(jobs, "reattach"):
            try:
                jobs.reattach(loaded.job_ids)
            except Exception as exc:
                self.emit(ev.ToolLog(tool="system", log=f"Could not re-attach jobs: {exc}"))
        if loaded.plan:
            self.emit(ev.PlanUpdate(plan=[ev.PlanItem(**item) for item in loaded.plan]))
        self.emit(
            ev.ResumeComplete(
                session_id=self.session_id,
                restored_count=len(self.history) - 1,
                model=self.settings.model_name,
                title=self.title,
            )
        )


_AUTO_NOTIFY_TYPES = frozenset({"approval_required", "error", "turn_complete"})


def _is_litellm(client: Any) -> bool:
    from ml_intern.core.llm import LiteLLMClient

    return isinstance(client, LiteLLMClient)


class _TurnAborted(Exception):
    """The session was terminated mid-turn (the event was already emitted)."""
