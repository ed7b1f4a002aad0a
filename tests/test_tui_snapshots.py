"""Snapshot tests (pytest-textual-snapshot): exact, timing-free events from a fake agent; one class per feature."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from ml_intern.core import events as ev
from ml_intern.tui.app import MLInternApp
from ml_intern.tui.screens.approval import ApprovalScreen
from ml_intern.tui.widgets.prompt import PromptInput
from tests.test_tui_app import FakeAgent, make_settings

pytestmark = pytest.mark.timeout(60)

PLAN = [
    ev.PlanItem(id="1", content="Write the training script", status="completed"),
    ev.PlanItem(id="2", content="Run a smoke test", status="in_progress"),
    ev.PlanItem(id="3", content="Launch on HF Jobs", status="pending"),
]

DIFF = """--- a/train.py
+++ b/train.py
@@ -1,4 +1,5 @@
 from trl import SFTConfig
-config = SFTConfig(output_dir="out")
+config = SFTConfig(output_dir="out", push_to_hub=True,
+                   hub_model_id="me/tiny-sft")
 trainer.train()
"""


def conversation_events() -> list[ev.Event]:
    return [
        ev.Ready(model="anthropic/claude-opus-4.8", tool_count=19, session_id="snap"),
        ev.Processing(),
        ev.AssistantChunk(content="I'll check the dataset, then run a **smoke test**. "),
        ev.AssistantChunk(content="Arguments like `[b]` stay literal."),
        ev.AssistantStreamEnd(),
        ev.ToolCall(tool="hf_inspect_dataset", arguments={"dataset": "trl-lib/Capybara"}, tool_call_id="c1"),
        ev.ToolStateChange(tool_call_id="c1", tool="hf_inspect_dataset", state="running"),
        ev.ToolOutput(tool="hf_inspect_dataset", tool_call_id="c1", output="splits: train (15,806 rows)",
                      duration_s=0.8),
        ev.ToolStateChange(tool_call_id="c1", tool="hf_inspect_dataset", state="done"),
        ev.ToolCall(tool="bash", arguments={"command": "python train.py --max-steps 10"}, tool_call_id="c2"),
        ev.ToolStateChange(tool_call_id="c2", tool="bash", state="running"),
        ev.ToolOutput(tool="bash", tool_call_id="c2", output="step 10 loss 1.92", duration_s=12.4),
        ev.PlanUpdate(plan=PLAN),
        ev.Usage(model="anthropic/claude-opus-4.8", context_tokens=41_200, context_window=200_000,
                 session_tokens=58_300, session_cost_usd=0.42),
        ev.AssistantChunk(content="The smoke test passed: loss **1.92** after 10 steps."),
        ev.AssistantStreamEnd(),
        ev.TurnComplete(history_size=8, final_response="The smoke test passed."),
    ]


def snapshot_app(events: list[ev.Event]) -> MLInternApp:
    agent = FakeAgent(events)
    return MLInternApp(
        make_settings(model_name="anthropic/claude-opus-4.8"),
        agent_factory=lambda: agent,
        history_file=None,
        save_settings=False,
    )


async def settle(pilot: Pilot[Any], user_text: str = "Fine-tune a tiny model on Capybara") -> None:
    """Wait for every queued event to render; freeze the cursor."""
    app = pilot.app
    screen = app.main_screen  # type: ignore[attr-defined]
    for _ in range(100):
        await pilot.pause(0.02)
        if screen.agent is not None and screen.agent.queue.empty():
            break
    for prompt in app.main_screen.query(PromptInput):  # type: ignore[attr-defined]
        prompt.cursor_blink = False
    await pilot.pause(0.3)


class TestMainScreenSnapshot:
    def test_main_screen_after_a_turn(self, snap_compare: Any) -> None:
        assert snap_compare(snapshot_app(conversation_events()), terminal_size=(120, 34), run_before=settle)

    def test_expanded_tool_call(self, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await settle(pilot)
            from ml_intern.tui.widgets.conversation import ToolCallBlock

            block = pilot.app.main_screen.query(ToolCallBlock).last()  # type: ignore[attr-defined]
            block.focus()
            await pilot.press("enter")
            await pilot.pause(0.2)

        assert snap_compare(snapshot_app(conversation_events()), terminal_size=(120, 34), run_before=run_before)


class TestApprovalModalSnapshot:
    @staticmethod
    def _app(item: ev.ApprovalItem) -> MLInternApp:
        events: list[ev.Event] = [
            ev.Ready(model="anthropic/claude-opus-4.8", session_id="snap"),
            ev.Processing(),
            ev.ToolStateChange(tool_call_id=item.tool_call_id, tool=item.tool, state="awaiting_approval"),
            ev.ApprovalRequired(tools=[item], count=1),
        ]
        return snapshot_app(events)

    @staticmethod
    async def _wait_modal(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for _ in range(100):
            if isinstance(pilot.app.screen, ApprovalScreen):
                break
            await pilot.pause(0.02)
        await pilot.pause(0.2)

    def test_bash_approval(self, snap_compare: Any) -> None:
        item = ev.ApprovalItem(
            tool="bash", arguments={"command": "pip install -U trl && python train.py", "timeout": 600},
            tool_call_id="b1", reason="runs a command on this machine", preview="$ pip install -U trl",
            subject="pip install -U trl && python train.py",
        )
        assert snap_compare(self._app(item), terminal_size=(100, 30), run_before=self._wait_modal)

    def test_edit_diff_approval(self, snap_compare: Any) -> None:
        item = ev.ApprovalItem(
            tool="edit", arguments={"path": "train.py", "old_str": "x", "new_str": "y"}, tool_call_id="e1",
            reason="changes files on this machine", preview=DIFF, subject="train.py",
            warnings=["push_to_hub was missing: the trained model would have been lost"],
        )
        assert snap_compare(self._app(item), terminal_size=(100, 30), run_before=self._wait_modal)

    def test_job_cost_approval(self, snap_compare: Any) -> None:
        item = ev.ApprovalItem(
            tool="hf_jobs", arguments={"operation": "run", "hardware_flavor": "a100-large", "timeout": "2h"},
            tool_call_id="j1", reason="spends money on Hugging Face Jobs",
            preview="Hardware: a100-large ($4.00/h)\nTimeout: 2h\nImage: pytorch/pytorch", estimated_cost_usd=8.0,
            warnings=["timeout shorter than the estimated run time"], subject="a100-large",
        )
        assert snap_compare(self._app(item), terminal_size=(100, 30), run_before=self._wait_modal)


class TestNarrowTerminalSnapshot:
    def test_80x24(self, snap_compare: Any) -> None:
        assert snap_compare(snapshot_app(conversation_events()), terminal_size=(80, 24), run_before=settle)

    def test_80x24_with_side_panes(self, snap_compare: Any) -> None:
        async def run_before(pilot: Pilot[Any]) -> None:
            await settle(pilot)
            await pilot.press("ctrl+b")
            await pilot.pause(0.2)

        assert snap_compare(snapshot_app(conversation_events()), terminal_size=(80, 24), run_before=run_before)
