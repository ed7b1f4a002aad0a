"""Pilot tests: the real app and the real Agent with real tools, driven by an in-process scripted model."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from ml_intern import paths
from ml_intern.config import Settings
from ml_intern.core import events as ev
from ml_intern.core.llm_types import LLMRequest, LLMResponse, LLMToolCall, TokenUsage
from ml_intern.core.operations import Operation
from ml_intern.tui.app import MLInternApp
from ml_intern.tui.messages import AgentEvent
from ml_intern.tui.screens.approval import ApprovalScreen
from ml_intern.tui.screens.main import MainScreen
from ml_intern.tui.widgets.conversation import AssistantMessage, ToolCallBlock, UserMessage
from ml_intern.tui.widgets.prompt import PromptInput

pytestmark = pytest.mark.timeout(60)

Step = tuple[str, list[tuple[str, dict[str, Any]]]]


class ScriptedClient:
    """An LLMClient that streams each scripted step and records every request it received."""

    def __init__(self, steps: Iterable[Step], chunk_size: int = 5) -> None:
        self.steps = list(steps)
        self.requests: list[LLMRequest] = []
        self.chunk_size = chunk_size

    async def complete(self, request: LLMRequest, on_chunk: Callable[[str], None] | None = None) -> LLMResponse:
        # The agent hands over its live history list: keep what was sent at this moment.
        self.requests.append(dataclasses.replace(request, messages=copy.deepcopy(request.messages)))
        if request.purpose != "main":
            return LLMResponse(content="Summary of the earlier conversation.", usage=TokenUsage(10, 5, 15))
        text, calls = self.steps.pop(0) if self.steps else ("(script exhausted)", [])
        if on_chunk is not None:
            for start in range(0, len(text), self.chunk_size):
                on_chunk(text[start : start + self.chunk_size])
                await asyncio.sleep(0)
        n = len(self.requests)
        return LLMResponse(
            content=text,
            tool_calls=[LLMToolCall(f"call_{n}_{i}", name, json.dumps(args)) for i, (name, args) in enumerate(calls)],
            usage=TokenUsage(100, 10, 110),
            model=request.model,
        )

    def tool_results(self, request_index: int = -1) -> list[str]:
        """Tool-result contents in one recorded request."""
        return [str(m.get("content")) for m in self.requests[request_index].messages if m.get("role") == "tool"]


class FakeAgent:
    """Stands in for the Agent where a test needs exact, timing-free events (snapshots)."""

    def __init__(self, events: Iterable[ev.Event] = ()) -> None:
        self.queue: asyncio.Queue[ev.Event] = asyncio.Queue()
        for event in events:
            self.queue.put_nowait(event)
        self.ops: list[Operation] = []
        self.busy = False

    async def start(self) -> None:
        return None

    def submit(self, op: Operation) -> None:
        self.ops.append(op)

    async def events(self) -> Any:
        while True:
            event = await self.queue.get()
            yield event
            if event.type == "shutdown":
                return

    async def shutdown(self, timeout: float = 10.0) -> None:
        self.queue.put_nowait(ev.Shutdown())


def make_settings(**changes: Any) -> Settings:
    base = {"model_name": "scripted/test-model", "context_window": 32_000, "approval_mode": "ask",
            "save_sessions": False, "theme": "hf-dark"}
    base.update(changes)
    return Settings(**base)


def make_app(
    steps: Iterable[Step] = (), *, workdir: Path, settings: Settings | None = None, **app_kwargs: Any
) -> tuple[MLInternApp, ScriptedClient]:
    """The app with a real Agent (built-in tools, scripted model) working in `workdir`."""
    client = ScriptedClient(steps)
    settings = settings or make_settings()

    def factory() -> Any:
        from ml_intern.core.agent import Agent

        return Agent(settings, llm=client, workdir=workdir)

    app = MLInternApp(settings, agent_factory=factory, **app_kwargs)
    return app, client


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Let the app run until `predicate()` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.02)


async def wait_for_group(node: Any, group: str) -> None:
    """Wait for the node's workers in one group (never the long-lived agent bridge)."""
    workers = [w for w in node.workers if w.group == group and w.node is node]
    if workers:  # an empty list would mean "every worker"
        await node.workers.wait_for_complete(workers)


def main_screen(app: MLInternApp) -> MainScreen:
    screen = app.main_screen
    assert isinstance(screen, MainScreen)
    return screen


async def send(pilot: Pilot[Any], text: str) -> None:
    """Type a prompt and press Enter."""
    screen = main_screen(pilot.app)  # type: ignore[arg-type]
    prompt = screen.prompt
    prompt.focus()
    prompt.load_text(text)
    await pilot.press("enter")


def event_types(messages: list[Any]) -> list[str]:
    """Agent events the screen received, once each (the hook may see a message more than once)."""
    seen: dict[int, str] = {}
    for message in messages:
        if isinstance(message, AgentEvent):
            seen.setdefault(id(message.event), message.event.type)
    return list(seen.values())


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


async def test_prompt_streams_answer(work: Path) -> None:
    answer = "Hello from the **model**: keep [brackets] and [b]tags[/b] as typed."
    app, client = make_app([(answer, [])], workdir=work)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None and screen.status.info.connected)
        await send(pilot, "say hello")
        await wait_for(pilot, lambda: bool(screen.conversation.query(AssistantMessage)) and not screen.working)
        await pilot.pause(0.1)
        user = screen.conversation.query_one(UserMessage)
        assert user.text == "say hello" and not user.queued
        assistant = screen.conversation.query(AssistantMessage).last()
        assert assistant.source == answer
        assert "".join(assistant.streamed_text) == answer, "the answer arrived through the stream"
        assert client.requests[0].messages[-1]["content"] == "say hello"


BASH_STEPS: list[Step] = [("Running it.", [("bash", {"command": "echo approved-output"})]), ("Done.", [])]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["y"], "approved-output"),
        (["n"], "The user denied this call; it was NOT run."),
        (["f", *"use ls instead", "enter"], "User feedback: use ls instead"),
    ],
    ids=["approve", "deny", "deny-with-feedback"],
)
async def test_approval_answers_reach_the_model(work: Path, keys: list[str], expected: str) -> None:
    app, client = make_app(list(BASH_STEPS), workdir=work)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "run echo")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        modal = app.screen
        assert isinstance(modal, ApprovalScreen) and modal.current.tool == "bash"
        await pilot.press(*keys)
        await wait_for(pilot, lambda: len(client.requests) >= 2 and not screen.working)
        results = client.tool_results(1)
        assert len(results) == 1 and expected in results[0]
        if keys == ["y"]:
            assert "denied" not in results[0]
        else:
            assert "approved-output" not in results[0]


async def test_always_allow_stops_asking_for_similar_calls(work: Path) -> None:
    steps: list[Step] = [
        ("First.", [("bash", {"command": "echo one"})]),
        ("Second.", [("bash", {"command": "echo one more"})]),
        ("Done.", []),
    ]
    app, client = make_app(steps, workdir=work)
    messages: list[Any] = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await send(pilot, "run twice")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("a")
        await wait_for(pilot, lambda: len(client.requests) >= 3 and not screen.working)
        assert event_types(messages).count("approval_required") == 1
        assert "one\n" in client.tool_results(1)[0] + "\n"
        assert "one more" in client.tool_results(2)[-1]
        assert not (paths.user_config_path().exists()
                    and "approval_rules" in paths.user_config_path().read_text()), "session rule is not saved"


async def test_always_allow_forever_saves_a_rule(work: Path) -> None:
    app, client = make_app(list(BASH_STEPS), workdir=work)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "run echo")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("A")
        await wait_for(pilot, lambda: len(client.requests) >= 2 and not screen.working)
    saved = tomllib.loads(paths.user_config_path().read_text())
    assert saved["approval_rules"][0]["tool"] == "bash"
    assert saved["approval_rules"][0]["pattern"].startswith("echo approved-output")


async def test_several_pending_calls_are_answered_in_one_go(work: Path) -> None:
    steps: list[Step] = [
        ("Two things.", [("bash", {"command": "echo first"}), ("bash", {"command": "echo second"})]),
        ("Done.", []),
    ]
    app, client = make_app(steps, workdir=work)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "two calls")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        modal = app.screen
        assert isinstance(modal, ApprovalScreen) and len(modal.items) == 2
        await pilot.press("y")
        assert app.screen is modal and modal.index == 1, "the second call is asked about next"
        await pilot.press("n")
        await wait_for(pilot, lambda: len(client.requests) >= 2 and not screen.working)
        first, second = client.tool_results(1)
        assert "first" in first and "NOT run" in second


async def test_escape_interrupts_a_running_command_quickly(work: Path) -> None:
    steps: list[Step] = [("Sleeping.", [("bash", {"command": "sleep 30"})])]
    app, client = make_app(steps, workdir=work, settings=make_settings(approval_mode="yolo"))
    messages: list[Any] = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await send(pilot, "sleep")
        await wait_for(pilot, lambda: any(
            isinstance(b, ToolCallBlock) and b.state == "running" for b in screen.conversation.children))
        await pilot.pause(0.2)
        started = time.monotonic()
        await pilot.press("escape")
        await wait_for(pilot, lambda: "interrupted" in event_types(messages), timeout=5)
        elapsed = time.monotonic() - started
        assert elapsed < 0.5, f"interrupt took {elapsed:.2f}s"
        assert not screen.working
        block = next(b for b in screen.conversation.children if isinstance(b, ToolCallBlock))
        assert block.state in {"cancelled", "failed"}


async def test_escape_in_the_modal_denies_and_interrupts(work: Path) -> None:
    app, client = make_app(list(BASH_STEPS), workdir=work)
    messages: list[Any] = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await send(pilot, "run echo")
        await wait_for(pilot, lambda: isinstance(app.screen, ApprovalScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: "interrupted" in event_types(messages))
        assert app.screen is screen
        assert len(client.requests) == 1, "the model was not called again"
        assert not list((work).glob("*"))


async def test_undo_and_compact_hotkeys_submit_operations(work: Path) -> None:
    steps: list[Step] = [("First answer.", []), ("Second answer.", [])]
    app, client = make_app(steps, workdir=work)
    messages: list[Any] = []
    async with app.run_test(size=(120, 36), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await send(pilot, "one")
        await wait_for(pilot, lambda: "turn_complete" in event_types(messages))
        await send(pilot, "two")
        await wait_for(pilot, lambda: event_types(messages).count("turn_complete") == 2)
        agent = screen.agent
        before = len(agent.history)  # type: ignore[union-attr]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "undo_complete" in event_types(messages))
        assert len(agent.history) < before  # type: ignore[union-attr]
        assert [m.text for m in screen.conversation.query(UserMessage)] == ["one"], "the undone turn left the screen"
        assert screen.prompt.text == "two", "the undone prompt is back for editing"
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: {"compacted", "compact_skipped"} & set(event_types(messages)))


async def test_type_ahead_is_shown_queued_then_sent(work: Path) -> None:
    steps: list[Step] = [("Sleeping.", [("bash", {"command": "sleep 1"})]), ("Slept.", []), ("Second.", [])]
    app, client = make_app(steps, workdir=work, settings=make_settings(approval_mode="yolo"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "first")
        await wait_for(pilot, lambda: screen.working)
        await send(pilot, "second")
        queued = screen.conversation.query(UserMessage).last()
        assert queued.text == "second" and queued.queued
        assert screen.status.info.queued == 1
        await wait_for(pilot, lambda: len(client.requests) >= 3 and not screen.working, timeout=15)
        assert not queued.queued and screen.status.info.queued == 0
        assert client.requests[2].messages[-1]["content"] == "second"


async def test_theme_switch_persists(work: Path) -> None:
    app, _ = make_app(workdir=work)
    async with app.run_test(size=(120, 36)) as pilot:
        await send(pilot, "/theme hf-light")
        await wait_for(pilot, lambda: paths.user_config_path().exists())
        await wait_for_group(app, "settings")
        assert app.theme == "hf-light"
    assert tomllib.loads(paths.user_config_path().read_text())["theme"] == "hf-light"


async def test_broken_theme_file_falls_back_with_a_notification(work: Path, tmp_path: Path) -> None:
    themes = tmp_path / "themes"
    themes.mkdir()
    (themes / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    (themes / "garbage.toml").write_text("this is = = not toml")
    shipped = paths.shipped_themes_dir()
    app, _ = make_app(workdir=work, settings=make_settings(theme="broken"), theme_dirs=[shipped, themes])
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause(0.1)
        assert app.theme == "hf-dark"
        notes = " ".join(str(n.message) for n in app._notifications)
        assert "broken.toml" in notes and "garbage.toml" in notes and "not available" in notes
        assert {"hf-dark", "hf-light", "high-contrast"} <= set(app.available_themes)


async def test_prompt_history_persists_and_recalls(work: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    app, _ = make_app([("ok", []), ("ok", [])], workdir=work, history_file=history)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "first prompt")
        await wait_for(pilot, lambda: not screen.working and bool(screen.conversation.query(AssistantMessage)))
        await wait_for_group(main_screen(app), "history")
    assert json.loads(history.read_text().splitlines()[-1]) == "first prompt"
    app2, _ = make_app(workdir=work, history_file=history)
    async with app2.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app2)
        await wait_for(pilot, lambda: bool(screen.prompt.prompt_history))
        screen.prompt.focus()
        await pilot.press("up")
        assert screen.prompt.text == "first prompt"
        await pilot.press("down")
        assert screen.prompt.text == ""


async def test_multiline_prompt_and_slash_help(work: Path) -> None:
    app, client = make_app([("ok", [])], workdir=work)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        screen.prompt.focus()
        await pilot.press("a", "ctrl+j", "b")
        assert screen.prompt.text == "a\nb"
        screen.prompt.clear()
        await send(pilot, "/help")
        await pilot.pause(0.05)
        texts = " ".join(str(n.render()) for n in screen.conversation.children)
        assert "/approval-mode" in texts and "Undo turn" in texts
        assert client.requests == [], "slash commands never reach the model"


async def test_palette_lists_every_hotkey_and_keymap_rebinds(work: Path) -> None:
    app, _ = make_app(workdir=work, settings=make_settings(keymap={"undo": "f9"}))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None)
        titles = {c.title for c in app.get_system_commands(screen)}
        assert {"Undo last turn", "Compact history", "New session", "Switch model", "Toggle side panes"} <= titles
        screen.agent.ops = []  # type: ignore[union-attr]
        submitted: list[Operation] = []
        screen.agent.submit = submitted.append  # type: ignore[union-attr,method-assign]
        await pilot.press("f9")
        assert [op.type for op in submitted] == ["undo"]
        submitted.clear()
        await pilot.press("ctrl+r")
        assert submitted == [], "the default key no longer fires once rebound"


async def test_narrow_terminal_hides_side_panes_until_toggled(work: Path) -> None:
    app, _ = make_app(workdir=work)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = main_screen(app)
        await pilot.pause(0.05)
        side = screen.query_one("#side")
        assert screen.has_class("-narrow") and not side.display or not side.is_on_screen
        await pilot.press("ctrl+b")
        await pilot.pause(0.05)
        assert side.display and side.region.width > 0
        await pilot.press("ctrl+b")
        await pilot.pause(0.05)
        assert side.region.width == 0 or not side.display


async def test_tool_call_expands_and_timeline_row_shows_output(work: Path) -> None:
    app, _ = make_app(list(BASH_STEPS), workdir=work, settings=make_settings(approval_mode="yolo"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "run echo")
        await wait_for(pilot, lambda: not screen.working and bool(screen.conversation.query(ToolCallBlock)))
        await wait_for(pilot, lambda: screen.conversation.query_one(ToolCallBlock).output is not None)
        block = screen.conversation.query_one(ToolCallBlock)
        block.focus()
        await pilot.press("enter")
        assert block.expanded and "approved-output" in str(block.render())
        table = screen.timeline.table
        table.focus()
        await pilot.press("enter")
        await pilot.pause(0.05)
        detail = screen.timeline.query_one("#tool-detail")
        assert "approved-output" in str(detail.render())


async def test_quit_asks_while_a_turn_runs(work: Path) -> None:
    steps: list[Step] = [("Sleeping.", [("bash", {"command": "sleep 5"})])]
    app, _ = make_app(steps, workdir=work, settings=make_settings(approval_mode="yolo"))
    async with app.run_test(size=(120, 36)) as pilot:
        screen = main_screen(app)
        await send(pilot, "sleep")
        await wait_for(pilot, lambda: screen.working)
        await pilot.press("ctrl+q")
        await pilot.pause(0.05)
        assert type(app.screen).__name__ == "ConfirmScreen"
        await pilot.press("n")
        assert app.screen is screen and app.is_running
        await pilot.press("escape")
        await wait_for(pilot, lambda: not screen.working)


async def test_job_update_shows_the_runs_pane(work: Path) -> None:
    agent = FakeAgent([
        ev.Ready(model="m"),
        ev.JobUpdate(job_id="job-1", status="running", hardware="a10g-small", title="sft run",
                     log_lines=["step 1 loss 2.0"]),
    ])
    app = MLInternApp(make_settings(), agent_factory=lambda: agent, history_file=None, save_settings=False)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = main_screen(app)
        runs = screen.query_one("#runs")
        await wait_for(pilot, lambda: screen.has_class("-show-runs"))
        await pilot.pause(0.05)
        assert runs.display and runs.region.height > 0
        assert "job-1" in runs.runs  # type: ignore[attr-defined]
        await pilot.press("ctrl+o")
        await pilot.pause(0.05)
        assert not screen.has_class("-show-runs")
