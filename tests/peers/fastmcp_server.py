"""A fastmcp 4.x server wrapped with SessionWatch's ``instrument()``, as server/README.md says.

``python tests/peers/fastmcp_server.py --idle-timeout S``: stateful streamable HTTP on a free
loopback port (the port is in uvicorn's "Uvicorn running on" line), fastmcp's and mcp's loggers at
DEBUG, and a tool that fails with the caller's session id in its exception: the raw id must still
appear in no line the process writes. No ``session_manager`` is passed: fastmcp has none to pass,
the middleware has to find it.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastmcp import Context, FastMCP

from sessionwatch.server.instrumentation import instrument
from sessionwatch.server.logs import route_library_logs

parser = argparse.ArgumentParser()
parser.add_argument("--idle-timeout", type=float, default=1800.0)
args = parser.parse_args()

mcp = FastMCP("fastmcp-peer")


@mcp.tool
def set_session_value(key: str, value: str) -> dict[str, str]:
    """Store nothing; answer like the reference tool."""
    return {"key": key}


@mcp.tool
def explode(ctx: Context) -> str:
    """Fail with the session id in the exception, as careless tool code does."""
    raise RuntimeError(f"tool failed for session {ctx.session_id}")


app = instrument(
    mcp.http_app(
        transport="http",
        stateless_http=False,
        session_idle_timeout=args.idle_timeout,
        host_origin_protection=False,
    ),
    service="fastmcp-peer",
)
route_library_logs(app.logger)
for name in ("fastmcp", "mcp"):
    logging.getLogger(name).setLevel(logging.DEBUG)
uvicorn.run(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
