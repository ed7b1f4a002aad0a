"""The transcript stays cheap to lay out in long sessions: windowed blocks, frame-sized streaming, paced GC."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from textual.app import App, ComposeResult

from ml_intern.tui.quiet_gc import GEN2_THRESHOLD_DISABLED, QuietCollector, quiet_gc
from ml_intern.tui.widgets.conversation import AssistantMessage, Conversation, Notice

pytestmark = pytest.mark.timeout(60)


class TranscriptApp(App[None]):
    def compose(self) -> ComposeResult:
        yield Conversation(id="conversation", max_blocks=200, window=10)

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)


def displayed(conversation: Conversation) -> list[Any]:
    return [block for block in conversation.children if block.display]


async def test_only_the_newest_blocks_are_laid_out_and_scrolling_up_shows_older_ones() -> None:
    app = TranscriptApp()
    async with app.run_test(size=(80, 20)) as pilot:
        conversation = app.conversation
        for index in range(60):
            await conversation.add_block(Notice(f"line {index}"))
            await pilot.pause()
        await pilot.pause(0.05)
        shown = displayed(conversation)
        assert conversation.hidden_pieces > 0 and len(shown) < 60
        assert shown[-1] is conversation.children[-1] and conversation.is_vertical_scroll_end
        newest_on_top = shown[0]

        conversation.scroll_home(animate=False, immediate=True)
        await pilot.pause(0.1)
        assert len(displayed(conversation)) > len(shown), "older blocks shown again"
        assert conversation.scroll_y > 0, "the view stays on the block that was at the top"
        assert conversation.scrollable_content_region.contains_region(newest_on_top.region)


async def test_scrolling_to_a_hidden_block_shows_it() -> None:
    app = TranscriptApp()
    async with app.run_test(size=(80, 20)) as pilot:
        conversation = app.conversation
        for index in range(60):
            await conversation.add_block(Notice(f"line {index}"))
        await pilot.pause(0.05)
        oldest = conversation.children[0]
        assert not oldest.display
        conversation.scroll_to_widget(oldest, animate=False, top=True)
        await pilot.pause(0.1)
        assert oldest.display and all(block.display for block in conversation.children)
        assert conversation.scrollable_content_region.contains_region(oldest.region)


async def test_a_long_streamed_reply_keeps_its_text_and_only_its_last_paragraphs_laid_out() -> None:
    app = TranscriptApp()
    paragraphs = [f"Paragraph {index} with `code` and [brackets]." for index in range(80)]
    text = "\n\n".join(paragraphs)
    async with app.run_test(size=(80, 20)) as pilot:
        conversation = app.conversation
        reply = AssistantMessage()
        await conversation.add_block(reply)
        for start in range(0, len(text), 7):
            await reply.write(text[start : start + 7])
            if start % 70 == 0:
                await pilot.pause()
        await reply.finish()
        await pilot.pause(0.05)
        assert reply.source == text and "".join(reply.streamed_text) == text
        assert len(reply.children) == 80
        assert 0 < sum(1 for child in reply.children if not child.display) < 80
        assert reply.children[-1].display


async def test_writes_between_flushes_are_appended_together() -> None:
    app = TranscriptApp()
    async with app.run_test(size=(80, 20)) as pilot:
        reply = AssistantMessage()
        await app.conversation.add_block(reply)
        appended: list[str] = []
        original = reply.append

        def recording_append(markdown: str) -> Any:
            appended.append(markdown)
            return original(markdown)

        reply.append = recording_append  # type: ignore[method-assign]
        for word in ("one ", "two ", "three ", "four "):
            await reply.write(word)
        await reply.finish()
        await pilot.pause()
        assert appended == ["one ", "two three four "], "the first fragment at once, the rest in one append"
        assert reply.source == "one two three four "


def test_quiet_collector_takes_over_and_gives_back_full_collections() -> None:
    collector = QuietCollector()
    saved = gc.get_threshold()

    class Owner:
        def set_interval(self, *args: Any, **kwargs: Any) -> Any:
            class FakeTimer:
                def stop(self) -> None:
                    pass

            return FakeTimer()

    collector.start(Owner())  # type: ignore[arg-type]
    try:
        assert gc.get_threshold()[2] == GEN2_THRESHOLD_DISABLED and collector.active
        collector.note_activity()
        pending_before = gc.get_count()[2]
        collector.check()
        assert collector.collections == 0 or pending_before >= collector.HARD_LIMIT, "not while the user is active"
        collector.last_activity -= collector.QUIET_S
        for _ in range(collector.SOFT_LIMIT + 1):
            gc.collect(1)
        collector.check()
        assert collector.collections == 1 and gc.get_count()[2] == 0
    finally:
        collector.stop()
    assert gc.get_threshold() == saved and not collector.active


async def test_the_transcript_paces_full_collections_only_while_mounted() -> None:
    saved = gc.get_threshold()
    app = TranscriptApp()
    async with app.run_test(size=(80, 20)):
        assert quiet_gc.active and gc.get_threshold()[2] == GEN2_THRESHOLD_DISABLED
    assert not quiet_gc.active and gc.get_threshold() == saved
