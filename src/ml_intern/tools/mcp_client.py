"""MCP servers as tools: one long-lived task per server, a status for `/mcp`, reconnection on the next use."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self, TextIO

from ml_intern.core.tools import Risk, ToolContext, ToolResult, ToolSpec

if TYPE_CHECKING:
    from ml_intern.core.events import Event

DEFAULT_CONNECT_TIMEOUT_S = 30.0
DEFAULT_CALL_TIMEOUT_S = 300.0
MAX_DESCRIPTION_CHARS = 1024
_TOOL_NAME_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

Transport = Literal["stdio", "http", "sse"]
ServerState = Literal["connecting", "connected", "failed", "stopped"]


class MCPConfigError(ValueError):
    """A server entry in `mcpServers` cannot be used; the message says why."""


@dataclass
class ServerStatus:
    """What `/mcp` shows about one configured server."""

    name: str
    transport: str
    state: ServerState
    error: str | None = None
    tool_names: list[str] = field(default_factory=list)


@dataclass
class _ServerConfig:
    """A validated `mcpServers` entry."""

    transport: Transport
    command: str = ""
    args: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S


def parse_server_config(name: str, raw: Any) -> _ServerConfig:
    """Validate one server entry in the ancestor's format (stdio `command`... or http `url`...)."""
    if not isinstance(raw, dict):
        raise MCPConfigError(f"mcpServers.{name} must be an object")
    timeouts = {
        "connect_timeout_s": _positive_number(name, raw, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_S),
        "call_timeout_s": _positive_number(name, raw, "timeout", DEFAULT_CALL_TIMEOUT_S),
    }
    kind = str(raw.get("transport") or raw.get("type") or "").lower().replace("_", "-")
    if raw.get("command") is not None or kind == "stdio":
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            raise MCPConfigError(f"mcpServers.{name}: stdio servers need a non-empty `command`")
        args = raw.get("args") or []
        if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
            raise MCPConfigError(f"mcpServers.{name}.args must be a list of strings")
        env = raw.get("env")
        if env is not None and not isinstance(env, dict):
            raise MCPConfigError(f"mcpServers.{name}.env must be an object")
        cwd = raw.get("cwd")
        return _ServerConfig(
            transport="stdio",
            command=command,
            args=[str(a) for a in args],
            env={str(k): str(v) for k, v in env.items()} if env else None,
            cwd=str(Path(cwd).expanduser()) if cwd else None,
            **timeouts,
        )
    url = raw.get("url")
    if not isinstance(url, str) or not url.strip():
        raise MCPConfigError(f"mcpServers.{name}: give a `command` (stdio server) or a `url` (http server)")
    if not url.startswith(("http://", "https://")):
        raise MCPConfigError(f"mcpServers.{name}.url must start with http:// or https://")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        raise MCPConfigError(f"mcpServers.{name}.headers must be an object")
    if kind in ("", "http", "streamable-http", "streamablehttp"):
        transport: Transport = "http"
    elif kind == "sse":
        transport = "sse"
    else:
        raise MCPConfigError(
            f"mcpServers.{name}.transport must be stdio, http, streamable-http or sse, not {kind!r}"
        )
    return _ServerConfig(
        transport=transport, url=url, headers={str(k): str(v) for k, v in headers.items()}, **timeouts
    )


def _positive_number(name: str, raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise MCPConfigError(f"mcpServers.{name}.{key} must be a positive number of seconds")
    return float(value)


def render_call_result(result: Any) -> ToolResult:
    """Turn an MCP CallToolResult into text for the model; binary payloads stay in `data`."""
    parts: list[str] = []
    images: list[dict[str, Any]] = []
    resources: list[dict[str, Any]] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = _b64_size(block.data)
            parts.append(f"[{kind}: {block.mime_type}, {size} bytes]")
            images.append({"type": kind, "mime_type": block.mime_type, "data": block.data})
        elif kind == "resource":
            resource = block.resource
            uri, mime = str(resource.uri), resource.mime_type or "unknown type"
            text = getattr(resource, "text", None)
            if text is not None:
                parts.append(text)
                resources.append({"uri": uri, "mime_type": resource.mime_type, "text": text})
            else:
                blob = getattr(resource, "blob", "") or ""
                parts.append(f"[resource: {uri} ({mime}, {_b64_size(blob)} bytes)]")
                resources.append({"uri": uri, "mime_type": resource.mime_type, "blob": blob})
        elif kind == "resource_link":
            label = block.title or block.name
            parts.append(
                f"[resource link: {label} <{block.uri}>"
                + (f" ({block.mime_type})]" if block.mime_type else "]")
            )
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False, indent=2))
    data: dict[str, Any] = {}
    if images:
        data["media"] = images
    if resources:
        data["resources"] = resources
    if result.structured_content is not None:
        data["structured_content"] = result.structured_content
    output = "\n".join(parts) if parts else "(no output)"
    return ToolResult(output=output, success=not result.is_error, data=data)


def _b64_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (ValueError, TypeError):
        return len(data) * 3 // 4


class _Connection:
    """One server: its session lives in a dedicated task that enters and exits every context manager."""

    def __init__(self, name: str, config: _ServerConfig | None, problem: str | None, log_path: Path) -> None:
        self.name = name
        self.config = config
        self.transport = config.transport if config else "unknown"
        self.state: ServerState = "failed" if problem else "stopped"
        self.error = problem
        self.tools: list[Any] = []  # mcp Tool models from the last listing
        self.session: Any = None
        self.log_path = log_path
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock = asyncio.Lock()

    def status(self) -> ServerStatus:
        return ServerStatus(self.name, self.transport, self.state, self.error, [t.name for t in self.tools])

    def session_is_closed(self) -> bool:
        """Whether the live session's stream has ended (the server exited while idle)."""
        if self.session is None or self._task is None or self._task.done():
            return True
        # The SDK has no public flag; its dispatcher sets `_closed` at EOF. If that changes, assume open.
        dispatcher = getattr(self.session, "_dispatcher", None)
        return bool(getattr(dispatcher, "_closed", False))

    async def connect(self) -> None:
        """(Re)start the session task and wait until it lists tools or fails; raise on failure."""
        if self.config is None:
            raise ConnectionError(self.error or "invalid configuration")
        async with self._lock:
            if self.state == "connected" and not self.session_is_closed():
                return
            await self._stop_task()
            self.state, self.error = "connecting", None
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._task = asyncio.create_task(self._run(ready, self._stop), name=f"mcp:{self.name}")
            try:
                await asyncio.wait_for(asyncio.shield(ready), self.config.connect_timeout_s)
            except TimeoutError:
                await self._stop_task(cancel=True)
                self.mark_failed(f"no answer within {self.config.connect_timeout_s:g} s")
                raise ConnectionError(self.error) from None
            except asyncio.CancelledError:
                await self._stop_task()
                self.state = "stopped"
                raise
            except Exception as exc:  # noqa: BLE001 - any failure to start is reported, not raised
                await self._stop_task()
                self.mark_failed(describe_exception(exc))
                raise ConnectionError(self.error) from None
            finally:
                if ready.done() and not ready.cancelled():
                    ready.exception()  # a failure that lands after a timeout is still "retrieved"
            self.state = "connected"

    async def _run(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        from mcp.client.session import ClientSession
        from mcp.types import Implementation

        from ml_intern import __version__

        client_info = Implementation(name="ml-intern", version=__version__)
        errlog = await asyncio.to_thread(self._open_log)
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._open_transport(errlog))
                session = await stack.enter_async_context(ClientSession(read, write, client_info=client_info))
                await session.initialize()
                self.tools = await _list_all_tools(session)
                self.session = session
                ready.set_result(None)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to connect() or recorded as the state
            if not ready.done():
                ready.set_exception(exc)
            elif not stop.is_set():
                self.mark_failed(f"connection lost: {describe_exception(exc)}")
        finally:
            self.session = None
            errlog.close()

    def _open_log(self) -> TextIO:
        log = open(self.log_path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed by _run
        log.write(f"--- ml-intern: starting MCP server {self.name} ({self.transport})\n")
        return log

    def _open_transport(self, errlog: TextIO) -> contextlib.AbstractAsyncContextManager[Any]:
        config = self.config
        assert config is not None
        if config.transport == "stdio":
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=config.command, args=config.args, env=config.env, cwd=config.cwd
            )
            return stdio_client(params, errlog=errlog)
        if config.transport == "sse":
            from mcp.client.sse import sse_client

            # Only the headers the config names are sent; nothing (no HF token) is added.
            return sse_client(config.url, headers=config.headers or None, timeout=config.connect_timeout_s)
        return _streamable_http(config.url, config.headers, config.connect_timeout_s)

    def mark_failed(self, error: str) -> None:
        self.state, self.error = "failed", error

    async def _stop_task(self, *, cancel: bool = False) -> None:
        task, stop = self._task, self._stop
        self._task = self._stop = None
        self.session = None
        if task is None:
            return
        if stop is not None:
            stop.set()
        if cancel:  # still starting up: nothing waits on `stop` yet
            task.cancel()
        # asyncio.wait never raises the task's outcome; _run records failures itself.
        done, _ = await asyncio.wait({task}, timeout=5.0)
        if not done:
            task.cancel()
            await asyncio.wait({task})

    async def close(self) -> None:
        async with self._lock:
            await self._stop_task()
            if self.config is not None:
                self.state, self.error = "stopped", None


@contextlib.asynccontextmanager
async def _streamable_http(url: str, headers: dict[str, str], connect_timeout_s: float) -> Any:
    import httpx2
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, create_mcp_http_client

    timeout = httpx2.Timeout(connect_timeout_s, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
    async with (
        create_mcp_http_client(headers=headers or None, timeout=timeout) as http_client,
        streamable_http_client(url, http_client=http_client) as streams,
    ):
        yield streams[0], streams[1]


async def _list_all_tools(session: Any) -> list[Any]:
    from mcp.types import PaginatedRequestParams

    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(100):  # a server that never stops paginating is not our problem beyond this
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        listing = await session.list_tools(params=params)
        tools.extend(listing.tools)
        cursor = listing.next_cursor
        if not cursor:
            break
    return tools


def describe_exception(exc: BaseException) -> str:
    """One readable line for a connection failure, unwrapping task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return f"command not found: {exc.filename or exc}"
    if type(exc).__name__ == "MCPError" and str(exc) == "Connection closed":
        return "the server closed the connection"
    text = str(exc).strip() or type(exc).__name__
    name = type(exc).__name__
    return text if name in text or name in ("MCPError", "ConnectionError") else f"{name}: {text}"


def _is_connection_error(exc: BaseException) -> bool:
    from mcp.shared.exceptions import MCPError
    from mcp.types import CONNECTION_CLOSED

    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED or "session terminated" in exc.message.lower()
    return True


class MCPManager:
    """Connects the configured MCP servers and exposes their tools as ToolSpecs."""

    def __init__(
        self, servers: dict[str, dict[str, Any]], emit: Callable[[Event], None] | None = None
    ) -> None:
        from ml_intern import paths

        self._emit = emit
        logs = paths.logs_dir()
        self._connections: dict[str, _Connection] = {}
        for name, raw in (servers or {}).items():
            config: _ServerConfig | None
            try:
                config, problem = parse_server_config(name, raw), None
            except MCPConfigError as exc:
                config, problem = None, str(exc)
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            self._connections[name] = _Connection(name, config, problem, logs / f"mcp-{safe}.log")

    @property
    def server_names(self) -> list[str]:
        """Names of every configured server."""
        return list(self._connections)

    async def start(self) -> list[ServerStatus]:
        """Connect every server concurrently; failures are reported, never raised."""
        await asyncio.gather(*(self._connect_and_report(c) for c in self._connections.values()))
        return self.status()

    async def _connect_and_report(self, conn: _Connection) -> None:
        if conn.config is None:
            self._notice(f"MCP server '{conn.name}' skipped: {conn.error}")
            return
        try:
            await conn.connect()
        except ConnectionError:
            self._notice(f"MCP server '{conn.name}' failed to connect: {conn.error} (log: {conn.log_path})")
            return
        self._notice(f"MCP server '{conn.name}' connected ({len(conn.tools)} tools)")

    async def reconnect(self, name: str) -> ServerStatus:
        """Restart one server's session now (for `/mcp reconnect NAME`); failures show in the status."""
        conn = self._connections.get(name)
        if conn is None:
            raise KeyError(name)
        if conn.config is not None:
            await conn.close()
        await self._connect_and_report(conn)
        return conn.status()

    def _notice(self, text: str) -> None:
        if self._emit is None:
            return
        from ml_intern.core.events import ToolLog

        with contextlib.suppress(Exception):
            self._emit(ToolLog(tool="system", log=text))

    def status(self) -> list[ServerStatus]:
        """Every server's state, error and tools, in configuration order."""
        return [conn.status() for conn in self._connections.values()]

    def tool_specs(self) -> list[ToolSpec]:
        """ToolSpecs for every tool of every connected server (names as the server gives them)."""
        specs: list[ToolSpec] = []
        for conn in self._connections.values():
            for tool in conn.tools:
                specs.append(self._spec_for(conn.name, tool))
        return specs

    def _spec_for(self, server: str, tool: Any) -> ToolSpec:
        remote_name: str = tool.name
        name = (
            remote_name
            if _TOOL_NAME_OK.match(remote_name)
            else re.sub(r"[^A-Za-z0-9_-]", "_", remote_name)[:64]
        )
        description = (
            tool.description or tool.title or f"Tool '{remote_name}' from MCP server '{server}'."
        ).strip()
        if len(description) > MAX_DESCRIPTION_CHARS:
            description = description[: MAX_DESCRIPTION_CHARS - 1].rstrip() + "…"
        schema = dict(tool.input_schema or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})

        async def handler(arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
            return await self.call_tool(server, remote_name, arguments)

        return ToolSpec(
            name=name,
            description=description,
            parameters=schema,
            handler=handler,
            risk=Risk.EXTERNAL,
            source=f"mcp:{server}",
            read_only=False,
            undoable=False,
        )

    async def call_tool(
        self, server: str, tool: str, arguments: dict[str, Any], timeout_s: float | None = None
    ) -> ToolResult:
        """Call one tool; connection loss, timeouts and server errors become error results."""
        conn = self._connections.get(server)
        if conn is None or conn.config is None:
            reason = conn.error if conn else "not configured"
            return ToolResult(f"ERROR: MCP server '{server}' is unavailable: {reason}.", success=False)
        if conn.state != "connected" or conn.session_is_closed():
            try:
                await conn.connect()
            except ConnectionError:
                return ToolResult(
                    f"ERROR: MCP server '{server}' is unavailable: {conn.error}. Log: {conn.log_path}",
                    success=False,
                )
            self._notice(f"MCP server '{server}' reconnected")
        session = conn.session
        timeout = timeout_s or conn.config.call_timeout_s
        from mcp.shared.exceptions import MCPError
        from mcp.types import REQUEST_TIMEOUT

        try:
            result = await asyncio.wait_for(
                session.call_tool(tool, arguments, read_timeout_seconds=timeout), timeout + 1.0
            )
        except TimeoutError:
            return self._timed_out(server, tool, timeout)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                return self._timed_out(server, tool, timeout)
            if _is_connection_error(exc):
                return self._lost(conn, exc)
            return ToolResult(f"ERROR: MCP server '{server}' refused '{tool}': {exc.message}", success=False)
        except Exception as exc:
            if _is_connection_error(exc):
                return self._lost(conn, exc)
            raise
        return render_call_result(result)

    @staticmethod
    def _timed_out(server: str, tool: str, timeout: float) -> ToolResult:
        return ToolResult(
            f"ERROR: MCP tool '{tool}' on '{server}' did not answer within {timeout:g} s.", success=False
        )

    def _lost(self, conn: _Connection, exc: BaseException) -> ToolResult:
        conn.mark_failed(f"connection lost: {describe_exception(exc)}")
        self._notice(f"MCP server '{conn.name}' disconnected: {conn.error}")
        return ToolResult(
            f"ERROR: lost the connection to MCP server '{conn.name}' during the call "
            f"({describe_exception(exc)}). The call may not have completed; "
            "the server is restarted on the next call.",
            success=False,
        )

    async def aclose(self) -> None:
        """Stop every server session (terminating stdio subprocesses)."""
        await asyncio.gather(*(conn.close() for conn in self._connections.values()), return_exceptions=True)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
