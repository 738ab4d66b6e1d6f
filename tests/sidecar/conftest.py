"""Fixtures for the sidecar suite: real ``python -m sessionwatch.sidecar`` processes.

The contract tests put the sidecar in front of the real reference server (``python -m
sessionwatch.server``) and of real peers (tests/peers). The transport tests need an upstream that
does one HTTP thing at a time on cue (write an SSE event, wait, read a body chunk, name the headers
it got): :class:`ProbeUpstream`, a plain ASGI app under a real uvicorn in a thread. It models no
MCP behaviour and no failure; it only records what reached it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from lab.forkserver import ForkServer
from lab.task_process import ServerTask


def sidecar(
    upstream: str,
    *args: str,
    env: dict[str, str] | None = None,
    forkserver: ForkServer | None = None,
) -> ServerTask:
    """A sidecar process on a free port in front of ``upstream`` (not started), forked from
    ``forkserver`` when given (``task_forks``), else ``python -m sessionwatch.sidecar``."""
    return ServerTask(
        env={"SESSIONWATCH_DRAIN_SECONDS": "0", **(env or {})},
        args=["--upstream", upstream, *args],
        module="sessionwatch.sidecar",
        forkserver=forkserver,
    )


class ProbeUpstream:
    """An ASGI upstream that records what it received and answers by path:

    - ``/sse?n=N&gap=S``: an SSE response of N events S seconds apart, then a long wait (until the
      client goes away, which it records);
    - ``/echo``: records each request body chunk with its arrival time, answers the total length
      with status 201, a hop-by-hop ``Connection``/``Keep-Alive`` pair, and two ``x-dup`` headers;
    - anything else: 200 with the request headers it saw, as JSON.
    """

    def __init__(self) -> None:
        self.chunks: list[tuple[float, int]] = []
        self.seen_headers: list[tuple[str, str]] = []
        self.client_ports: list[int] = []  # the sidecar's side of each request's connection
        self.disconnected = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, lifespan="off", access_log=False, interface="asgi3"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProbeUpstream:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "probe upstream did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        self.client_ports.append(scope["client"][1])
        self.seen_headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        if path == "/sse":
            query = dict(p.split("=") for p in scope["query_string"].decode().split("&") if p)
            await self._sse(int(query.get("n", "3")), float(query.get("gap", "0.3")), receive, send)
        elif path == "/echo":
            total = 0
            while True:
                message = await receive()
                body = message.get("body", b"")
                self.chunks.append((time.monotonic(), len(body)))
                total += len(body)
                if not message.get("more_body", False):
                    break
            await send(
                {
                    "type": "http.response.start",
                    "status": 201,
                    "headers": [
                        (b"content-type", b"text/plain"),
                        (b"connection", b"keep-alive, x-secret-hop"),
                        (b"x-secret-hop", b"1"),
                        (b"keep-alive", b"timeout=5"),
                        (b"x-dup", b"one"),
                        (b"x-dup", b"two"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": str(total).encode()})
        else:
            body = json.dumps(self.seen_headers).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    async def _sse(self, n: int, gap: float, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        for i in range(n):
            line = f"event: message\ndata: {i}\n\n".encode()
            await send({"type": "http.response.body", "body": line, "more_body": True})
            await asyncio.sleep(gap)

        async def hangup() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()

        await hangup()  # held open, as an MCP GET stream is, until the client goes away


@pytest.fixture
def probe_upstream() -> Iterator[ProbeUpstream]:
    with ProbeUpstream() as upstream:
        yield upstream
