"""The closed vocabulary of events the agent emits; front ends render these and nothing else."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Event(BaseModel):
    """Base of every event: a type tag, a per-agent sequence number and a wall-clock timestamp."""

    model_config = ConfigDict(extra="forbid")

    type: str
    seq: int = 0
    timestamp: float = Field(default_factory=time.time)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the event as a JSON-ready dict (the `--json` line format)."""
        return self.model_dump(mode="json")


class Ready(Event):
    """The agent is initialised and accepts operations."""

    type: Literal["ready"] = "ready"
    message: str = "Agent ready"
    tool_count: int = 0
    model: str = ""
    session_id: str = ""


class Processing(Event):
    """A user turn started."""

    type: Literal["processing"] = "processing"
    message: str = "Processing user input"


class AssistantChunk(Event):
    """A streamed piece of assistant text."""

    type: Literal["assistant_chunk"] = "assistant_chunk"
    content: str


class AssistantMessage(Event):
    """A complete assistant message (non-streaming calls)."""

    type: Literal["assistant_message"] = "assistant_message"
    content: str


class AssistantStreamEnd(Event):
    """The current assistant stream finished."""

    type: Literal["assistant_stream_end"] = "assistant_stream_end"


class ToolCall(Event):
    """A tool call is about to run (or was rejected before running)."""

    type: Literal["tool_call"] = "tool_call"
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    tool_call_id: str


class ToolOutput(Event):
    """The result of a tool call, exactly as the model will read it."""

    type: Literal["tool_output"] = "tool_output"
    tool: str
    tool_call_id: str
    output: str
    success: bool = True
    duration_s: float | None = None


class ToolLog(Event):
    """A progress line from a running tool, or a system notice (`tool == "system"`)."""

    type: Literal["tool_log"] = "tool_log"
    tool: str
    log: str
    tool_call_id: str | None = None
    agent_id: str | None = None


ToolState = Literal[
    "awaiting_approval",
    "approved",
    "rejected",
    "running",
    "done",
    "failed",
    "cancelled",
    "abandoned",
    # Remote job states (hf_jobs) are passed through lower-cased.
    "queued",
    "completed",
    "error",
    "canceled",
    "detached",
    "billing_required",
]


class ToolStateChange(Event):
    """A tool call moved to a new state (approval, running, done, cancelled, remote job stages)."""

    type: Literal["tool_state_change"] = "tool_state_change"
    tool_call_id: str
    tool: str
    state: str
    detail: dict[str, Any] = Field(default_factory=dict)


class ApprovalItem(BaseModel):
    """One tool call that waits for a human decision."""

    tool: str
    arguments: dict[str, Any]
    tool_call_id: str
    reason: str = ""
    preview: str = ""
    estimated_cost_usd: float | None = None
    warnings: list[str] = Field(default_factory=list)
    subject: str = ""


class ApprovalRequired(Event):
    """Some tool calls need approval before they run; answer with an `exec_approval` operation."""

    type: Literal["approval_required"] = "approval_required"
    tools: list[ApprovalItem]
    count: int = 0


class TurnComplete(Event):
    """A user turn ended normally."""

    type: Literal["turn_complete"] = "turn_complete"
    history_size: int
    final_response: str | None = None
    iterations: int = 0


class IterationLimitReached(Event):
    """The per-turn iteration cap stopped the turn."""

    type: Literal["iteration_limit_reached"] = "iteration_limit_reached"
    max_iterations: int
    message: str


class Error(Event):
    """Something failed; the message is written for the user."""

    type: Literal["error"] = "error"
    error: str
    kind: str = "error"
    fatal: bool = False


class Interrupted(Event):
    """The running turn was interrupted by the user."""

    type: Literal["interrupted"] = "interrupted"


class Compacted(Event):
    """The history was compacted."""

    type: Literal["compacted"] = "compacted"
    old_tokens: int
    new_tokens: int
    message: str = ""


class CompactSkipped(Event):
    """A requested compaction did nothing; the message says why."""

    type: Literal["compact_skipped"] = "compact_skipped"
    reason: str


class UndoComplete(Event):
    """The last user turn was removed (and files restored where possible)."""

    type: Literal["undo_complete"] = "undo_complete"
    removed_messages: int = 0
    restored_files: list[str] = Field(default_factory=list)
    not_undone: list[str] = Field(default_factory=list)
    message: str = ""
    user_text: str | None = None
    # How many user turns were removed (a rewind removes several).
    turns: int = 1


class Shutdown(Event):
    """The agent shut down."""

    type: Literal["shutdown"] = "shutdown"


class PlanItem(BaseModel):
    """One entry of the agent's todo plan."""

    id: str
    content: str
    status: Literal["pending", "in_progress", "completed"]


class PlanUpdate(Event):
    """The plan changed."""

    type: Literal["plan_update"] = "plan_update"
    plan: list[PlanItem]


class Usage(Event):
    """Token and cost accounting after an LLM call."""

    type: Literal["usage"] = "usage"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    context_tokens: int = 0
    context_window: int = 0
    cost_usd: float = 0.0
    session_cost_usd: float = 0.0
    session_tokens: int = 0
    model: str = ""


class SessionTerminated(Event):
    """The session cannot continue (for example the history cannot be compacted)."""

    type: Literal["session_terminated"] = "session_terminated"
    reason: str
    message: str


class NewComplete(Event):
    """A fresh conversation started."""

    type: Literal["new_complete"] = "new_complete"
    session_id: str
    previous_session_id: str | None = None


class ResumeComplete(Event):
    """A saved session was restored."""

    type: Literal["resume_complete"] = "resume_complete"
    session_id: str
    restored_count: int = 0
    model: str = ""
    title: str = ""


class SessionRenamed(Event):
    """The session got a new title."""

    type: Literal["session_renamed"] = "session_renamed"
    session_id: str
    title: str


class TraceExported(Event):
    """The session was written as a Claude Code JSONL trace."""

    type: Literal["trace_exported"] = "trace_exported"
    session_id: str
    path: str
    lines: int = 0


class TraceSharing(Event):
    """Trace sharing settings: whether sessions upload, where, and the dataset's visibility."""

    type: Literal["trace_sharing"] = "trace_sharing"
    enabled: bool
    repo_id: str = ""
    private: bool | None = None
    message: str = ""


class TraceUploaded(Event):
    """A redacted trace reached the user's own dataset on the Hub."""

    type: Literal["trace_uploaded"] = "trace_uploaded"
    session_id: str
    repo_id: str
    path_in_repo: str
    url: str = ""


class DoomLoopDetected(Event):
    """The repetition guard saw the model repeat itself and injected a corrective note."""

    type: Literal["doom_loop_detected"] = "doom_loop_detected"
    kind: Literal["identical", "cycle"]
    tools: list[str]
    message: str


class ModelChanged(Event):
    """The active model changed."""

    type: Literal["model_changed"] = "model_changed"
    model: str
    context_window: int = 0


class ApprovalModeChanged(Event):
    """The approval mode changed."""

    type: Literal["approval_mode_changed"] = "approval_mode_changed"
    mode: str


class Retrying(Event):
    """An LLM call failed transiently and will be retried after a wait."""

    type: Literal["retrying"] = "retrying"
    attempt: int
    delay_s: float
    reason: str


class JobUpdate(Event):
    """A remote job or sandbox changed state or printed logs (Runs pane, headless JSON)."""

    type: Literal["job_update"] = "job_update"
    job_id: str
    kind: Literal["job", "sandbox"] = "job"
    status: str = ""
    hardware: str = ""
    url: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    cost_usd: float | None = None
    price_usd_per_hour: float | None = None
    log_lines: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    tool_call_id: str | None = None
    title: str = ""


AnyEvent = Annotated[
    Union[  # noqa: UP007 - one event per line reads better than a 600-character `|` chain
        Ready,
        Processing,
        AssistantChunk,
        AssistantMessage,
        AssistantStreamEnd,
        ToolCall,
        ToolOutput,
        ToolLog,
        ToolStateChange,
        ApprovalRequired,
        TurnComplete,
        IterationLimitReached,
        Error,
        Interrupted,
        Compacted,
        CompactSkipped,
        UndoComplete,
        Shutdown,
        PlanUpdate,
        Usage,
        SessionTerminated,
        NewComplete,
        ResumeComplete,
        SessionRenamed,
        TraceExported,
        TraceSharing,
        TraceUploaded,
        DoomLoopDetected,
        ModelChanged,
        ApprovalModeChanged,
        Retrying,
        JobUpdate,
    ],
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

# Events that end a turn: a front end waiting for the agent stops waiting on any of these.
TURN_ENDING_EVENTS = frozenset(
    {
        "turn_complete",
        "interrupted",
        "error",
        "undo_complete",
        "new_complete",
        "resume_complete",
        "compacted",
        "compact_skipped",
        "session_terminated",
        "shutdown",
    }
)


def parse_event(data: dict[str, Any]) -> Event:
    """Rebuild a typed event from its JSON dict."""
    return EVENT_ADAPTER.validate_python(data)
