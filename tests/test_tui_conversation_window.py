"""The transcript stays cheap to lay out in long sessions: windowed blocks, frame-sized streaming, paced GC."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from textual.app import App, ComposeResult

from ml_intern.tui.quiet_gc import QuietCollector, quiet_gc
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


async def test_removing_the_newest_blocks_shows_older_ones_again() -> None:
    app = TranscriptApp()
    async with app.run_test(size=(80, 20)) as pilot:
        conversation = app.conversation
        for index in range(60):
            await conversation.add_block(Notice(f"line {index}"))
        await pilot.pause(0.05)
        shown_before = len(displayed(conversation))
        await conversation.remove_children(list(conversation.children)[-shown_before:])
        await pilot.pause(0.1)
        shown = displayed(conversation)
        assert len(shown) >= conversation.window and shown[-1] is conversation.children[-1]
        assert conversation.max_scroll_y > 0, "enough is shown to scroll up to the rest"


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


def test_quiet_collector_collects_only_when_quiet_and_something_piled_up() -> None:
    collector = QuietCollector()
    collector.note_activity()
    for _ in range(collector.MIN_PENDING):
        gc.collect(1)
    collector.check()
    assert collector.collections == 0, "not right after a keypress or streamed text"
    collector.last_activity -= collector.QUIET_S
    collector.check()
    assert collector.collections == 1 and gc.get_count()[2] == 0
    collector.check()
    assert collector.collections == 1, "nothing piled up since"


async def test_the_transcript_watches_for_quiet_moments_only_while_mounted() -> None:
    thresholds = gc.get_threshold()
    app = TranscriptApp()
    async with app.run_test(size=(80, 20)):
        assert quiet_gc.active
    assert not quiet_gc.active and gc.get_threshold() == thresholds
