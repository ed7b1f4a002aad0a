"""Trace export (Claude Code JSONL) and upload to the user's own private dataset on a fake Hub."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from ml_intern.core import events as ev
from ml_intern.core import operations as ops
from ml_intern.core.agent import Agent
from ml_intern.core.session import load_session
from ml_intern.core.traces import TraceUploader, remote_path
from tests.harness.fake_hub import FakeHub, hub_environment
from tests.harness.scripted_llm import ScriptedLLMServer, call, text, tool_calls
from tests.test_agent_e2e import Run, agent_for

SECRET = "hf_" + "PlantedSecretValue" * 2
ENV_SECRET = "wandb-0123456789-abcdefghij"


async def _op(run: Run, operation: ops.Operation, timeout: float = 15) -> None:
    run.agent.submit(operation)
    await asyncio.wait_for(run.agent.wait_idle(), timeout)


def validate_claude_code(lines: list[dict[str, Any]], session_id: str) -> None:
    """Check what the Agent Trace Viewer relies on: the uuid chain and tool_use/tool_result pairs."""
    assert lines
    seen: set[str] = set()
    parent = None
    open_calls: set[str] = set()
    answered: set[str] = set()
    for line in lines:
        assert line["type"] in ("user", "assistant")
        assert line["sessionId"] == session_id
        assert line["parentUuid"] == parent
        assert line["uuid"] not in seen and len(line["uuid"]) == 36 and line["uuid"].count("-") == 4
        assert line["timestamp"].endswith("Z")
        seen.add(line["uuid"])
        parent = line["uuid"]
        message = line["message"]
        assert message["role"] == line["type"]
        if isinstance(message["content"], list):
            for block in message["content"]:
                if block["type"] == "tool_use":
                    assert isinstance(block["input"], dict)
                    open_calls.add(block["id"])
                elif block["type"] == "tool_result":
                    assert block["tool_use_id"] in open_calls and block["tool_use_id"] not in answered
                    answered.add(block["tool_use_id"])
    assert open_calls == answered, f"tool_use without tool_result: {open_calls - answered}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _script_two_turns(llm_server: ScriptedLLMServer) -> None:
    llm_server.add(
        tool_calls(
            call("write", {"path": "train.py", "content": f"token = '{SECRET}'\n"}),
            call("bash", {"command": f"echo key={ENV_SECRET}"}),
            content="Writing the script and checking the key.",
        ),
        tool_calls(call("bash", {"command": "cat train.py"})),
        text(f"Done. Your token {SECRET} is in train.py."),
        text("Nothing else to do."),
    )


async def test_export_writes_a_valid_redacted_claude_code_trace(
    llm_server: ScriptedLLMServer, workdir: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", ENV_SECRET)
    _script_two_turns(llm_server)
    async with Run(agent_for(workdir)) as run:
        await run.say(f"write train.py with my token {SECRET}")
        await run.say("anything else?")
        await _op(run, ops.Export())
        await _op(run, ops.Export(path="traces/again.jsonl"))
        session_id = run.agent.session_id
    default, named = run.of(ev.TraceExported)
    assert Path(default.path) == workdir / f"ml-intern-{session_id}.jsonl"
    assert Path(named.path) == workdir / "traces" / "again.jsonl"
    assert Path(default.path).read_bytes() == Path(named.path).read_bytes()  # deterministic
    lines = read_jsonl(Path(default.path))
    assert default.lines == len(lines)
    validate_claude_code(lines, session_id)
    assert [line["type"] for line in lines] == [
        "user",
        "assistant",
        "user",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    first_call = lines[1]["message"]
    assert first_call["model"] == "vllm/scripted" and first_call["stop_reason"] == "tool_use"
    assert first_call["content"][0] == {"type": "text", "text": "Writing the script and checking the key."}
    assert [b["name"] for b in first_call["content"][1:]] == ["write", "bash"]
    assert lines[-1]["message"]["content"] == [{"type": "text", "text": "Nothing else to do."}]
    assert lines[0]["cwd"] == str(workdir.resolve())
    # No system prompt, no secrets: neither in the saved session nor in the export.
    saved = (isolated_home / "data" / "ml-intern" / "sessions" / f"{session_id}.jsonl").read_text()
    for content in (saved, Path(default.path).read_text()):
        assert SECRET not in content and ENV_SECRET not in content
        assert "[REDACTED_HF_TOKEN]" in content
    assert lines[0]["message"]["content"].startswith("write train.py with my token [REDACTED")


async def test_the_trace_keeps_compacted_messages_and_drops_undone_turns(
    llm_server: ScriptedLLMServer, workdir: Path
) -> None:
    for n in range(1, 5):
        llm_server.add(tool_calls(call("bash", {"command": f"echo run {n}"})), text(f"run {n} ok"))
    llm_server.add(text("- ran echo four times"))  # the summary
    llm_server.add(text("this turn will be undone"))
    async with Run(agent_for(workdir)) as run:
        for n in range(1, 5):
            await run.say(f"run step {n}")
        await _op(run, ops.Compact())
        assert run.of(ev.Compacted)
        await run.say("a turn to undo")
        await _op(run, ops.Undo())
        await _op(run, ops.Export())
        session_id = run.agent.session_id
    lines = read_jsonl(Path(run.of(ev.TraceExported)[-1].path))
    validate_claude_code(lines, session_id)
    texts = json.dumps(lines)
    for n in range(1, 5):
        assert f"run step {n}" in texts and f"run {n} ok" in texts
    assert "a turn to undo" not in texts and "will be undone" not in texts
    assert "earlier work in this session was compacted" not in texts


# ---------------------------------------------------------------- upload


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    with FakeHub() as fake:
        hub_environment(monkeypatch, fake, tmp_path)
        yield fake


def sharing_agent(workdir: Path, **settings: Any) -> Agent:
    agent = agent_for(workdir, share_traces=True, **settings)
    agent.services["trace_uploader"] = TraceUploader(
        agent.settings.personal_trace_repo_template, agent.emit, retry_delays=(0.05, 0.05)
    )
    return agent


async def _wait_for(run: Run, kind: type[ev.Event], count: int = 1, timeout: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = run.of(kind)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {kind.__name__}; events: {[e.type for e in run.events][-15:]}")


async def test_shared_traces_go_redacted_to_a_private_dataset_of_the_user(
    llm_server: ScriptedLLMServer, workdir: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", ENV_SECRET)
    _script_two_turns(llm_server)
    async with Run(sharing_agent(workdir)) as run:
        await run.say(f"write train.py with my token {SECRET}")
        uploaded = (await _wait_for(run, ev.TraceUploaded))[0]
        await run.say("anything else?")
        session_id = run.agent.session_id
        created = load_session(run.agent.store.path).info.created
    repo = hub.repos[("dataset", "tester/ml-intern-sessions")]
    assert repo.private is True
    assert uploaded.repo_id == "tester/ml-intern-sessions"
    assert (
        uploaded.path_in_repo
        == remote_path(session_id, created)
        == f"sessions/{time.strftime('%Y-%m-%d', time.gmtime(created))}/{session_id}.jsonl"
    )
    assert "README.md" in repo.files and b"agent-traces" in repo.files["README.md"]
    content = repo.files[uploaded.path_in_repo].decode()
    assert SECRET not in content and ENV_SECRET not in content and "[REDACTED" in content
    lines = [json.loads(line) for line in content.splitlines()]
    validate_claude_code(lines, session_id)
    assert "Nothing else to do." in content  # the final upload at shutdown has the second turn
    # Everything the Hub received, across every request, is free of the secrets.
    for request in hub.requests:
        assert SECRET.encode() not in request.body and ENV_SECRET.encode() not in request.body
    assert not [r for r in hub.requests if "smolagents" in r.path]
    # The dataset card is written once, not with every upload.
    commits = hub.requests_to(r"/api/datasets/tester/ml-intern-sessions/commit/")
    assert sum(b"README.md" in r.body for r in commits) == 1 and len(commits) >= 3


async def test_upload_failures_are_retried_then_reported_without_breaking_the_turn(
    llm_server: ScriptedLLMServer, workdir: Path, hub: FakeHub
) -> None:
    hub.fail(r"/commit/", 500, times=1)
    llm_server.add(text("first"), text("second"))
    async with Run(sharing_agent(workdir)) as run:
        await run.say("hello")
        await _wait_for(run, ev.TraceUploaded)
        hub.fail(r"/commit/", 503)
        await run.say("again")
        logs = await _wait_for(run, ev.ToolLog)
    assert run.of(ev.TurnComplete)[-1].final_response == "second"
    assert any("Could not upload the trace" in e.log and "3 attempts" in e.log for e in logs)
    assert not run.of(ev.Error)


async def test_traces_never_go_outside_the_users_namespace(
    llm_server: ScriptedLLMServer, workdir: Path, hub: FakeHub
) -> None:
    llm_server.add(text("hi"))
    async with Run(
        sharing_agent(workdir, personal_trace_repo_template="smolagents/ml-intern-sessions")
    ) as run:
        await run.say("hello")
        logs = await _wait_for(run, ev.ToolLog)
    assert any("refusing to upload to smolagents/ml-intern-sessions" in e.log for e in logs)
    assert not hub.requests_to(r"/commit/") and ("dataset", "smolagents/ml-intern-sessions") not in hub.repos


async def test_share_traces_shows_and_sets_visibility(
    llm_server: ScriptedLLMServer, workdir: Path, hub: FakeHub
) -> None:
    async with Run(agent_for(workdir)) as run:
        await _op(run, ops.ShareTraces())
        await _op(run, ops.ShareTraces(enabled=True))
        await _op(run, ops.ShareTraces(visibility="public"))
        await _op(run, ops.ShareTraces(visibility="private"))
    shown, enabled, public, private = run.of(ev.TraceSharing)
    assert not shown.enabled and shown.private is None and "off" in shown.message
    assert enabled.enabled and enabled.repo_id == "tester/ml-intern-sessions"
    assert public.private is False and "PUBLIC" in public.message
    assert private.private is True and hub.repos[("dataset", "tester/ml-intern-sessions")].private is True


async def test_without_a_token_sharing_explains_itself(
    llm_server: ScriptedLLMServer, workdir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "no-hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    llm_server.add(text("hi"))
    async with Run(sharing_agent(workdir)) as run:
        await run.say("hello")
        logs = await _wait_for(run, ev.ToolLog)
        await _op(run, ops.ShareTraces())
    assert any("no Hugging Face token" in e.log for e in logs)
    assert "no Hugging Face token" in run.of(ev.TraceSharing)[-1].message
