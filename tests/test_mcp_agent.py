"""MCP servers from the config file used by the agent end to end (headless CLI and the Agent API)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ml_intern.core import events as ev
from tests.harness.scripted_llm import ScriptedLLMServer, call, text, tool_calls
from tests.test_agent_e2e import Run, agent_for
from tests.test_cli import run_cli

TIME_SERVER = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}


@pytest.mark.slow
def test_headless_run_uses_a_configured_mcp_server(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    config = workdir / "agent.json"
    config.write_text(json.dumps({"model_name": "vllm/scripted", "mcpServers": {"time": TIME_SERVER}}))
    llm_server.add(
        tool_calls(call("get_current_time", {"timezone": "UTC"})),
        text("It is now some time in UTC."),
    )
    result = run_cli(["--config", str(config), "what time is it in UTC?"], workdir, {"VLLM_BASE_URL": llm_server.base_url})
    assert result.returncode == 0, result.stderr
    first = llm_server.chat_requests[0]
    assert "get_current_time" in {t["function"]["name"] for t in first.tools}
    tool_result = [m for m in llm_server.chat_requests[1].messages if m["role"] == "tool"][0]["content"]
    assert '"timezone": "UTC"' in tool_result or "UTC" in tool_result
    assert "Traceback" not in result.stderr


async def test_mcp_calls_ask_in_ask_mode_and_a_dead_server_is_reported(llm_server: ScriptedLLMServer, workdir: Path) -> None:
    servers = {"time": TIME_SERVER, "broken": {"command": "/nonexistent/mcp-server"}}
    llm_server.add(tool_calls(call("get_current_time", {"timezone": "UTC"})), text("could not ask"))
    async with Run(agent_for(workdir, approval_mode="ask", mcpServers=servers)) as run:
        await run.say("time?")
    result = [m for m in llm_server.chat_requests[1].messages if m["role"] == "tool"][0]["content"]
    assert "needs approval" in result or "headless" in result
    notices = " ".join(e.log for e in run.of(ev.ToolLog) if e.tool == "system")
    assert "broken" in notices


async def test_reconnecting_a_server_that_failed_at_start_gives_the_model_its_tools(
    llm_server: ScriptedLLMServer, workdir: Path, tmp_path: Path
) -> None:
    launcher = tmp_path / "late_server.sh"
    launcher.write_text(f"#!/bin/sh\n[ -f {tmp_path}/ready ] || exit 1\nexec {sys.executable} -m mcp_server_time --local-timezone UTC\n")
    launcher.chmod(0o755)
    llm_server.add(text("first"), text("second"))
    async with Run(agent_for(workdir, mcpServers={"late": {"command": str(launcher)}})) as run:
        await run.say("hi")
        assert "get_current_time" not in {t["function"]["name"] for t in llm_server.chat_requests[0].tools}
        (tmp_path / "ready").write_text("")
        status = await run.agent.reconnect_mcp("late")
        assert status.state == "connected"
        await run.say("again")
    assert "get_current_time" in {t["function"]["name"] for t in llm_server.chat_requests[1].tools}
