"""The `ml-intern` command as a user runs it: real subprocesses, exit codes, stdout/stderr, files written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.scripted_llm import ScriptedLLMServer, call, http_error, text, tool_calls

pytestmark = pytest.mark.slow


def run_cli(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None, stdin: str | None = None,
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TOKEN") and not k.endswith("_API_KEY")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "ml_intern", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def model_env(llm_server: ScriptedLLMServer) -> dict[str, str]:
    return {"VLLM_BASE_URL": llm_server.base_url, "ML_INTERN_MODEL": "vllm/scripted"}


def test_headless_task_writes_runs_and_reads_files(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(
        tool_calls(call("write", {"path": "hello.py", "content": "print('hello from the script')\n"})),
        tool_calls(call("bash", {"command": "python hello.py > out.txt"})),
        tool_calls(call("read", {"path": "out.txt"})),
        text("The script printed: hello from the script"),
    )
    result = run_cli(["write and run hello.py"], workdir, model_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "The script printed: hello from the script"
    assert "▸ write" in result.stderr and "▸ bash" in result.stderr
    assert (workdir / "out.txt").read_text() == "hello from the script\n"


def test_json_mode_prints_only_events_on_stdout(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(tool_calls(call("bash", {"command": "echo hi"})), text("done"))
    result = run_cli(["--json", "say hi"], workdir, model_env)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert all({"type", "seq", "timestamp"} <= set(e) for e in events)
    types = [e["type"] for e in events]
    assert types[0] == "ready" and types[-1] == "shutdown"
    assert {"processing", "tool_call", "tool_output", "assistant_chunk", "turn_complete"} <= set(types)
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_prompt_from_stdin_with_headless(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(text("from stdin"))
    result = run_cli(["--headless", "--no-stream"], workdir, model_env, stdin="question on stdin\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from stdin"
    assert llm_server.chat_requests[0].messages[-1]["content"] == "question on stdin\n"


def test_llm_error_exits_1_with_a_message(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(http_error(401))
    result = run_cli(["hi"], workdir, model_env)
    assert result.returncode == 1
    assert "API key" in result.stderr


def test_iteration_cap_exits_3(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(*[tool_calls(call("bash", {"command": f"echo {i}"})) for i in range(5)])
    result = run_cli(["--max-iterations", "2", "loop"], workdir, model_env)
    assert result.returncode == 3, result.stderr
    assert "2 model calls" in result.stderr


def test_ask_mode_headless_denies_and_explains(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(tool_calls(call("write", {"path": "x.txt", "content": "x"})), text("I could not write"))
    result = run_cli(["--approval-mode", "ask", "write x"], workdir, model_env)
    assert result.returncode == 0
    assert not (workdir / "x.txt").exists()
    assert "headless" in json.dumps(llm_server.chat_requests[1].messages)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--config", "/nonexistent/config.json", "hi"], "config file not found"),
        (["--model", "not-a-model", "hi"], "invalid model id"),
        (["--headless"], "prompt is empty"),
        (["--resume", "nope-nope", "hi"], "no saved session"),
    ],
)
def test_bad_usage_exits_2(workdir: Path, args: list[str], words: str) -> None:
    result = run_cli(args, workdir, {"ML_INTERN_MODEL": "vllm/scripted"}, stdin=None if args != ["--headless"] else "")
    assert result.returncode == 2, result.stderr
    assert words in result.stderr


def test_missing_variable_in_config_is_named(workdir: Path) -> None:
    config = workdir / "cfg.json"
    config.write_text(json.dumps({"mcpServers": {"x": {"url": "http://h", "headers": {"A": "${NOT_SET_ANYWHERE}"}}}}))
    result = run_cli(["--config", str(config), "hi"], workdir, {"ML_INTERN_MODEL": "vllm/scripted"})
    assert result.returncode == 2 and "NOT_SET_ANYWHERE" in result.stderr


def test_hosted_model_without_token_exits_2(workdir: Path) -> None:
    result = run_cli(["--model", "moonshotai/Kimi-K2.6", "hi"], workdir, {"HF_HOME": str(workdir / "nohf")})
    assert result.returncode == 2 and "HF_TOKEN" in result.stderr


def test_sessions_are_listed_and_resumed(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    llm_server.add(text("first answer"), text("second answer"))
    assert run_cli(["remember the number 42"], workdir, model_env).returncode == 0
    listing = run_cli(["--list-sessions"], workdir, model_env)
    assert listing.returncode == 0 and "remember the number 42" in listing.stdout
    result = run_cli(["--continue", "what number?"], workdir, model_env)
    assert result.returncode == 0, result.stderr
    sent = [m["content"] for m in llm_server.chat_requests[-1].messages if m["role"] != "system"]
    assert sent == ["remember the number 42", "first answer", "what number?"]


def test_version_and_help_are_instant(workdir: Path) -> None:
    assert run_cli(["--version"], workdir).stdout.startswith("ml-intern ")
    help_text = run_cli(["--help"], workdir).stdout
    for flag in ("--model", "--max-iterations", "--no-stream", "--json", "--approval-mode", "--config", "--resume",
                 "--continue", "--list-sessions", "--sandbox-tools", "--demo", "--version", "--headless"):
        assert flag in help_text


def test_ctrl_c_mid_tool_exits_130_and_kills_the_command(llm_server: ScriptedLLMServer, model_env: dict[str, str], workdir: Path) -> None:
    import signal
    import time

    pid_file = workdir / "pid"
    llm_server.add(tool_calls(call("bash", {"command": f"echo $$ > {pid_file}; sleep 30; true"})))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_TOKEN")}
    env.update(model_env)
    process = subprocess.Popen([sys.executable, "-m", "ml_intern", "sleep please"], cwd=workdir, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text().strip()):
        time.sleep(0.05)
    shell_pid = int(pid_file.read_text())
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=10)
    assert process.returncode == 130, err
    assert time.monotonic() - sent < 3
    with pytest.raises(ProcessLookupError):
        os.kill(shell_pid, 0)
    assert "interrupted" in err
