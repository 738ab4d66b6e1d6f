"""The reference stateful MCP server: per-session state in task memory, like the experiment's.

Its tools make session loss observable from the client side: ``set_session_value`` stores a value
in the session, ``get_session_state`` reads it back (empty after a session was re-created on
another task), ``whoami`` names the task that answered. ``/health`` answers in the same process
and port as ``/mcp`` (an ALB target group health check).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sessionwatch.server.identity import TaskIdentity

MAX_SESSIONS = 10_000  # the SDK's default session limit: never more live sessions than this


class SessionStore:
    """Per-session values in this task's memory, keyed by the ``mcp-session-id`` header.

    The SDK's public tool context exposes the request headers but no per-session scratch space,
    so state is keyed by session id; the least recently used entry goes once ``max_sessions``
    are held, so sessions the SDK expired cannot pile up. A request without a session (a
    2026-07-28 client, served sessionless) gets a fresh, unstored dict: there is no session to
    keep its values in, and one shared bucket would let one client read what another stored.
    """

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self._values: OrderedDict[str, dict[str, str]] = OrderedDict()
        self._max = max_sessions

    def values(self, ctx: Context) -> dict[str, str]:
        headers = ctx.headers or {}
        session_id = headers.get("mcp-session-id")
        if not session_id:
            return {}  # sessionless: nothing is kept, nothing is shared
        values = self._values.pop(session_id, None) or {}
        self._values[session_id] = values
        while len(self._values) > self._max:
            self._values.popitem(last=False)
        return values

    @staticmethod
    def has_session(ctx: Context) -> bool:
        return bool((ctx.headers or {}).get("mcp-session-id"))


def build_mcp_server(identity: TaskIdentity) -> MCPServer:
    """The MCP server with the reference tools and the health route."""
    mcp: MCPServer = MCPServer(name="sessionwatch-reference", version="1")
    store = SessionStore()

    @mcp.tool()
    def set_session_value(key: str, value: str, ctx: Context) -> dict[str, str]:
        """Store ``value`` under ``key`` in this session's in-memory state."""
        values = store.values(ctx)
        values[key] = value
        kept = "true" if store.has_session(ctx) else "false"
        return {"task_id": identity.task_id, "key": key, "size": str(len(value)), "kept": kept}

    @mcp.tool()
    def get_session_state(ctx: Context) -> dict[str, Any]:
        """Everything stored in this session so far, and the task holding it."""
        values = store.values(ctx)
        # Large values are summarised: the point is to show the state survived, not to echo it.
        shown = {k: v if len(v) <= 1024 else f"<{len(v)} chars>" for k, v in values.items()}
        return {"task_id": identity.task_id, "values": shown}

    @mcp.tool()
    def whoami() -> dict[str, str | None]:
        """The task serving this request (routing is verified by task, not by cookie)."""
        return {
            "task_id": identity.task_id,
            "task_arn": identity.task_arn,
            "availability_zone": identity.availability_zone,
        }

    @mcp.custom_route("/health", methods=["GET"], include_in_schema=False)
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "task_id": identity.task_id})

    return mcp


def build_app(
    mcp: MCPServer,
    session_idle_timeout: float | None,
    max_request_body_size: int | None = None,
    max_sessions: int | None = None,
) -> Starlette:
    """The stateful streamable-HTTP ASGI app.

    ``host="0.0.0.0"`` turns off the SDK's Host-header check, which would reject requests coming
    through a load balancer (its Host is the ALB's name). ``session_idle_timeout=None`` keeps
    sessions until they are deleted; ``max_sessions`` None keeps the SDK's default cap (10,000).
    """
    kwargs: dict[str, Any] = {}
    if max_request_body_size is not None:
        kwargs["max_request_body_size"] = max_request_body_size
    if max_sessions is not None:
        kwargs["max_sessions"] = max_sessions
    return mcp.streamable_http_app(
        stateless_http=False,
        host="0.0.0.0",
        session_idle_timeout=session_idle_timeout,
        **kwargs,
    )
