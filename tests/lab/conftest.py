"""Lab test fixtures: real SDK MCP servers (uvicorn in a thread) on free loopback ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from mcp.server import MCPServer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lab.forkserver import ForkServer
from lab.suite import lab_forkserver
from tests.requirements import require
from tests.run_once import run_once


def _with_task_header(app: ASGIApp, task_id: str) -> ASGIApp:
    """Answer /health and stamp X-Mcp-Task-Id on every response, as a real task does."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/health":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-mcp-task-id", task_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await app(scope, receive, send_with_header)

    return wrapped


@dataclass
class SdkServer:
    task_id: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_sdk_server(task_id: str) -> SdkServer:
    """A stateful MCPServer with the probe's two tools, under uvicorn on a free port."""
    mcp = MCPServer("lab-test")
    values: list[str] = []

    @mcp.tool()
    def set_session_value(key: str, value: str) -> str:
        values.append(value)
        return task_id

    @mcp.tool()
    def get_session_state() -> list[str]:
        return list(values)

    app = _with_task_header(mcp.streamable_http_app(stateless_http=False, host="0.0.0.0"), task_id)  # noqa: S104 - Host check off, bound below to 127.0.0.1
    return serve_in_thread(app, task_id)


def serve_in_thread(app: ASGIApp, task_id: str) -> SdkServer:
    """Run ``app`` under uvicorn in a daemon thread on a loopback port the OS picks.

    uvicorn binds port 0 itself and the port is read back from its listening socket, so no other
    process can take the port between choosing and binding it (tests run in parallel here). A
    server that does not start within 10 s is told to exit before the error is raised.
    """
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"test MCP server {task_id} did not start")
        time.sleep(0.02)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    return SdkServer(task_id=task_id, port=port, server=server, thread=thread)


@pytest.fixture(scope="module")
def sdk_servers() -> Iterator[Callable[[str], SdkServer]]:
    """Factory for SDK servers; every server started through it is stopped at module end."""
    started: list[SdkServer] = []

    def make(task_id: str) -> SdkServer:
        srv = start_sdk_server(task_id)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def lab_forks() -> Iterator[ForkServer]:
    """The test process's lab runs fork from one interpreter that imported the lab once."""
    with lab_forkserver() as forks:
        yield forks


@pytest.fixture(scope="session")
def addon_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The add-on stack synthesized once per test run with the lab's settings (~8 s), shared by
    the parallel workers."""
    from lab.template import LabSettings, synth_addon

    require("node")
    return run_once(
        tmp_path_factory, "lab-addon-template", lambda d: synth_addon(d / "cdk.out", LabSettings())
    )
