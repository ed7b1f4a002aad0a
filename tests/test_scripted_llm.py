"""The scripted OpenAI-compatible server speaks the wire format litellm expects, faults included."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

import litellm

from tests.harness.scripted_llm import (
    EXHAUSTED_TEXT,
    ScriptedLLMServer,
    Step,
    call,
    context_length_exceeded,
    cut_stream,
    echo_responder,
    hang,
    http_error,
    text,
    tool_calls,
)

litellm.suppress_debug_info = True
MESSAGES = [{"role": "user", "content": "hi there"}]


async def _stream(server: ScriptedLLMServer, **kwargs: object) -> list:
    response = await litellm.acompletion(
        model="openai/scripted",
        api_base=server.base_url,
        api_key="x",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
        **kwargs,
    )
    return [chunk async for chunk in response]


async def test_streamed_text_arrives_in_chunks_with_usage() -> None:
    with ScriptedLLMServer(
        [text("hello streaming world", chunk_size=5, usage={"prompt_tokens": 11, "completion_tokens": 4})]
    ) as server:
        chunks = await _stream(server)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["hello", " stre", "aming", " worl", "d"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    usage = [c.usage for c in chunks if getattr(c, "usage", None)]
    assert usage[-1].prompt_tokens == 11 and usage[-1].completion_tokens == 4 and usage[-1].total_tokens == 15
    request = server.chat_requests[0]
    assert request.body["messages"] == MESSAGES and request.headers["authorization"] == "Bearer x"


async def test_parallel_tool_call_deltas_assemble_into_calls() -> None:
    content = "def f():\n    return 'é' * 3\n"
    step = tool_calls(
        call("write", {"path": "a.py", "content": content}),
        call("bash", '{"command": "ls -la"}'),
        content="Writing the file.",
    )
    with ScriptedLLMServer([step]) as server:
        chunks = await _stream(server)
    # Arguments really arrive split across several deltas.
    argument_deltas = [
        tc
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for tc in c.choices[0].delta.tool_calls
    ]
    assert len(argument_deltas) >= 6
    assembled = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    message = assembled.choices[0].message
    assert assembled.choices[0].finish_reason == "tool_calls"
    assert message.content == "Writing the file."
    calls = message.tool_calls
    assert [c.function.name for c in calls] == ["write", "bash"]
    assert json.loads(calls[0].function.arguments) == {"path": "a.py", "content": content}
    assert calls[1].function.arguments == '{"command": "ls -la"}'
    assert calls[0].id != calls[1].id


async def test_malformed_arguments_are_sent_verbatim() -> None:
    with ScriptedLLMServer(
        [tool_calls(call("write", '{"path": "a.py", "content": "unterminated'))]
    ) as server:
        chunks = await _stream(server)
    assembled = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    assert (
        assembled.choices[0].message.tool_calls[0].function.arguments
        == '{"path": "a.py", "content": "unterminated'
    )


async def test_non_streaming_completion_has_tool_calls_and_usage() -> None:
    with ScriptedLLMServer(
        [tool_calls(call("read", {"path": "x.txt"}), call("read", {"path": "y.txt"}))]
    ) as server:
        response = await litellm.acompletion(
            model="openai/scripted", api_base=server.base_url, api_key="x", messages=MESSAGES, max_retries=0
        )
    assert [json.loads(c.function.arguments)["path"] for c in response.choices[0].message.tool_calls] == [
        "x.txt",
        "y.txt",
    ]
    assert response.choices[0].finish_reason == "tool_calls"
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


async def test_rate_limit_carries_retry_after() -> None:
    with ScriptedLLMServer([http_error(429, headers={"Retry-After": "1"}), text("after the wait")]) as server:
        with pytest.raises(litellm.RateLimitError) as info:
            await _stream(server)
        assert info.value.response.headers["retry-after"] == "1"
        chunks = await _stream(server)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "after the wait"
    assert len(server.chat_requests) == 2


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (http_error(401), litellm.AuthenticationError),
        (http_error(404), litellm.NotFoundError),
        (http_error(503), litellm.ServiceUnavailableError),
        (http_error(500), litellm.InternalServerError),
        (context_length_exceeded(), litellm.ContextWindowExceededError),
    ],
)
async def test_http_faults_map_to_litellm_errors(step, error) -> None:
    with ScriptedLLMServer([step]) as server, pytest.raises(error):
        await _stream(server)


async def test_cut_stream_raises_instead_of_hanging() -> None:
    with ScriptedLLMServer([cut_stream(after_chunks=2)]) as server:
        started = time.monotonic()
        with pytest.raises(Exception) as info:
            await _stream(server, timeout=5)
    assert time.monotonic() - started < 3
    assert not isinstance(info.value, litellm.Timeout)


async def test_hang_is_cut_short_by_the_client_timeout() -> None:
    with ScriptedLLMServer([hang(30)]) as server:
        started = time.monotonic()
        with pytest.raises(litellm.Timeout):
            await _stream(server, timeout=0.5)
        assert time.monotonic() - started < 3
    assert time.monotonic() - started < 4  # stop() releases the hanging handler


async def test_exhausted_script_answers_and_counts() -> None:
    with ScriptedLLMServer() as server:
        chunks = await _stream(server)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == EXHAUSTED_TEXT
    assert server.exhausted_count == 1 and server.chat_requests[0].exhausted


async def test_responder_scripts_dynamically_after_steps() -> None:
    seen: list[int] = []

    def responder(body: dict) -> str:
        seen.append(len(body["messages"]))
        return f"dynamic {len(seen)}"

    with ScriptedLLMServer([text("scripted first")], responder=responder) as server:
        first = await _stream(server)
        server.add(text("added later"))
        second = await _stream(server)
        third = await _stream(server)
    joined = [
        "".join(c.choices[0].delta.content or "" for c in r if c.choices) for r in (first, second, third)
    ]
    assert joined == ["scripted first", "added later", "dynamic 1"]
    assert seen == [1]


async def test_delays_pace_the_stream() -> None:
    with ScriptedLLMServer([text("abcdef", chunk_size=2, delay_s=0.2, chunk_delay_s=0.1)]) as server:
        started = time.monotonic()
        response = await litellm.acompletion(
            model="openai/scripted",
            api_base=server.base_url,
            api_key="x",
            messages=MESSAGES,
            stream=True,
            max_retries=0,
        )
        arrivals = [
            time.monotonic() - started async for c in response if c.choices and c.choices[0].delta.content
        ]
    assert len(arrivals) == 3 and arrivals[0] >= 0.2 and arrivals[-1] - arrivals[0] >= 0.18


def test_script_entries_from_json() -> None:
    steps = [
        Step.from_json(item)
        for item in [
            "plain",
            {"text": "hi", "chunk_size": 1, "finish_reason": "length"},
            {"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}], "content": "running"},
            {"http_error": 429, "headers": {"Retry-After": "2"}},
            {"cut_stream": 3},
            {"hang": 1.5},
        ]
    ]
    assert [step.kind for step in steps] == ["text", "text", "tool_calls", "http_error", "cut_stream", "hang"]
    assert steps[1].finish_reason == "length" and steps[2].calls[0].arguments_text() == '{"command": "ls"}'
    assert (
        steps[3].headers == {"Retry-After": "2"} and steps[3].body["error"]["code"] == "rate_limit_exceeded"
    )
    assert steps[4].after_chunks == 3 and steps[5].seconds == 1.5
    with pytest.raises(ValueError):
        Step.from_json({"nonsense": 1})
    assert echo_responder({"messages": [{"role": "user", "content": "ping"}]}).content == "echo: ping"


def test_models_endpoint_and_sync_use() -> None:
    with (
        ScriptedLLMServer() as server,
        urllib.request.urlopen(server.base_url + "/models", timeout=5) as response,
    ):
        payload = json.load(response)
    assert payload["data"][0]["id"] == "scripted"
    assert server.requests[0].method == "GET"


def test_cli_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps(["from the script"]))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    repo_root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.scripted_llm", "--port", str(port), "--script", str(script)],
        cwd=repo_root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving on" in (process.stdout.readline() if process.stdout else "")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps({"model": "scripted", "messages": MESSAGES}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            payload = json.load(response)
        assert payload["choices"][0]["message"]["content"] == "from the script"
    finally:
        process.terminate()
        process.wait(timeout=5)
