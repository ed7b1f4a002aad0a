"""A scripted OpenAI-compatible chat-completions server on loopback, for driving the real agent through litellm.

Each POST to `.../chat/completions` consumes one step: a text answer, tool calls, an HTTP error, a stream cut
short, or a hang. When the script runs out the server answers "(script exhausted)" so a test never hangs.

    with ScriptedLLMServer([tool_calls(call("bash", {"command": "ls"})), text("done")]) as server:
        ...  # model "vllm/scripted" with VLLM_BASE_URL=server.base_url

Run it by hand: `python -m tests.harness.scripted_llm --port 8765 --script script.json` or `--echo`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

EXHAUSTED_TEXT = "(script exhausted)"

StepKind = Literal["text", "tool_calls", "http_error", "cut_stream", "hang"]

_ERROR_BODIES: dict[int, dict[str, Any]] = {
    400: {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
        "12000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    },
    401: {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    },
    402: {
        "message": "You have exceeded your monthly included credits.",
        "type": "billing_error",
        "code": 402,
    },
    404: {
        "message": "The model `scripted` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "code": "model_not_found",
    },
    429: {
        "message": "Rate limit reached: too many requests.",
        "type": "rate_limit_error",
        "code": "rate_limit_exceeded",
    },
    500: {"message": "Internal server error.", "type": "server_error", "code": "internal_error"},
    502: {"message": "Bad gateway.", "type": "server_error", "code": "bad_gateway"},
    503: {
        "message": "Service unavailable: the model is overloaded.",
        "type": "server_error",
        "code": "overloaded",
    },
}


@dataclass
class Call:
    """One tool call in a scripted response; `arguments` as a dict is serialised, a string is sent verbatim."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    def arguments_text(self) -> str:
        """Return the arguments exactly as they go on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)


@dataclass
class Step:
    """What the server does for one chat-completions request."""

    kind: StepKind
    content: str = ""
    calls: list[Call] = field(default_factory=list)
    chunk_size: int = 8
    finish_reason: str | None = None
    # {"prompt_tokens": n, "completion_tokens": m}; None means a rough estimate from the sizes involved.
    usage: dict[str, int] | None = None
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    after_chunks: int = 0
    seconds: float = 0.0

    @classmethod
    def from_json(cls, item: dict[str, Any] | str) -> Step:
        """Build a step from a script entry: `"hi"`, `{"text": ...}`, `{"tool_calls": [...]}`,
        `{"http_error": 429, "headers": {...}}`, `{"cut_stream": 3}` or `{"hang": 5}`."""
        if isinstance(item, str):
            return text(item)
        opts = {k: item[k] for k in ("finish_reason", "usage", "delay_s", "chunk_delay_s") if k in item}
        if "text" in item:
            return text(item["text"], chunk_size=item.get("chunk_size", 8), **opts)
        if "tool_calls" in item:
            calls = [call(c["name"], c.get("arguments", {}), id=c.get("id")) for c in item["tool_calls"]]
            return tool_calls(*calls, content=item.get("content", ""), **opts)
        if "http_error" in item:
            return http_error(int(item["http_error"]), headers=item.get("headers"), body=item.get("body"))
        if "cut_stream" in item:
            return cut_stream(int(item["cut_stream"]), content=item.get("content"))
        if "hang" in item:
            return hang(float(item["hang"]))
        raise ValueError(f"unknown script step: {item!r}")


def call(name: str, arguments: dict[str, Any] | str | None = None, *, id: str | None = None) -> Call:
    """Return one tool call for `tool_calls(...)`."""
    return Call(name=name, arguments={} if arguments is None else arguments, id=id)


def text(
    content: str,
    *,
    chunk_size: int = 8,
    finish_reason: str = "stop",
    usage: dict[str, int] | None = None,
    delay_s: float = 0.0,
    chunk_delay_s: float = 0.0,
) -> Step:
    """Answer with plain text, streamed in `chunk_size`-character deltas."""
    return Step(
        "text",
        content=content,
        chunk_size=max(1, chunk_size),
        finish_reason=finish_reason,
        usage=usage,
        delay_s=delay_s,
        chunk_delay_s=chunk_delay_s,
    )


def tool_calls(
    *calls: Call,
    content: str = "",
    finish_reason: str = "tool_calls",
    usage: dict[str, int] | None = None,
    delay_s: float = 0.0,
    chunk_delay_s: float = 0.0,
) -> Step:
    """Answer with one or more (parallel) tool calls, optionally with text before them."""
    return Step(
        "tool_calls",
        content=content,
        calls=list(calls),
        finish_reason=finish_reason,
        usage=usage,
        delay_s=delay_s,
        chunk_delay_s=chunk_delay_s,
    )


def http_error(status: int, *, headers: dict[str, str] | None = None, body: Any = None) -> Step:
    """Fail the request with an HTTP status; `body` defaults to an OpenAI-style error for that status."""
    if body is None:
        error = _ERROR_BODIES.get(status, {"message": f"HTTP {status}", "type": "error", "code": status})
        body = {"error": error}
    return Step("http_error", status=status, headers=dict(headers or {}), body=body)


def context_length_exceeded() -> Step:
    """Fail the request the way OpenAI does when the prompt is longer than the context window."""
    return http_error(400)


def cut_stream(after_chunks: int = 2, *, content: str | None = None) -> Step:
    """Start a streamed text answer, send `after_chunks` SSE chunks, then drop the connection without [DONE]."""
    return Step(
        "cut_stream",
        content=content if content is not None else "This answer is cut off before it ends " * 4,
        after_chunks=after_chunks,
    )


def hang(seconds: float) -> Step:
    """Accept the request and send nothing for `seconds` (then answer "(hang over)")."""
    return Step("hang", seconds=seconds)


@dataclass
class RecordedRequest:
    """One request the server received; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    step: Step | None = None  # the step that answered it (chat completions only)
    exhausted: bool = False  # answered with "(script exhausted)"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Return the chat messages the client sent."""
        return list(self.body.get("messages", [])) if isinstance(self.body, dict) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        """Return the tool schemas the client sent."""
        return list(self.body.get("tools") or []) if isinstance(self.body, dict) else []


Responder = Callable[[dict[str, Any]], "Step | str"]


def echo_responder(body: dict[str, Any]) -> Step:
    """Answer every prompt with the text of the last user message."""
    last = ""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
            last = str(content or "")
            break
    return text(f"echo: {last}")


def _estimate_tokens(value: Any) -> int:
    raw = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return max(1, len(raw) // 4)


def _split(value: str, size: int) -> list[str]:
    return [value[i : i + size] for i in range(0, len(value), size)] or [""]


class ScriptedLLMServer:
    """A loopback OpenAI-compatible server answering from a script; usable from sync and async tests."""

    def __init__(self, steps: list[Step] | None = None, responder: Responder | None = None) -> None:
        self._steps: list[Step] = list(steps or [])
        self.responder = responder
        self.requests: list[RecordedRequest] = []
        self.exhausted_count = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        handler = type("_BoundHandler", (_Handler,), {"server_ref": self})
        self._httpd = _QuietServer((host, port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="scripted-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging or delayed responses are released at once."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """Return the bound port."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """Return the OpenAI base URL, `http://127.0.0.1:PORT/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- script ------------------------------------------------------------------------------------

    def add(self, *steps: Step | str) -> None:
        """Append steps (a bare string is a text step)."""
        with self._lock:
            self._steps.extend(text(s) if isinstance(s, str) else s for s in steps)

    @property
    def remaining(self) -> int:
        """Return how many scripted steps are still unused."""
        with self._lock:
            return len(self._steps)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Return only the chat-completions requests, in order."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` chat requests arrived; return whether they did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.chat_requests) >= count:
                return True
            time.sleep(0.01)
        return len(self.chat_requests) >= count

    def _next_step(self, record: RecordedRequest) -> Step:
        with self._lock:
            if self._steps:
                step = self._steps.pop(0)
            elif self.responder is not None:
                step = None
            else:
                step = text(EXHAUSTED_TEXT)
                record.exhausted = True
                self.exhausted_count += 1
        if step is None:
            assert self.responder is not None
            answer = self.responder(record.body if isinstance(record.body, dict) else {})
            step = text(answer) if isinstance(answer, str) else answer
        record.step = step
        return step

    def _record(self, record: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(record)

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; return True if it is."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def _next_id(self) -> int:
        return next(self._ids)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are expected (interrupts, cut streams); never print tracebacks."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_ref: ScriptedLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: the server runs inside test processes and the TUI's terminal."""

    # -- routing -----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record_request(None)
        if self.path.rstrip("/").endswith("/models"):
            data = [{"id": "scripted", "object": "model", "created": 0, "owned_by": "ml-intern-tests"}]
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        record = self._record_request(body)
        if not self.path.split("?")[0].rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        server = self.server_ref
        step = server._next_step(record)
        request = body if isinstance(body, dict) else {}
        try:
            self._answer(step, request)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _record_request(self, body: Any) -> RecordedRequest:
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = RecordedRequest(method=self.command, path=self.path, headers=headers, body=body)
        self.server_ref._record(record)
        return record

    # -- answers -----------------------------------------------------------------------------------

    def _answer(self, step: Step, request: dict[str, Any]) -> None:
        server = self.server_ref
        if step.kind == "hang":
            if server._wait(step.seconds):
                self._drop()
                return
            step = text("(hang over)")
        if step.delay_s and server._wait(step.delay_s):
            self._drop()
            return
        if step.kind == "http_error":
            self._send_json(step.status, step.body, step.headers)
            return
        stream = bool(request.get("stream"))
        if stream:
            self._stream(step, request)
        else:
            self._complete(step, request)

    def _usage(self, step: Step, request: dict[str, Any]) -> dict[str, int]:
        if step.usage is not None:
            prompt = int(step.usage.get("prompt_tokens", 0))
            completion = int(step.usage.get("completion_tokens", 0))
        else:
            prompt = _estimate_tokens(request.get("messages", [])) + (
                _estimate_tokens(request["tools"]) if request.get("tools") else 0
            )
            completion = _estimate_tokens(
                step.content + "".join(c.name + c.arguments_text() for c in step.calls)
            )
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _call_ids(self, step: Step, response_id: int) -> list[str]:
        return [c.id or f"call_{response_id}_{i}" for i, c in enumerate(step.calls)]

    def _complete(self, step: Step, request: dict[str, Any]) -> None:
        response_id = self.server_ref._next_id()
        message: dict[str, Any] = {"role": "assistant", "content": step.content or None}
        if step.calls:
            message["tool_calls"] = [
                {"id": cid, "type": "function", "function": {"name": c.name, "arguments": c.arguments_text()}}
                for cid, c in zip(self._call_ids(step, response_id), step.calls, strict=True)
            ]
        payload = {
            "id": f"chatcmpl-{response_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": step.finish_reason or "stop"}],
            "usage": self._usage(step, request),
        }
        if step.kind == "cut_stream":
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self._drop()
            return
        self._send_json(200, payload)

    def _stream(self, step: Step, request: dict[str, Any]) -> None:
        server = self.server_ref
        response_id = server._next_id()
        base = {
            "id": f"chatcmpl-{response_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": request.get("model", "scripted"),
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        chunks: list[dict[str, Any]] = []
        pieces = _split(step.content, step.chunk_size) if step.content else []
        for i, piece in enumerate(pieces):
            chunks.append(chunk({"role": "assistant", "content": piece} if i == 0 else {"content": piece}))
        for index, (cid, c) in enumerate(zip(self._call_ids(step, response_id), step.calls, strict=True)):
            arguments = c.arguments_text()
            # Split mid-string, as real providers do, so the client must concatenate deltas by index.
            parts = _split(arguments, max(1, len(arguments) // 3 + 1)) if arguments else [""]
            head = {
                "index": index,
                "id": cid,
                "type": "function",
                "function": {"name": c.name, "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [head]}
            if not chunks:
                delta = {"role": "assistant", "content": None, **delta}
            chunks.append(chunk(delta))
            for part in parts:
                chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]}))
        if not chunks:
            chunks.append(chunk({"role": "assistant", "content": ""}))

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        if step.kind == "cut_stream":
            for item in chunks[: step.after_chunks]:
                self._sse(item)
            self._drop()
            return
        for i, item in enumerate(chunks):
            if i and step.chunk_delay_s and server._wait(step.chunk_delay_s):
                self._drop()
                return
            self._sse(item)
        self._sse(chunk({}, step.finish_reason or "stop"))
        options = request.get("stream_options") or {}
        if options.get("include_usage"):
            self._sse({**base, "choices": [], "usage": self._usage(step, request)})
        self._write_chunk(b"data: [DONE]\n\n")
        self._write_chunk(b"")  # end of the chunked body

    # -- wire helpers ------------------------------------------------------------------------------

    def _sse(self, payload: dict[str, Any]) -> None:
        self._write_chunk(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        """Close the socket mid-response, the way a crashed or restarted server does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def load_script(path: str) -> list[Step]:
    """Read a JSON list of steps (see `Step.from_json`)."""
    with open(path, encoding="utf-8") as handle:
        items = json.load(handle)
    if not isinstance(items, list):
        raise SystemExit(f"{path}: the script must be a JSON list of steps")
    return [Step.from_json(item) for item in items]


def main(argv: list[str] | None = None) -> int:
    """Serve a script (or echo every prompt) until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.harness.scripted_llm", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--script", help='JSON list of steps, e.g. ["hi", {"tool_calls": [...]}, {"hang": 5}]'
    )
    parser.add_argument("--echo", action="store_true", help="answer every prompt with its own text")
    args = parser.parse_args(argv)
    steps = load_script(args.script) if args.script else []
    server = ScriptedLLMServer(steps, responder=echo_responder if args.echo else None)
    server.start(args.host, args.port)
    print(
        f"scripted LLM serving on http://{args.host}:{server.port}/v1 (model id: vllm/scripted)", flush=True
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
