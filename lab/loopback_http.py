"""A small stdlib HTTP service on a free loopback port, served from a daemon thread.

The lab's in-process stand-ins (the ECS task metadata endpoint, the OTLP receiver) differ only in
how they answer; their lifecycle is the same and lives here once: bind ``127.0.0.1:0`` so the OS
picks the port (parallel runs never collide, nothing is reachable from outside), serve from a
daemon thread so a forgotten stop never blocks interpreter exit, stop idempotently, and work as a
context manager. A subclass supplies its request handler class and a thread name.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that answers with one complete body and writes no access log.

    The stdlib handler logs every request to stderr, which would bury test and lab output.
    """

    def send_body(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LoopbackHTTPService:
    """Start/stop/context-manager for a ``ThreadingHTTPServer`` bound to ``127.0.0.1:0``."""

    thread_name: ClassVar[str] = "loopback-http"
    _server: ThreadingHTTPServer | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        """The handler that answers this service's requests (it may close over ``self``)."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The port the OS assigned; only known once started."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return int(self._server.server_address[1])

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class())
        server.daemon_threads = True  # a handler still running (a hang mode) never blocks exit
        threading.Thread(target=server.serve_forever, name=self.thread_name, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice or before ``start``."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
