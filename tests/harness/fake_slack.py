"""A loopback fake of Slack's `chat.postMessage` (point `SLACK_API_URL` at `fake.url`).

Valid tokens are listed in `tokens`; `fail_next` queues (status, body, headers) answers served before normal
ones, to exercise retries. Every accepted post is kept in `messages`, every request in `requests`.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.harness.loopback import LoopbackServer

TOKEN = "xoxb-fake-token"


class FakeSlack(LoopbackServer):
    """Threaded HTTP server on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self.tokens = {TOKEN}
        self.channels = {"C123", "C456", "alerts"}
        self.messages: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[tuple[int, dict[str, Any] | str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def answer(
        self, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        """Decide the response to one POST."""
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            payload = {}
        with self._lock:
            self.requests.append({"path": path, "headers": headers, "payload": payload})
            if self.fail_next:
                return self.fail_next.pop(0)
        if path != "/chat.postMessage":
            return 404, {"ok": False, "error": "unknown_method"}, {}
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if payload.get("channel") not in self.channels:
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        with self._lock:
            self.messages.append(payload)
            ts = f"1700000000.{len(self.messages):06d}"
        return 200, {"ok": True, "channel": payload["channel"], "ts": ts}, {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, extra = fake.answer(self.path, headers, body)
                payload = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

        return Handler
