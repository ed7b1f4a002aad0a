"""MCPManager against real MCP servers: mcp-server-time, a small SDK server (stdio, HTTP), server-everything.

Run this file as a script to serve the small test server: `python tests/test_mcp_client.py stdio|http|sse [PORT]`.
"""

import asyncio
import base64
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve()
EVERYTHING_JS = (
    HERE.parent / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)
# 1x1 transparent PNG.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def serve(transport: str, port: int = 0) -> None:
    """Run the small test server (tools that exercise every content type and failure mode)."""
    from mcp import types
    from mcp.server.mcpserver import Image, MCPServer

    print("STDERR-MARKER server starting", file=sys.stderr, flush=True)
    server = MCPServer("ml-intern-test")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def get_current_time() -> str:
        """A name that clashes with mcp-server-time."""
        return "demo-time"

    @server.tool()
    def picture() -> list[types.TextContent | types.ImageContent]:
        """Return a caption and a tiny PNG."""
        return [
            types.TextContent(type="text", text="a picture:"),
            Image(data=PNG_BYTES, format="png").to_image_content(),
        ]

    @server.tool()
    def document() -> list[types.EmbeddedResource]:
        """Return one text resource and one binary resource."""
        return [
            types.EmbeddedResource(
                type="resource",
                resource=types.TextResourceContents(
                    uri="file:///notes.md", mime_type="text/markdown", text="# Notes"
                ),
            ),
            types.EmbeddedResource(
                type="resource",
                resource=types.BlobResourceContents(
                    uri="file:///weights.bin",
                    mime_type="application/octet-stream",
                    blob=base64.b64encode(b"\0" * 10),
                ),
            ),
        ]

    @server.tool()
    def fail() -> str:
        """Always fails."""
        from mcp.server.mcpserver.exceptions import ToolError

        raise ToolError("the tool broke on purpose")

    @server.tool()
    async def slow(seconds: float) -> str:
        """Sleep, then answer."""
        await asyncio.sleep(seconds)
        return "slept"

    @server.tool()
    def noisy() -> str:
        """Write to stderr."""
        print("STDERR-MARKER noisy tool", file=sys.stderr, flush=True)
        return "ok"

    @server.tool()
    def crash() -> str:
        """Exit the process without answering."""
        os._exit(3)

    @server.tool()
    def pid() -> int:
        """The server's process id."""
        return os.getpid()

    if transport == "stdio":
        server.run("stdio")
    elif transport == "sse":
        server.run("sse", host="127.0.0.1", port=port)
    else:
        server.run("streamable-http", host="127.0.0.1", port=port)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    sys.exit(0)


from ml_intern.core.tools import Risk, ToolContext, ToolRouter, ToolSpec
from ml_intern.tools.mcp_client import MCPManager, render_call_result


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "ml-intern" / "logs"


def _stdio_demo() -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(HERE), "stdio"]}


def _time_server() -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def _start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        _wait_for_port(port, proc)
    except Exception:
        proc.kill()
        raise
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def http_demo() -> Iterator[tuple[str, int]]:
    port = _free_port()
    proc = _start([sys.executable, str(HERE), "http", str(port)], port)
    yield f"http://127.0.0.1:{port}/mcp", port
    _stop(proc)


def _ctx() -> ToolContext:
    return ToolContext(tool_name="t", tool_call_id="c1", emit=lambda e: None, state=None, workdir=Path.cwd())


async def test_time_server_listed_and_called_over_stdio() -> None:
    manager = MCPManager({"time": _time_server()})
    try:
        [status] = await manager.start()
        assert status.state == "connected" and status.transport == "stdio"
        assert {"get_current_time", "convert_time"} <= set(status.tool_names)
        specs = {spec.name: spec for spec in manager.tool_specs()}
        spec = specs["convert_time"]
        assert spec.source == "mcp:time" and spec.risk_for({}) is Risk.EXTERNAL and not spec.read_only
        assert spec.parameters["type"] == "object" and "source_timezone" in spec.parameters["properties"]
        router = ToolRouter(manager.tool_specs())
        result, _ = await router.call("get_current_time", {"timezone": "Asia/Tokyo"}, _ctx())
        assert result.success, result.output
        assert "Asia/Tokyo" in result.output and "+09:00" in result.output
        bad, _ = await router.call("get_current_time", {"timezone": "Not/AZone"}, _ctx())
        assert not bad.success
    finally:
        await manager.aclose()
    assert manager.status()[0].state == "stopped"


async def test_bad_configs_are_reported_and_others_keep_working() -> None:
    events: list[Any] = []
    manager = MCPManager(
        {
            "missing": {"command": "ml-intern-no-such-server"},
            "empty": {"args": ["x"]},
            "down": {"url": f"http://127.0.0.1:{_free_port()}/mcp", "connect_timeout": 5},
            "demo": _stdio_demo(),
        },
        emit=events.append,
    )
    try:
        started = time.monotonic()
        statuses = {s.name: s for s in await manager.start()}
        assert time.monotonic() - started < 15
        assert statuses["missing"].state == "failed" and "ml-intern-no-such-server" in (
            statuses["missing"].error or ""
        )
        assert statuses["empty"].state == "failed" and "`command`" in (statuses["empty"].error or "")
        assert statuses["down"].state == "failed" and statuses["down"].transport == "http"
        assert statuses["demo"].state == "connected"
        assert {s.source for s in manager.tool_specs()} == {"mcp:demo"}
        notices = [e.log for e in events]
        assert any("'missing' failed" in n for n in notices) and any("'demo' connected" in n for n in notices)
        result = await manager.call_tool("demo", "echo", {"text": "still here"})
        assert result.success and result.output == "still here"
        unavailable = await manager.call_tool("missing", "anything", {})
        assert not unavailable.success and "unavailable" in unavailable.output
    finally:
        await manager.aclose()


async def test_silent_server_times_out_without_holding_up_the_others(tmp_path: Path) -> None:
    marker = tmp_path / "silent.pid"
    silent = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    manager = MCPManager(
        {
            "silent": {"command": sys.executable, "args": ["-c", silent], "connect_timeout": 1},
            "demo": _stdio_demo(),
        }
    )
    try:
        started = time.monotonic()
        statuses = {s.name: s for s in await manager.start()}
        assert time.monotonic() - started < 8
        assert statuses["silent"].state == "failed" and "no answer within 1 s" in (
            statuses["silent"].error or ""
        )
        assert statuses["demo"].state == "connected"
    finally:
        await manager.aclose()
    pid = int(marker.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


async def test_stdio_server_stderr_goes_to_log_file(
    _state_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    manager = MCPManager({"demo": _stdio_demo()})
    try:
        await manager.start()
        assert (await manager.call_tool("demo", "noisy", {})).output == "ok"
    finally:
        await manager.aclose()
    captured = capfd.readouterr()
    assert "STDERR-MARKER" not in captured.err and "STDERR-MARKER" not in captured.out
    log_text = (_state_dir / "mcp-demo.log").read_text()
    assert "STDERR-MARKER server starting" in log_text and "STDERR-MARKER noisy tool" in log_text


async def test_stdio_server_killed_mid_session_then_reconnected() -> None:
    manager = MCPManager({"demo": _stdio_demo()})
    try:
        await manager.start()
        first_pid = int((await manager.call_tool("demo", "pid", {})).output)
        crashed = await manager.call_tool("demo", "crash", {})
        assert not crashed.success and "lost the connection" in crashed.output
        assert manager.status()[0].state == "failed"
        again = await manager.call_tool("demo", "echo", {"text": "back"})
        assert again.success and again.output == "back"
        assert manager.status()[0].state == "connected"
        second_pid = int((await manager.call_tool("demo", "pid", {})).output)
        assert second_pid != first_pid
        status = await manager.reconnect("demo")
        assert status.state == "connected"
        third_pid = int((await manager.call_tool("demo", "pid", {})).output)
        assert third_pid != second_pid
        second_pid = third_pid
        # A server that dies while idle is restarted transparently before the next call.
        os.kill(second_pid, 9)
        await asyncio.sleep(0.3)
        revived = await manager.call_tool("demo", "echo", {"text": "revived"})
        assert revived.success and revived.output == "revived"
    finally:
        await manager.aclose()


async def test_http_server_listed_called_and_reconnected(http_demo: tuple[str, int]) -> None:
    url, _port = http_demo
    manager = MCPManager({"web": {"url": url, "transport": "streamable-http"}})
    try:
        [status] = await manager.start()
        assert status.state == "connected" and status.transport == "http" and "echo" in status.tool_names
        assert (await manager.call_tool("web", "echo", {"text": "over http"})).output == "over http"
    finally:
        await manager.aclose()


async def test_sse_server_listed_and_called() -> None:
    port = _free_port()
    proc = _start([sys.executable, str(HERE), "sse", str(port)], port)
    manager = MCPManager({"legacy": {"url": f"http://127.0.0.1:{port}/sse", "transport": "sse"}})
    try:
        [status] = await manager.start()
        assert status.state == "connected" and status.transport == "sse", status.error
        assert (await manager.call_tool("legacy", "echo", {"text": "over sse"})).output == "over sse"
    finally:
        await manager.aclose()
        _stop(proc)


async def test_http_server_restarted_mid_session() -> None:
    port = _free_port()
    cmd = [sys.executable, str(HERE), "http", str(port)]
    proc = _start(cmd, port)
    manager = MCPManager({"web": {"url": f"http://127.0.0.1:{port}/mcp", "timeout": 10}})
    try:
        await manager.start()
        _stop(proc)
        lost = await manager.call_tool("web", "echo", {"text": "x"})
        assert not lost.success and "web" in lost.output, lost.output
        proc = _start(cmd, port)
        back = await manager.call_tool("web", "echo", {"text": "after restart"})
        assert back.success and back.output == "after restart", back.output
    finally:
        await manager.aclose()
        _stop(proc)


async def test_results_render_images_resources_and_errors() -> None:
    manager = MCPManager({"demo": _stdio_demo()})
    try:
        await manager.start()
        picture = await manager.call_tool("demo", "picture", {})
        assert picture.success
        assert picture.output == f"a picture:\n[image: image/png, {len(PNG_BYTES)} bytes]"
        assert base64.b64decode(picture.data["media"][0]["data"]) == PNG_BYTES
        document = await manager.call_tool("demo", "document", {})
        assert (
            document.output == "# Notes\n[resource: file:///weights.bin (application/octet-stream, 10 bytes)]"
        )
        assert document.data["resources"][1]["uri"] == "file:///weights.bin"
        failed = await manager.call_tool("demo", "fail", {})
        assert not failed.success and "the tool broke on purpose" in failed.output
    finally:
        await manager.aclose()


async def test_call_timeout_and_cancellation() -> None:
    manager = MCPManager({"demo": {**_stdio_demo(), "timeout": 0.5}})
    try:
        await manager.start()
        started = time.monotonic()
        timed_out = await manager.call_tool("demo", "slow", {"seconds": 5})
        assert not timed_out.success and "did not answer within 0.5 s" in timed_out.output
        assert time.monotonic() - started < 3
        task = asyncio.create_task(manager.call_tool("demo", "slow", {"seconds": 5}, timeout_s=30))
        await asyncio.sleep(0.3)
        task.cancel()
        started = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 1
        # The session survives both.
        assert (await manager.call_tool("demo", "echo", {"text": "alive"})).output == "alive"
    finally:
        await manager.aclose()


async def test_name_clash_is_prefixed_and_still_calls_the_right_server() -> None:
    async def builtin_echo(arguments: dict[str, Any], ctx: ToolContext) -> str:
        return "builtin"

    manager = MCPManager({"time": _time_server(), "demo": _stdio_demo()})
    try:
        await manager.start()
        router = ToolRouter([ToolSpec("echo", "builtin echo", {"type": "object"}, builtin_echo)])
        for spec in manager.tool_specs():
            router.register(spec)
        names = router.names()
        assert "echo" in names and "demo__echo" in names
        assert "get_current_time" in names and "demo__get_current_time" in names
        clash, _ = await router.call("demo__get_current_time", {}, _ctx())
        assert clash.output == "demo-time"
        echoed, _ = await router.call("demo__echo", {"text": "from mcp"}, _ctx())
        assert echoed.output == "from mcp"
        assert (await router.call("echo", {}, _ctx()))[0].output == "builtin"
    finally:
        await manager.aclose()


async def test_http_headers_are_only_those_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HF token or other header the config did not name reaches an MCP server."""
    seen: list[dict[str, str]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append({k.decode().lower(): v.decode() for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    import uvicorn

    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    manager = MCPManager({"hub": {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"X-Custom": "yes"}}})
    try:
        [status] = await manager.start()
        assert status.state == "failed"
    finally:
        await manager.aclose()
        server.should_exit = True
        await serving
    assert seen and all(h.get("x-custom") == "yes" for h in seen)
    assert not any("authorization" in h or "hf_secret_value" in str(h) for h in seen)


def test_render_handles_resource_links_and_structured_only() -> None:
    from mcp import types

    result = types.CallToolResult(
        content=[
            types.ResourceLink(
                name="data.csv", uri="file:///data.csv", mime_type="text/csv", type="resource_link"
            )
        ],
    )
    assert render_call_result(result).output == "[resource link: data.csv <file:///data.csv> (text/csv)]"
    structured = types.CallToolResult(content=[], structured_content={"answer": 42})
    rendered = render_call_result(structured)
    assert '"answer": 42' in rendered.output and rendered.data["structured_content"] == {"answer": 42}


needs_everything = pytest.mark.skipif(
    not EVERYTHING_JS.exists() or shutil.which("node") is None,
    reason="@modelcontextprotocol/server-everything is not installed: "
    "run `npm install --no-save --prefix tests @modelcontextprotocol/server-everything`",
)


@needs_everything
async def test_server_everything_over_stdio(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    manager = MCPManager({"everything": {"command": "node", "args": [str(EVERYTHING_JS), "stdio"]}})
    try:
        [status] = await manager.start()
        assert status.state == "connected", status.error
        assert {"echo", "get-sum", "get-tiny-image"} <= set(status.tool_names)
        assert (await manager.call_tool("everything", "echo", {"message": "hi"})).output.endswith("hi")
        assert "5" in (await manager.call_tool("everything", "get-sum", {"a": 2, "b": 3})).output
        image = await manager.call_tool("everything", "get-tiny-image", {})
        assert image.success and "[image: image/png," in image.output and image.data["media"]
        blob = await manager.call_tool(
            "everything", "get-resource-reference", {"resourceType": "Blob", "resourceId": 1}
        )
        assert "[resource: demo://resource/dynamic/blob/1" in blob.output
        env = await manager.call_tool("everything", "get-env", {})
        assert "hf_secret_value" not in env.output
    finally:
        await manager.aclose()


@needs_everything
async def test_server_everything_over_streamable_http() -> None:
    port = _free_port()
    proc = _start(["node", str(EVERYTHING_JS), "streamableHttp"], port, env={**os.environ, "PORT": str(port)})
    manager = MCPManager({"everything": {"url": f"http://127.0.0.1:{port}/mcp", "type": "http"}})
    try:
        [status] = await manager.start()
        assert status.state == "connected", status.error
        result = await manager.call_tool("everything", "get-sum", {"a": 20, "b": 22})
        assert result.success and "42" in result.output
    finally:
        await manager.aclose()
        _stop(proc)
