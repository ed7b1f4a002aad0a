"""The app's session picker (/resume) and rewind picker (F3, /rewind) driven with Pilot against the real Agent."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import OptionList, Static

from ml_intern.core import events as ev
from ml_intern.core.context import History
from ml_intern.core.session import SessionStore
from ml_intern.tui.screens.rewind import RewindScreen
from ml_intern.tui.screens.sessions import SessionPicker
from ml_intern.tui.widgets.conversation import UserMessage
from tests.test_tui_app import Step, main_screen, make_app, make_settings, send, wait_for

pytestmark = pytest.mark.timeout(60)


def save_session(session_id: str, title: str, turns: list[tuple[str, str]], model: str = "vllm/old") -> None:
    """Write a saved session the way the agent does."""
    store = SessionStore(session_id)
    store.write_meta(model=model, workdir="/tmp", created=True)
    history = History("system")
    for question, answer in turns:
        history.add_user(question)
        history.add_assistant(answer)
    for record in history.to_records(1):
        store.write_message(record)
    store.write_meta(title=title)
    store.close()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


async def test_resume_opens_a_picker_with_previews_and_resumes_the_choice(work: Path) -> None:
    save_session(
        "20260101-090000-aaaaaa", "IMDB sentiment", [("fine-tune bert on imdb", "done: 91% accuracy")]
    )
    await asyncio.sleep(0.01)
    save_session("20260102-090000-bbbbbb", "Whisper eval", [("evaluate whisper-small", "WER 12.3")])
    app, client = make_app([("Picking up the IMDB work.", [])], workdir=work)
    messages: list[Any] = []
    async with app.run_test(size=(130, 40), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None and screen.status.info.connected)
        await send(pilot, "/resume")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionPicker))
        picker = app.screen
        assert isinstance(picker, SessionPicker)
        options = picker.query_one("#sessions-list", OptionList)
        await wait_for(pilot, lambda: options.option_count == 2)
        assert [options.get_option_at_index(i).id for i in range(2)] == [
            "20260102-090000-bbbbbb",
            "20260101-090000-aaaaaa",
        ], "newest first"
        preview = picker.query_one("#sessions-preview", Static)
        await wait_for(pilot, lambda: "WER 12.3" in str(preview.render()))
        await pilot.press("down")
        await wait_for(pilot, lambda: "91% accuracy" in str(preview.render()))
        await pilot.press("enter")
        resumed_id = "20260101-090000-aaaaaa"
        await wait_for(pilot, lambda: app.screen is screen and screen.agent.session_id == resumed_id)  # type: ignore[union-attr]
        await send(pilot, "continue")
        await wait_for(pilot, lambda: len(client.requests) == 1 and not screen.working)
    sent = [m["content"] for m in client.requests[0].messages[1:]]
    assert sent == ["fine-tune bert on imdb", "done: 91% accuracy", "continue"]
    resumed = [
        m.event
        for m in messages
        if getattr(m, "event", None) is not None and m.event.type == "resume_complete"
    ]
    assert resumed and resumed[0].title == "IMDB sentiment"


async def test_the_picker_filters_and_escape_cancels(work: Path) -> None:
    save_session("20260101-090000-aaaaaa", "IMDB sentiment", [("a", "b")])
    save_session("20260102-090000-bbbbbb", "Whisper eval", [("c", "d")])
    app, _ = make_app(workdir=work)
    async with app.run_test(size=(130, 40)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None)
        await send(pilot, "/resume")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionPicker))
        picker = app.screen
        options = picker.query_one("#sessions-list", OptionList)
        await wait_for(pilot, lambda: options.option_count == 2)
        picker.query_one("#sessions-filter").focus()
        await pilot.press(*"whisper")
        await wait_for(pilot, lambda: options.option_count == 1)
        assert options.get_option_at_index(0).id == "20260102-090000-bbbbbb"
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        assert screen.agent.session_id not in ("20260101-090000-aaaaaa", "20260102-090000-bbbbbb")  # type: ignore[union-attr]


def _three_writes() -> list[Step]:
    steps: list[Step] = []
    for n in (1, 2, 3):
        steps += [
            (f"Writing v{n}.", [("write", {"path": "notes.txt", "content": f"v{n}\n"})]),
            (f"Wrote v{n}.", []),
        ]
    return steps


@pytest.mark.parametrize(("key", "expected_file"), [("c", "v3\n"), ("f", "v1\n"), ("enter", "v1\n")])
async def test_rewind_picker_removes_turns_with_or_without_files(
    work: Path, key: str, expected_file: str
) -> None:
    app, client = make_app(_three_writes(), workdir=work, settings=make_settings(approval_mode="yolo"))
    async with app.run_test(size=(130, 40)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None and screen.status.info.connected)
        for n in (1, 2, 3):
            await send(pilot, f"write v{n}")
            await wait_for(pilot, lambda n=n: len(client.requests) == 2 * n and not screen.working)
        assert (work / "notes.txt").read_text() == "v3\n"
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, RewindScreen))
        rewind = app.screen
        assert isinstance(rewind, RewindScreen) and [p.text for p in rewind.points] == [
            "write v3",
            "write v2",
            "write v1",
        ]
        await pilot.press("down")
        detail = rewind.query_one("#rewind-detail", Static)
        assert "notes.txt" in str(detail.render())
        await pilot.press(key)
        await wait_for(pilot, lambda: app.screen is screen and len(screen.agent.history) == 5)  # type: ignore[union-attr]
        await pilot.pause(0.1)
        users = [block.text for block in screen.conversation.query(UserMessage)]
    assert (work / "notes.txt").read_text() == expected_file
    assert users == ["write v1"], "the two rewound turns left the screen"


async def test_rewind_with_nothing_to_rewind_just_says_so(work: Path) -> None:
    app, _ = make_app(workdir=work)
    async with app.run_test(size=(130, 40)) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None)
        await send(pilot, "/rewind")
        await pilot.pause(0.1)
        assert app.screen is screen


async def test_rename_export_and_share_traces_are_reported(work: Path) -> None:
    app, client = make_app([("Hello.", [])], workdir=work, settings=make_settings(save_sessions=True))
    messages: list[Any] = []
    async with app.run_test(size=(130, 40), message_hook=messages.append) as pilot:
        screen = main_screen(app)
        await wait_for(pilot, lambda: screen.agent is not None and screen.status.info.connected)
        await send(pilot, "hi")
        await wait_for(pilot, lambda: len(client.requests) == 1 and not screen.working)
        await send(pilot, "/rename My experiment")
        await send(pilot, "/export")
        await wait_for(
            pilot,
            lambda: any(
                getattr(m, "event", None) is not None and isinstance(m.event, ev.TraceExported)
                for m in messages
            ),
        )
        await pilot.pause(0.1)
        notices = " ".join(str(n.render()) for n in screen.conversation.query("Notice"))
    assert "Session renamed: My experiment" in notices
    assert "Exported the session" in notices and str(work) in notices
    assert list(work.glob("ml-intern-*.jsonl"))
