"""The one way the fakes run: a threaded HTTP server on 127.0.0.1 with a free port, as a context manager."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """Subclasses return their request handler from `_handler_class`; `url` works before and after start."""

    thread_name = "loopback-server"
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _bind(self) -> ThreadingHTTPServer:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
            self._server.daemon_threads = True
        return self._server

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234."""
        host, port = self._bind().server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        """Serve in a daemon thread (idempotent)."""
        server = self._bind()
        if self._thread is None:
            self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True, name=self.thread_name)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
