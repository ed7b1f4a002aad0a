"""Sessions: titles, rename, listing, /new, resume of history/plan/model/rules, and surviving kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ml_intern.config import ApprovalRule
from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from ml_intern.core.session import find_session, list_sessions, load_session
from tests.harness.scripted_llm import ScriptedLLMServer, call, hang, text, tool_calls
from tests.test_agent_e2e import Run, agent_for
from tests.test_cli import run_cli


async def _op(run: Run, operation: ops.Operation) -> None:
    run.agent.submit(operation)
    await asyncio.wait_for(run.agent.wait_idle(), 10)


def _sessions_dir(home: Path) -> Path:
    return home / "data" / "ml-intern" / "sessions"


async def test_titles_rename_listing_and_new(
    llm_server: ScriptedLLMServer, workdir: Path, isolated_home: Path
) -> None:
    llm_server.add(text("sure"), text("ok"), text("fine"))
    async with Run(agent_for(workdir)) as run:
        await run.say(
            "Fine-tune a small BERT on the IMDB reviews dataset and push it to the Hub when done please"
        )
        first = run.agent.session_id
        await _op(run, ops.Rename(title="  IMDB   sentiment  "))
        await _op(run, ops.New())
        second = run.agent.session_id
        await run.say("second task")
        await _op(run, ops.New())  # leaves a fresh session that is never used
        third = run.agent.session_id
        await _op(run, ops.New())
    assert run.of(ev.SessionRenamed)[-1].title == "IMDB sentiment"
    assert [e.previous_session_id for e in run.of(ev.NewComplete)] == [first, second, third]
    sessions = list_sessions()
    assert [s.session_id for s in sessions] == [second, first]  # newest first, the empty one hidden
    assert sessions[1].title == "IMDB sentiment" and sessions[0].title == "second task"
    assert sessions[1].messages == 2 and sessions[1].model == "vllm/scripted"
    assert sessions[1].preview.startswith("Fine-tune a small BERT")
    assert not (_sessions_dir(isolated_home) / f"{third}.jsonl").exists()  # the unused one left no file
    assert find_session(first) == sessions[1].path and find_session("1") == sessions[0].path


async def test_auto_title_is_the_first_message_shortened(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    llm_server.add(text("ok"))
    long = "Please " + "very " * 30 + "carefully check the dataset"
    async with Run(agent_for(workdir)) as run:
        await run.say(long)
        title = run.agent.title
    assert title.endswith("…") and len(title) <= 61 and long.startswith(title[:-1])
    assert list_sessions()[0].title == title


async def test_resume_restores_history_plan_model_and_session_rules(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    plan = [
        {"id": "1", "content": "inspect data", "status": "completed"},
        {"id": "2", "content": "train", "status": "pending"},
    ]
    llm_server.add(tool_calls(call("plan_tool", {"todos": plan})), text("planned"), text("resumed answer"))
    async with Run(agent_for(workdir, model_name="vllm/other-model")) as run:
        run.agent.policy.add_rule(ApprovalRule(tool="bash", pattern="python train.py*", action="allow"))
        await run.say("plan the training")
        session_id = run.agent.session_id
    async with Run(agent_for(workdir)) as run:
        await _op(run, ops.Resume(session_id=session_id))
        resumed = run.of(ev.ResumeComplete)[-1]
        assert run.agent.settings.model_name == "vllm/other-model"
        assert [i["status"] for i in run.agent.state.plan] == ["completed", "pending"]
        assert [(r.tool, r.pattern) for r in run.agent.policy.session_rules] == [("bash", "python train.py*")]
        usage = run.events[run.events.index(resumed) + 1]
        assert isinstance(usage, ev.Usage) and usage.context_tokens > 0
        await run.say("what next?")
    assert resumed.model == "vllm/other-model" and resumed.title == "plan the training"
    assert run.of(ev.PlanUpdate)[0].plan[1].content == "train"
    last = llm_server.chat_requests[-1]
    assert last.body["model"] == "other-model"
    assert [m["role"] for m in last.messages] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert last.messages[-1]["content"] == "what next?"
    # Resuming appends to the same file: the earlier lines are still there.
    loaded = load_session(find_session(session_id))  # type: ignore[arg-type]
    assert [r["message"]["content"] for r in loaded.records if r["kind"] == "task"] == [
        "plan the training",
        "what next?",
    ]


def test_a_partly_written_last_line_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    record = {"message": {"role": "user", "content": "hello"}, "kind": "task", "turn": 1, "ts": 1.0}
    path.write_text(
        json.dumps({"kind": "meta", "ts": 1.0, "model": "m"})
        + "\n"
        + json.dumps({"kind": "message", "ts": 1.0, "record": record})
        + "\n"
        + '{"kind": "message", "ts": 2.0, "record": {"message": {"role": "assis'
    )
    loaded = load_session(path)
    assert loaded.dropped_lines == 1 and [r["message"]["content"] for r in loaded.records] == ["hello"]


# ---------------------------------------------------------------- kill -9 mid-turn, then --resume


def _wait_until(predicate: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", ["model_call", "tool_call"])
def test_kill_9_mid_turn_then_resume_loses_only_the_in_flight_call(
    llm_server: ScriptedLLMServer, workdir: Path, isolated_home: Path, in_flight: str
) -> None:
    pid_file = workdir / "bash.pid"
    llm_server.add(tool_calls(call("write", {"path": "prep.py", "content": "print('prepared')\n"})))
    if in_flight == "model_call":
        llm_server.add(hang(60))
    else:
        llm_server.add(
            tool_calls(call("bash", {"command": f"echo $$ > {pid_file}; sleep 30"}, id="call_slow"))
        )
    llm_server.add(text("picked up where we left off"))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TOKEN") and not k.endswith("_API_KEY")}
    env.update({"VLLM_BASE_URL": llm_server.base_url, "ML_INTERN_MODEL": "vllm/scripted"})
    proc = subprocess.Popen(
        [sys.executable, "-m", "ml_intern", "--headless", "prepare the data"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if in_flight == "model_call":
            _wait_until(lambda: len(llm_server.chat_requests) >= 2)
        else:
            _wait_until(lambda: pid_file.exists() and pid_file.read_text().strip())
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if pid_file.exists() and pid_file.read_text().strip():
            try:
                os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    assert proc.returncode == -signal.SIGKILL
    saved = [p for p in _sessions_dir(isolated_home).glob("*.jsonl")]
    assert len(saved) == 1
    session_id = saved[0].stem

    result = run_cli(
        ["--resume", session_id, "continue"],
        workdir,
        {"VLLM_BASE_URL": llm_server.base_url, "ML_INTERN_MODEL": "vllm/scripted"},
    )
    assert result.returncode == 0, result.stderr
    assert "picked up where we left off" in result.stdout
    sent = llm_server.chat_requests[-1].messages
    roles = [m["role"] for m in sent]
    assert sent[1]["content"] == "prepare the data"
    assert sent[2]["tool_calls"][0]["function"]["name"] == "write"
    assert sent[3]["role"] == "tool" and "prep.py" in sent[3]["content"]
    if in_flight == "model_call":
        assert roles == ["system", "user", "assistant", "tool", "user"]
    else:
        assert roles == ["system", "user", "assistant", "tool", "assistant", "tool", "user"]
        assert sent[4]["tool_calls"][0]["id"] == "call_slow"
        assert sent[5]["tool_call_id"] == "call_slow" and "stopped" in sent[5]["content"]
    assert sent[-1]["content"] == "continue"
    assert (workdir / "prep.py").read_text() == "print('prepared')\n"
