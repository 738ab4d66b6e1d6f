"""The real reference server without SessionWatch's instrumentation: no ``X-Mcp-Task-Id`` header.

What a probe meets in front of a server that never adopted the middleware; its tools (``whoami``
included) still name their task in their results. In-process uvicorn on a free loopback port.
"""

from __future__ import annotations

from sessionwatch.server.app import build_app, build_mcp_server
from sessionwatch.server.identity import TaskIdentity
from tests.lab.conftest import SdkServer, serve_in_thread


def start_bare_reference_server(task_id: str) -> SdkServer:
    """``server.app`` exactly as ``python -m server`` builds it, minus ``instrument()``."""
    app = build_app(build_mcp_server(TaskIdentity(task_id=task_id)), session_idle_timeout=None)
    return serve_in_thread(app, task_id)
