"""What front ends submit to the agent."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Operation(BaseModel):
    """Base of every operation."""

    model_config = ConfigDict(extra="forbid")

    type: str


class UserInput(Operation):
    """A user message; starts (or queues) a turn."""

    type: Literal["user_input"] = "user_input"
    text: str


class ApprovalAnswer(BaseModel):
    """The decision for one tool call that waited for approval."""

    tool_call_id: str
    approved: bool
    feedback: str | None = None
    # "session" or "forever" turns an approval or denial into a rule for similar calls.
    remember: Literal["session", "forever"] | None = None
    rule_pattern: str | None = None


class ExecApproval(Operation):
    """Answers to a pending `approval_required` event."""

    type: Literal["exec_approval"] = "exec_approval"
    approvals: list[ApprovalAnswer]


class Interrupt(Operation):
    """Stop the running turn: streaming, tools and pending approvals."""

    type: Literal["interrupt"] = "interrupt"


class Undo(Operation):
    """Remove the last real user turn and restore the files it changed."""

    type: Literal["undo"] = "undo"
    restore_files: bool = True
    # Rewind further: the number of user turns to remove (the rewind picker).
    turns: int = 1


class Compact(Operation):
    """Compact the history now."""

    type: Literal["compact"] = "compact"


class New(Operation):
    """Save the current conversation and start a fresh one."""

    type: Literal["new"] = "new"


class Resume(Operation):
    """Load a saved session by id (or path)."""

    type: Literal["resume"] = "resume"
    session_id: str


class Rename(Operation):
    """Give the current session a title (shown in the session list and picker)."""

    type: Literal["rename"] = "rename"
    title: str


class Export(Operation):
    """Write the session as a Claude Code JSONL trace (for the Hub's Agent Trace Viewer)."""

    type: Literal["export"] = "export"
    # File or folder to write to; default: a file in the working directory.
    path: str | None = None


class ShareTraces(Operation):
    """Show or change trace sharing: on/off, and the visibility of the user's trace dataset."""

    type: Literal["share_traces"] = "share_traces"
    enabled: bool | None = None
    visibility: Literal["public", "private"] | None = None


class SetModel(Operation):
    """Switch the model for the next LLM call."""

    type: Literal["set_model"] = "set_model"
    model: str


class SetApprovalMode(Operation):
    """Switch the approval mode (ask, auto, yolo)."""

    type: Literal["set_approval_mode"] = "set_approval_mode"
    mode: Literal["ask", "auto", "yolo"]


class ShutdownOp(Operation):
    """Stop the agent."""

    type: Literal["shutdown"] = "shutdown"


AnyOperation = (
    UserInput
    | ExecApproval
    | Interrupt
    | Undo
    | Compact
    | New
    | Resume
    | Rename
    | Export
    | ShareTraces
    | SetModel
    | SetApprovalMode
    | ShutdownOp
)

__all__ = [
    "Operation",
    "UserInput",
    "ApprovalAnswer",
    "ExecApproval",
    "Interrupt",
    "Undo",
    "Compact",
    "New",
    "Resume",
    "Rename",
    "Export",
    "ShareTraces",
    "SetModel",
    "SetApprovalMode",
    "ShutdownOp",
    "AnyOperation",
]
