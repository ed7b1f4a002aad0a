"""The real Agent over real HTTP through litellm against the scripted model: what a user would see."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from ml_intern.core.agent import Agent
from ml_intern.core.approval import PolicyApprover
from ml_intern.core.tools import Risk, ToolRouter, ToolSpec
from ml_intern.tools import build_router
from tests.conftest import make_settings
from tests.harness.scripted_llm import ScriptedLLMServer, call, cut_stream, hang, http_error, text, tool_calls


class Run:
    """An agent plus every event it emitted."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.events: list[ev.Event] = []
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Run:
        await self.agent.start()

        async def pump() -> None:
            async for event in self.agent.events():
                self.events.append(event)

        self._pump = asyncio.create_task(pump())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.agent.shutdown()
        if self._pump is not None:
            await asyncio.wait_for(self._pump, 10)

    async def say(self, text_: str, timeout: float = 30) -> None:
        self.agent.submit(ops.UserInput(text=text_))
        await asyncio.wait_for(self.agent.wait_idle(), timeout)

    def of(self, kind: type[ev.Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def wait_for(self, kind: type[ev.Event], timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of(kind)
            if found:
                return found[-1]
            await asyncio.sleep(0.01)
        raise AssertionError(f"no {kind.__name__} event within {timeout}s; got {[e.type for e in self.events]}")

    async def wait_for_new(self, kind: type[ev.Event], after: ev.Event, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.of(kind) if e.seq > after.seq]
            if found:
                return found[-1]
            await asyncio.sleep(0.01)
        raise AssertionError(f"no new {kind.__name__} event within {timeout}s")


def agent_for(workdir: Path, approver: Any = "policy", **settings: Any) -> Agent:
    config = make_settings(**settings)
    if approver == "policy":
        approver = PolicyApprover(approve=False)
    return Agent(config, tools=build_router(config), workdir=workdir, headless=approver is not None, approver=approver)


async def test_streamed_answer_reaches_the_user_with_system_prompt_and_tools(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(text("Hello! I can help with training.", chunk_size=5))
    async with Run(agent_for(workdir)) as run:
        await run.say("hi")
    chunks = "".join(e.content for e in run.of(ev.AssistantChunk))
    assert chunks == "Hello! I can help with training."
    done = run.of(ev.TurnComplete)[-1]
    assert done.final_response == chunks and run.agent.last_turn_outcome == "done"
    sent = llm_server.chat_requests[0]
    assert sent.messages[0]["role"] == "system" and "ml-intern" in sent.messages[0]["content"]
    assert sent.messages[-1] == {"role": "user", "content": "hi"}
    assert {t["function"]["name"] for t in sent.tools} >= {"bash", "read", "write", "edit", "plan_tool"}
    assert sent.body["stream"] is True
    usage = run.of(ev.Usage)[-1]
    assert usage.context_tokens > 0 and usage.context_window == 64_000


async def test_non_streaming_emits_one_assistant_message(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(text("whole answer"))
    async with Run(agent_for(workdir, stream=False)) as run:
        await run.say("hi")
    assert [e.content for e in run.of(ev.AssistantMessage)] == ["whole answer"]
    assert not run.of(ev.AssistantChunk)
    assert llm_server.chat_requests[0].body.get("stream") in (False, None)


async def test_parallel_tool_calls_write_run_and_read_files(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(
        tool_calls(
            call("write", {"path": "train.py", "content": "print('loss=0.5')\n"}),
            call("write", {"path": "notes.md", "content": "# notes\n"}),
        ),
        tool_calls(call("bash", {"command": "python train.py"})),
        tool_calls(call("read", {"path": "notes.md"})),
        text("Trained: loss=0.5"),
    )
    async with Run(agent_for(workdir)) as run:
        await run.say("train something")
    assert (workdir / "train.py").read_text() == "print('loss=0.5')\n"
    outputs = {e.tool_call_id: e for e in run.of(ev.ToolOutput)}
    assert all(o.success for o in outputs.values())
    # The next request carries one result per call, in call order, right after the assistant message.
    second = llm_server.chat_requests[1].messages
    assistant = second[-3]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["write", "write"]
    assert [m["tool_call_id"] for m in second[-2:]] == [c["id"] for c in assistant["tool_calls"]]
    third = llm_server.chat_requests[2].messages
    assert "loss=0.5" in third[-1]["content"]
    assert "# notes" in llm_server.chat_requests[3].messages[-1]["content"]
    assert run.of(ev.TurnComplete)[-1].final_response == "Trained: loss=0.5"


async def test_bad_tool_calls_become_errors_the_model_reads_and_the_turn_goes_on(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    llm_server.add(
        tool_calls(
            call("write", '{"path": "a.txt", "content": "unterminated'),
            call("read", "[1, 2]"),
            call("no_such_tool", {}),
            call("bash", {"command": "echo still-runs"}),
        ),
        text("recovered"),
    )
    async with Run(agent_for(workdir)) as run:
        await run.say("go")
    results = [m for m in llm_server.chat_requests[1].messages if m["role"] == "tool"]
    assert "not valid JSON" in results[0]["content"] and "NOT executed" in results[0]["content"]
    assert "must be a JSON object" in results[1]["content"]
    assert "unknown tool 'no_such_tool'" in results[2]["content"]
    assert results[3]["content"].strip() == "still-runs"
    assert not (workdir / "a.txt").exists()
    # Malformed arguments are replaced by "{}" in history so the next request stays valid JSON.
    assistant = [m for m in llm_server.chat_requests[1].messages if m.get("tool_calls")][-1]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {}
    assert run.agent.last_turn_outcome == "done"


async def test_a_tool_that_raises_returns_an_error_result(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    async def explode(arguments: dict[str, Any], ctx: Any) -> str:
        raise RuntimeError("disk on fire")

    router = ToolRouter([ToolSpec("explode", "Always fails.", {"type": "object", "properties": {}}, explode)])
    agent = Agent(make_settings(), tools=router, workdir=workdir, approver=PolicyApprover(), headless=True)
    llm_server.add(tool_calls(call("explode", {})), text("ok, it failed"))
    async with Run(agent) as run:
        await run.say("go")
    output = run.of(ev.ToolOutput)[0]
    assert not output.success and "disk on fire" in output.output
    assert run.of(ev.TurnComplete)[-1].final_response == "ok, it failed"


async def test_rate_limit_honours_retry_after(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(http_error(429, headers={"Retry-After": "1"}), text("after the wait"))
    started = time.monotonic()
    async with Run(agent_for(workdir)) as run:
        await run.say("hi")
    elapsed = time.monotonic() - started
    retry = run.of(ev.Retrying)
    assert len(retry) == 1 and retry[0].delay_s == 1.0 and "rate limit" in retry[0].reason
    assert elapsed >= 1.0
    assert run.of(ev.TurnComplete)[-1].final_response == "after the wait"


async def test_server_errors_and_cut_streams_are_retried(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(http_error(503), cut_stream(after_chunks=2), text("third time lucky"))
    async with Run(agent_for(workdir)) as run:
        await run.say("hi")
    reasons = [r.reason for r in run.of(ev.Retrying)]
    assert len(reasons) == 2 and "partial reply discarded" in reasons[1]
    assert run.of(ev.TurnComplete)[-1].final_response == "third time lucky"


async def test_retries_run_out_with_a_clear_error(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(*[http_error(500)] * 4)
    async with Run(agent_for(workdir, llm_max_retries=3)) as run:
        await run.say("hi")
    error = run.of(ev.Error)[-1]
    assert error.kind == "transient" and "vllm/scripted" in error.error
    assert run.agent.last_turn_outcome == "error"
    assert len(llm_server.chat_requests) == 3


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [(401, "auth", "API key"), (402, "credits", "credits"), (404, "model_not_found", "Model not found")],
)
async def test_permanent_errors_are_friendly_and_not_retried(
    llm_server: ScriptedLLMServer, workdir: Path, status: int, kind: str, words: str
) -> None:
    llm_server.add(http_error(status))
    async with Run(agent_for(workdir)) as run:
        await run.say("hi")
    error = run.of(ev.Error)[-1]
    assert error.kind == kind and words in error.error
    assert len(llm_server.chat_requests) == 1


async def test_interrupt_during_a_slow_model_returns_within_half_a_second(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    llm_server.add(hang(20))
    async with Run(agent_for(workdir)) as run:
        run.agent.submit(ops.UserInput(text="hi"))
        for _ in range(500):
            if llm_server.chat_requests:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        started = time.monotonic()
        run.agent.submit(ops.Interrupt())
        await run.wait_for(ev.Interrupted, timeout=2)
        assert time.monotonic() - started < 0.5
        await asyncio.wait_for(run.agent.wait_idle(), 2)
    assert run.agent.last_turn_outcome == "interrupted"


async def test_interrupt_kills_a_running_command_within_half_a_second(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    marker = workdir / "pid.txt"
    llm_server.add(tool_calls(call("bash", {"command": f"echo $$ > {marker}; sleep 30"})), text("next turn works"))
    async with Run(agent_for(workdir)) as run:
        run.agent.submit(ops.UserInput(text="sleep"))
        for _ in range(200):
            if marker.exists() and marker.read_text().strip():
                break
            await asyncio.sleep(0.02)
        pid = int(marker.read_text())
        started = time.monotonic()
        run.agent.submit(ops.Interrupt())
        await run.wait_for(ev.Interrupted, timeout=2)
        assert time.monotonic() - started < 0.5
        await asyncio.sleep(0.1)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        cancelled = [e for e in run.of(ev.ToolStateChange) if e.state == "cancelled"]
        assert cancelled and cancelled[0].tool == "bash"
        # The conversation stays valid: the interrupted call got a result, and a new turn works.
        await run.say("again")
    last = llm_server.chat_requests[-1].messages
    interrupted = [m for m in last if m["role"] == "tool"]
    assert "Interrupted by the user" in interrupted[0]["content"]
    assert run.of(ev.TurnComplete)[-1].final_response == "next turn works"


async def test_iteration_cap_stops_the_turn_and_says_so(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    counter = iter(range(1000))
    server_calls: list[int] = []

    def responder(body: dict[str, Any]) -> Any:
        n = next(counter)
        server_calls.append(n)
        return tool_calls(call("bash", {"command": f"echo {n}"}))

    llm_server.responder = responder
    async with Run(agent_for(workdir, max_iterations=3)) as run:
        await run.say("loop forever")
    cap = run.of(ev.IterationLimitReached)
    assert len(cap) == 1 and cap[0].max_iterations == 3 and "3 model calls" in cap[0].message
    assert len(server_calls) == 3
    assert run.agent.last_turn_outcome == "iteration_limit"


async def test_interactive_approvals_approve_deny_feedback_and_always(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(
        tool_calls(call("bash", {"command": "echo approved-run"}), call("write", {"path": "x.txt", "content": "x"})),
        tool_calls(call("bash", {"command": "echo second"})),
        tool_calls(call("bash", {"command": "echo third"})),
        text("done"),
    )
    agent = agent_for(workdir, approver=None, approval_mode="ask")
    async with Run(agent) as run:
        agent.submit(ops.UserInput(text="go"))
        first = await run.wait_for(ev.ApprovalRequired)
        assert [i.tool for i in first.tools] == ["bash", "write"]
        assert first.tools[0].preview == "$ echo approved-run"
        assert "+x" in first.tools[1].preview  # unified diff of the new file
        bash_id, write_id = (i.tool_call_id for i in first.tools)
        agent.submit(
            ops.ExecApproval(
                approvals=[
                    ops.ApprovalAnswer(tool_call_id=bash_id, approved=True),
                    ops.ApprovalAnswer(tool_call_id=write_id, approved=False, feedback="Use Notes.TXT instead"),
                ]
            )
        )
        while len(run.of(ev.ApprovalRequired)) < 2:
            await asyncio.sleep(0.01)
        second = run.of(ev.ApprovalRequired)[-1].tools[0]
        agent.submit(
            ops.ExecApproval(approvals=[ops.ApprovalAnswer(
                        tool_call_id=second.tool_call_id, approved=True, remember="session", rule_pattern="echo *"
                    )])
        )
        await asyncio.wait_for(agent.wait_idle(), 20)
    assert len(run.of(ev.ApprovalRequired)) == 2  # the third bash ran under the "always" rule
    tool_messages = [m for m in llm_server.chat_requests[1].messages if m["role"] == "tool"]
    assert tool_messages[0]["content"].strip() == "approved-run"
    assert "denied" in tool_messages[1]["content"] and "User feedback: Use Notes.TXT instead" in tool_messages[1]["content"]
    assert not (workdir / "x.txt").exists()
    assert any(r.pattern == "echo *" and r.tool == "bash" for r in agent.policy.session_rules)
    third_result = [m for m in llm_server.chat_requests[3].messages if m["role"] == "tool"][-1]
    assert third_result["content"].strip() == "third"


async def test_headless_ask_mode_denies_without_waiting(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(tool_calls(call("write", {"path": "a.txt", "content": "a"})), text("could not write"))
    started = time.monotonic()
    async with Run(agent_for(workdir, approval_mode="ask")) as run:
        await run.say("write a file")
    assert time.monotonic() - started < 10
    result = [m for m in llm_server.chat_requests[1].messages if m["role"] == "tool"][0]["content"]
    assert "headless" in result and "--approval-mode" in result
    assert not (workdir / "a.txt").exists()


async def test_interrupt_while_waiting_for_approval_denies_and_ends_the_turn(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    llm_server.add(tool_calls(call("bash", {"command": "echo never"})))
    agent = agent_for(workdir, approver=None, approval_mode="ask")
    async with Run(agent) as run:
        agent.submit(ops.UserInput(text="go"))
        await run.wait_for(ev.ApprovalRequired)
        agent.submit(ops.Interrupt())
        await run.wait_for(ev.Interrupted, timeout=2)
        await asyncio.wait_for(agent.wait_idle(), 2)
    assert not agent.pending_approvals
    assert not [e for e in run.of(ev.ToolOutput) if e.success]


async def test_doom_loop_is_reported_once_and_polling_is_left_alone(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    steps = [tool_calls(call("bash", {"command": "echo same"})) for _ in range(6)]
    steps += [tool_calls(call("bash", {"command": f"date +%N; echo {i}"})) for i in range(4)]
    llm_server.add(*steps, text("giving up"))
    async with Run(agent_for(workdir)) as run:
        await run.say("go")
    found = run.of(ev.DoomLoopDetected)
    assert len(found) == 1 and found[0].kind == "identical" and found[0].tools == ["bash"]
    guidance = [
        m for m in llm_server.chat_requests[-1].messages if m["role"] == "user" and "repetition guard" in m["content"]
    ]
    assert len(guidance) == 1


async def test_sessions_are_saved_as_they_go_with_secrets_redacted(
    llm_server: ScriptedLLMServer, workdir: Path, isolated_home: Path
) -> None:
    secret = "hf_" + "Secr3tTokenValue" * 3
    llm_server.add(tool_calls(call("bash", {"command": f"echo {secret}"})), text(f"your token is {secret}"))
    async with Run(agent_for(workdir)) as run:
        await run.say(f"my token is {secret}, remember it")
    saved = list((isolated_home / "data" / "ml-intern" / "sessions").glob("*.jsonl"))
    assert len(saved) == 1
    content = saved[0].read_text()
    assert secret not in content and "[REDACTED_HF_TOKEN]" in content
    lines = [json.loads(line) for line in content.splitlines()]
    kinds = {line["kind"] for line in lines}
    assert {"meta", "message", "event"} <= kinds
    assert (saved[0].stat().st_mode & 0o777) == 0o600
    assert not any(line.get("event", {}).get("type") == "assistant_chunk" for line in lines)


async def test_undo_removes_the_turn_and_restores_files(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    target = workdir / "model.py"
    target.write_text("lr = 1e-3\n")
    llm_server.add(
        tool_calls(call("read", {"path": "model.py"})),
        tool_calls(call("edit", {"path": "model.py", "old_str": "1e-3", "new_str": "5e-4"})),
        tool_calls(call("write", {"path": "new.py", "content": "x = 1\n"})),
        text("changed"),
    )
    async with Run(agent_for(workdir)) as run:
        await run.say("lower the lr")
        assert target.read_text() == "lr = 5e-4\n" and (workdir / "new.py").exists()
        run.agent.submit(ops.Undo())
        await asyncio.wait_for(run.agent.wait_idle(), 5)
    undo = run.of(ev.UndoComplete)[-1]
    assert target.read_text() == "lr = 1e-3\n"
    assert not (workdir / "new.py").exists()
    assert undo.user_text == "lower the lr" and len(undo.restored_files) == 2
    assert len(run.agent.history) == 1  # only the system prompt is left


def test_tool_risks_match_the_policy() -> None:
    router = build_router(make_settings())
    assert router.get("read").risk_for({"path": "x"}) == Risk.READ  # type: ignore[union-attr]
    assert router.get("write").risk_for({"path": "x", "content": ""}) == Risk.EDIT  # type: ignore[union-attr]
    assert router.get("bash").risk_for({"command": "ls"}) == Risk.EXEC  # type: ignore[union-attr]


async def test_a_stream_that_goes_silent_is_retried(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    llm_server.add(text("slow and then silent " * 4, chunk_size=4, chunk_delay_s=3), text("fresh answer"))
    started = time.monotonic()
    async with Run(agent_for(workdir, llm_stall_timeout_s=0.5)) as run:
        await run.say("hi")
    assert time.monotonic() - started < 10
    retry = run.of(ev.Retrying)
    assert len(retry) == 1 and "stalled" in retry[0].reason and "partial reply discarded" in retry[0].reason
    assert run.of(ev.TurnComplete)[-1].final_response == "fresh answer"


async def test_a_full_disk_stops_saving_with_one_warning_and_the_turn_goes_on(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    import errno

    class FullDisk:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def flush(self) -> None: ...

        def close(self) -> None: ...

    llm_server.add(tool_calls(call("bash", {"command": "echo still-working"})), text("finished anyway"))
    agent = agent_for(workdir)
    async with Run(agent) as run:
        agent.store._fh = FullDisk()
        await run.say("go")
    warnings = [e.log for e in run.of(ev.ToolLog) if e.tool == "system" and "saving stopped" in e.log]
    assert len(warnings) == 1 and "No space left" in warnings[0]
    assert run.of(ev.TurnComplete)[-1].final_response == "finished anyway"


async def test_a_tool_output_is_saved_in_full_once(llm_server: ScriptedLLMServer, workdir: Path, isolated_home: Path) -> None:
    llm_server.add(tool_calls(call("bash", {"command": "python3 -c \"print('x' * 5000)\""})), text("ok"))
    async with Run(agent_for(workdir)) as run:
        await run.say("print a lot")
    saved = next((isolated_home / "data" / "ml-intern" / "sessions").glob("*.jsonl")).read_text()
    assert saved.count("x" * 5000) == 1  # in the history message, not again in the event
    event = next(json.loads(line)["event"] for line in saved.splitlines() if '"tool_output"' in line)
    assert event["output_chars"] == 5000 and len(event["output"]) == 200
