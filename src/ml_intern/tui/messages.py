"""Textual messages that carry the agent's events from the bridge worker to the handlers."""

from __future__ import annotations

from textual.message import Message

from ml_intern.core.events import Event


class AgentEvent(Message):
    """One event from the agent, posted by the bridge worker."""

    bubble = False

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class AgentStartFailed(Message):
    """The agent could not be created or started."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class AgentAttached(Message):
    """The agent object exists; operations can be submitted to it."""

    def __init__(self, agent: object) -> None:
        super().__init__()
        self.agent = agent
