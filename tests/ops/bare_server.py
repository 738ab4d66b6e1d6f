"""The real reference server without SessionWatch's instrumentation: no ``X-Mcp-Task-Id`` header.

What a probe meets in front of a server that never adopted the middleware; its tools (``whoami``
included) still name their task in their results. In-process uvicorn on a free loopback port.
"""

from __future__ import annotations

import threading
import time

import uvicorn

from server.app import build_app, build_mcp_server
from server.identity import TaskIdentity
from tests.lab.conftest import SdkServer, free_port


def start_bare_reference_server(task_id: str) -> SdkServer:
    """``server.app`` exactly as ``python -m server`` builds it, minus ``instrument()``."""
    app = build_app(build_mcp_server(TaskIdentity(task_id=task_id)), session_idle_timeout=None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("reference server did not start")
        time.sleep(0.02)
    return SdkServer(task_id=task_id, port=port, server=server, thread=thread)
