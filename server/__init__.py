"""SessionWatch instrumentation for MCP servers, and the reference stateful server.

Wrap any MCP ASGI app with :func:`instrument` and route the libraries' log lines through
:func:`route_library_logs` (session ids scrubbed). Public names load lazily, so importing a
submodule that needs no server stack (``sessionwatch.server.drain_budget``, used by the audit)
does not import mcp, uvicorn or OpenTelemetry. Install with ``pip install "sessionwatch[server]"``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionwatch.server.instrumentation import SessionWatchMiddleware, instrument
    from sessionwatch.server.logs import route_library_logs
    from sessionwatch.server.runner import DrainingServer

_PUBLIC = {
    "instrument": "sessionwatch.server.instrumentation",
    "SessionWatchMiddleware": "sessionwatch.server.instrumentation",
    "route_library_logs": "sessionwatch.server.logs",
    "DrainingServer": "sessionwatch.server.runner",
}
__all__ = ["DrainingServer", "SessionWatchMiddleware", "instrument", "route_library_logs"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
