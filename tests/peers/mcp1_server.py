"""A stateful MCP server on a real mcp 1.x release (run by a .venv-peers interpreter, not ours).

``python mcp1_server.py --task-id T``: the SDK's own ``FastMCP`` with the probe's three tools,
streamable HTTP, stateful, on a free loopback port; ``GET /health`` answers for the load balancer.
Prints ``{"event": "listening", "port": N}``. Imports nothing from SessionWatch: this is a server
that never adopted it, answering an unknown session the way its SDK release does.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
from typing import Any

import uvicorn
from mcp.server.fastmcp import FastMCP

parser = argparse.ArgumentParser()
parser.add_argument("--task-id", default="mcp1-task")
# The session cap (mcp 1.30 has one; older 1.x releases do not take the argument at all).
parser.add_argument("--max-sessions", type=int, default=None)
args = parser.parse_args()
task_id: str = args.task_id
logging.basicConfig(level=logging.WARNING)  # the SDK logs raw session ids at INFO

cap: dict[str, Any] = {} if args.max_sessions is None else {"max_sessions": args.max_sessions}
mcp = FastMCP("mcp1-peer", stateless_http=False, **cap)
values: dict[str, dict[str, str]] = {}


@mcp.tool()
def set_session_value(key: str, value: str) -> dict[str, str]:
    """Store a value (one shared dict is enough here: the test is about the session answer)."""
    values.setdefault("all", {})[key] = value
    return {"task_id": task_id, "key": key}


@mcp.tool()
def get_session_state() -> dict[str, Any]:
    return {"task_id": task_id, "values": dict(values.get("all", {}))}


@mcp.tool()
def whoami() -> dict[str, str]:
    return {"task_id": task_id}


inner = mcp.streamable_http_app()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    await inner(scope, receive, send)


sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(128)  # connections queue until uvicorn serves: the port is usable once printed
print(json.dumps({"event": "listening", "port": sock.getsockname()[1]}), flush=True)
config = uvicorn.Config(app, log_level="warning", lifespan="on")
uvicorn.Server(config).run(sockets=[sock])
sys.exit(0)
