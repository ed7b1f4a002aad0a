"""Keypresses paint first: the timeline batches its table changes, streaming yields briefly after a key."""

from __future__ import annotations

import asyncio
import time

from textual.app import App, ComposeResult
from textual.widgets import Input

from ml_intern.tui.quiet_gc import quiet_gc
from ml_intern.tui.widgets import timeline as timeline_module
from ml_intern.tui.widgets.conversation import AssistantMessage
from ml_intern.tui.widgets.timeline import ToolTimeline


class TimelineApp(App[None]):
    AUTO_FOCUS = "Input"  # like the real app, where the prompt has focus

    def compose(self) -> ComposeResult:
        yield Input()
        yield ToolTimeline(id="timeline")


async def test_timeline_rows_wait_while_the_user_types_then_appear() -> None:
    app = TimelineApp()
    async with app.run_test() as pilot:
        timeline = app.query_one(ToolTimeline)
        quiet_gc.note_keypress()
        timeline.add_call("c1", "bash", {"command": "ls"})
        timeline.set_output("c1", "bash", "a.txt", True, 0.2)
        assert timeline.records["c1"].state == "done"  # the record is current at once
        await pilot.pause(0.15)
        assert timeline.table.row_count == 0  # the table waits: the user just typed
        await pilot.pause(timeline_module.QUIET_S + 0.2)
        assert timeline.table.row_count == 1
        assert "0.2s" in str(timeline.table.get_row("c1"))


async def test_timeline_never_waits_longer_than_the_cap_and_flushes_on_focus() -> None:
    app = TimelineApp()
    async with app.run_test() as pilot:
        timeline = app.query_one(ToolTimeline)
        timeline.add_call("c1", "read", {"path": "x"})
        quiet_gc.note_keypress()
        timeline.table.focus()
        await pilot.pause(0.05)
        assert timeline.table.row_count == 1  # looking at the table brings it up to date
        timeline.add_call("c2", "read", {"path": "y"})
        started = time.monotonic()
        while timeline.table.row_count < 2 and time.monotonic() - started < 5:
            quiet_gc.note_keypress()  # someone typing without pause
            await pilot.pause(0.05)
        assert timeline.table.row_count == 2
        assert time.monotonic() - started <= timeline_module.MAX_DELAY_S + 0.5


class StreamApp(App[None]):
    def compose(self) -> ComposeResult:
        yield AssistantMessage()


async def test_streaming_yields_to_a_keypress_but_not_for_long() -> None:
    app = StreamApp()
    async with app.run_test() as pilot:
        message = app.query_one(AssistantMessage)
        await message.write("first ")
        await pilot.pause(0.2)
        quiet_gc.note_keypress()
        await message.write("second")
        await asyncio.sleep(0.02)
        assert message._pending == ["second"]  # held back so the key paints alone
        await pilot.pause(AssistantMessage.MAX_KEY_DEFER + 0.2)
        assert not message._pending
        assert "".join(message.streamed_text) == "first second"
