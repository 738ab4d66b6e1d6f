"""The SessionWatch sidecar: any MCP server, in any language, watched through a reverse proxy.

Run ``python -m sessionwatch.sidecar --upstream http://127.0.0.1:3000 --port 8080`` beside the
server in the same task and point the target group at the sidecar's port; every request passes
through ``instrument()``, so the log contract holds for the server behind it. Install with
``pip install "sessionwatch[sidecar]"``. Public names load lazily (aiohttp only when used).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionwatch.sidecar.app import SidecarApp, SidecarConfig
    from sessionwatch.sidecar.proxy import ProxySettings, UpstreamProxy, UpstreamUnavailable

_PUBLIC = {
    "SidecarApp": "sessionwatch.sidecar.app",
    "SidecarConfig": "sessionwatch.sidecar.app",
    "ProxySettings": "sessionwatch.sidecar.proxy",
    "UpstreamProxy": "sessionwatch.sidecar.proxy",
    "UpstreamUnavailable": "sessionwatch.sidecar.proxy",
}
__all__ = ["ProxySettings", "SidecarApp", "SidecarConfig", "UpstreamProxy", "UpstreamUnavailable"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
