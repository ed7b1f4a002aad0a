"""The research sub-agent: own context, progress as tool_log, and every call through the parent's policy."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from tests.harness.scripted_llm import ScriptedLLMServer, call, text, tool_calls
from tests.test_agent_e2e import Run, agent_for


async def test_research_bash_is_denied_headless_in_ask_mode(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    (workdir / "notes.md").write_text("use lr 2e-5\n")
    llm_server.add(
        tool_calls(call("research", {"task": "what learning rate do the notes suggest?"})),
        tool_calls(call("read", {"path": "notes.md"}), call("bash", {"command": "touch pwned.txt"})),
        text("The notes suggest lr 2e-5 (notes.md)."),
        text("Research says 2e-5."),
    )
    async with Run(agent_for(workdir, approval_mode="ask")) as run:
        await run.say("find the lr")
    assert not (workdir / "pwned.txt").exists()
    child_request = llm_server.chat_requests[1]
    assert child_request.messages[0]["content"].startswith("You are a research assistant")
    assert {t["function"]["name"] for t in child_request.tools} >= {"read", "bash"}
    assert not {"write", "edit", "research", "hf_jobs"} & {t["function"]["name"] for t in child_request.tools}
    child_results = [m for m in llm_server.chat_requests[2].messages if m["role"] == "tool"]
    assert "use lr 2e-5" in child_results[0]["content"]
    assert "NOT run" in child_results[1]["content"] or "not run" in child_results[1]["content"].lower()
    parent_result = [m for m in llm_server.chat_requests[3].messages if m["role"] == "tool"][-1]
    assert parent_result["content"] == "The notes suggest lr 2e-5 (notes.md)."
    logs = [e.log for e in run.of(ev.ToolLog) if e.tool == "research"]
    assert logs[0].startswith("Researching:") and any("▸ read" in line for line in logs) and logs[-1] == "Research complete."
    # The sub-agent's context never leaks into the main conversation.
    assert not any("notes.md" in str(m.get("content")) for m in llm_server.chat_requests[3].messages if m["role"] == "tool"
                   and m.get("name") == "read")


async def test_research_approvals_reach_the_front_end(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(
        tool_calls(call("research", {"task": "count files"})),
        tool_calls(call("bash", {"command": "ls | wc -l"})),
        text("There are N files."),
        text("done"),
    )
    agent = agent_for(workdir, approver=None, approval_mode="ask")
    async with Run(agent) as run:
        agent.submit(ops.UserInput(text="research"))
        request = await run.wait_for(ev.ApprovalRequired)
        item = request.tools[0]
        assert item.tool == "bash" and item.reason.startswith("research sub-agent")
        agent.submit(ops.ExecApproval(approvals=[ops.ApprovalAnswer(tool_call_id=item.tool_call_id, approved=False, feedback="no shell")]))
        await asyncio.wait_for(agent.wait_idle(), 20)
    child_result = [m for m in llm_server.chat_requests[2].messages if m["role"] == "tool"][0]["content"]
    assert "User feedback: no shell" in child_result
    assert run.of(ev.TurnComplete)[-1].final_response == "done"
