"""Undo and rewind through the real agent: what the conversation and the files look like afterwards."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from ml_intern.core.agent import Agent
from tests.harness.scripted_llm import ScriptedLLMServer, call, text, tool_calls
from tests.test_agent_e2e import Run, agent_for


async def _op(run: Run, operation: ops.Operation) -> None:
    run.agent.submit(operation)
    await asyncio.wait_for(run.agent.wait_idle(), 10)


def _contents(agent: Agent) -> list[str]:
    return [str(m.get("content")) for m in agent.history.messages[1:]]


async def test_undo_stops_at_the_real_user_message_past_injected_guidance(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    config = workdir / "config.yaml"
    config.write_text("lr: 0.001\n")
    llm_server.add(
        tool_calls(call("read", {"path": "config.yaml"})),
        text("ready"),
        tool_calls(call("edit", {"path": "config.yaml", "old_str": "0.001", "new_str": "0.01"})),
        *[tool_calls(call("read", {"path": "config.yaml"})) for _ in range(3)],
        tool_calls(call("bash", {"command": "echo trained > run.log"})),
        text("raised the lr"),
    )
    async with Run(agent_for(workdir)) as run:
        await run.say("look at the config")
        await run.say("raise the lr")
        assert run.of(ev.DoomLoopDetected), "guidance was injected after the real user message"
        assert config.read_text() == "lr: 0.01\n"
        await _op(run, ops.Undo())
        remaining = _contents(run.agent)
    undo = run.of(ev.UndoComplete)[-1]
    assert remaining[0] == "look at the config" and remaining[-1] == "ready" and len(remaining) == 4
    assert config.read_text() == "lr: 0.001\n"
    assert undo.user_text == "raise the lr" and undo.turns == 1
    assert undo.restored_files == [str(config.resolve())]
    # The shell command's effect is reported, not silently ignored.
    assert undo.not_undone and any("echo trained" in item for item in undo.not_undone)
    assert (workdir / "run.log").exists()
    usage = run.events[run.events.index(undo) + 1]
    assert isinstance(usage, ev.Usage) and usage.context_tokens == run.agent.history.tokens(
        run.agent.tool_schemas()
    )


async def test_undo_with_nothing_to_undo_says_so(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    async with Run(agent_for(workdir)) as run:
        await _op(run, ops.Undo())
    undo = run.of(ev.UndoComplete)[-1]
    assert undo.removed_messages == 0 and undo.turns == 0 and "Nothing to undo" in undo.message


async def _three_edits(run: Run, llm_server: ScriptedLLMServer, target: Path) -> None:
    for n in (1, 2, 3):
        llm_server.add(
            tool_calls(call("write", {"path": target.name, "content": f"v{n}\n"})), text(f"wrote v{n}")
        )
        await run.say(f"write v{n}")
        assert target.read_text() == f"v{n}\n"


async def test_rewind_several_turns_with_files(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    target = workdir / "notes.txt"
    async with Run(agent_for(workdir)) as run:
        await _three_edits(run, llm_server, target)
        points = run.agent.rewind_points()
        assert [p.text for p in points] == ["write v3", "write v2", "write v1"]
        assert [p.turns_back for p in points] == [1, 2, 3]
        assert points[1].files_changed == [str(target.resolve())]
        await _op(run, ops.Undo(turns=2, restore_files=True))
        remaining = _contents(run.agent)
    undo = run.of(ev.UndoComplete)[-1]
    assert remaining[0] == "write v1" and remaining[-1] == "wrote v1" and len(remaining) == 4
    assert target.read_text() == "v1\n"
    assert undo.turns == 2 and undo.user_text == "write v2"


async def test_rewind_conversation_only_leaves_files_alone(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    target = workdir / "notes.txt"
    async with Run(agent_for(workdir)) as run:
        await _three_edits(run, llm_server, target)
        await _op(run, ops.Undo(turns=3, restore_files=False))
        remaining = _contents(run.agent)
        # A later undo must not resurrect snapshots from the rewound turns.
        llm_server.add(text("hello again"))
        await run.say("hi")
        await _op(run, ops.Undo())
    assert remaining == []
    assert target.read_text() == "v3\n"
    first, second = run.of(ev.UndoComplete)
    assert first.turns == 3 and first.restored_files == [] and "left as they are" in first.message
    assert second.restored_files == [] and target.read_text() == "v3\n"


async def test_undo_puts_the_plan_back(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    plan_v1 = [{"id": "1", "content": "load data", "status": "in_progress"}]
    plan_v2 = [
        {"id": "1", "content": "load data", "status": "completed"},
        {"id": "2", "content": "train", "status": "pending"},
    ]
    llm_server.add(
        tool_calls(call("plan_tool", {"todos": plan_v1})),
        text("planned"),
        tool_calls(call("plan_tool", {"todos": plan_v2})),
        text("updated"),
    )
    async with Run(agent_for(workdir)) as run:
        await run.say("plan it")
        await run.say("progress")
        assert [i["status"] for i in run.agent.state.plan] == ["completed", "pending"]
        await _op(run, ops.Undo())
        plan = run.agent.state.plan
    assert [i["content"] for i in plan] == ["load data"] and plan[0]["status"] == "in_progress"
    assert [i.status for i in run.of(ev.PlanUpdate)[-1].plan] == ["in_progress"]


async def test_undo_after_resume_still_restores_files(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    target = workdir / "train.py"
    target.write_text("epochs = 1\n")
    llm_server.add(
        tool_calls(call("read", {"path": "train.py"})),
        tool_calls(call("edit", {"path": "train.py", "old_str": "1", "new_str": "5"})),
        text("done"),
    )
    async with Run(agent_for(workdir)) as run:
        await run.say("train longer")
        session_id = run.agent.session_id
    assert target.read_text() == "epochs = 5\n"
    async with Run(agent_for(workdir)) as run:
        await _op(run, ops.Resume(session_id=session_id))
        await _op(run, ops.Undo())
    assert target.read_text() == "epochs = 1\n"
    assert run.of(ev.UndoComplete)[-1].user_text == "train longer"
