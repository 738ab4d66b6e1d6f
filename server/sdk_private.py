"""The one place SessionWatch reads a private surface of the ``mcp`` SDK.

The SDK has no public "session closed" callback, and idle expiry happens inside it without any
HTTP exchange the middleware could see. So the middleware periodically compares its own table of
open sessions with the session manager's live-session dict, ``_server_instances`` (session id ->
transport). If a release renames or reshapes it, :func:`check_session_manager` raises
:class:`SdkSurfaceChanged`; ``tests/server/test_sdk_private_surface.py`` fails loudly on it, and at
run time the middleware falls back to an idle-time estimate instead of breaking.
:func:`find_session_manager` finds the manager inside an app that does not hand it out
(fastmcp 4.x).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

LIVE_SESSIONS_ATTRIBUTE = "_server_instances"


class SdkSurfaceChanged(RuntimeError):
    """The SDK no longer exposes the private surface SessionWatch relies on."""


def check_session_manager(manager: Any) -> None:
    """Raise :class:`SdkSurfaceChanged` unless ``manager`` has a live-session dict."""
    instances = getattr(manager, LIVE_SESSIONS_ATTRIBUTE, None)
    if not isinstance(instances, dict):
        raise SdkSurfaceChanged(
            f"{type(manager).__name__}.{LIVE_SESSIONS_ATTRIBUTE} is missing or not a dict; "
            "idle-expiry tracking needs updating for this mcp release"
        )


def live_session_ids(manager: Any) -> Collection[str]:
    """The ids of the sessions the SDK currently holds (a live view, do not keep it)."""
    instances = getattr(manager, LIVE_SESSIONS_ATTRIBUTE, None)
    if not isinstance(instances, dict):
        raise SdkSurfaceChanged(f"{LIVE_SESSIONS_ATTRIBUTE} is missing or not a dict")
    return instances.keys()


LIMIT_ATTRIBUTE = "max_sessions"  # public in mcp 2.2+ / 1.30 (None: no cap); absent before


def session_limit(manager: Any) -> int | None:
    """The manager's session cap (``max_sessions``), or ``None`` when it has none or hides it.

    mcp 2.2+ and 1.30 keep the constructor's ``max_sessions`` as a public attribute (default
    10,000; ``None`` removes the cap); older releases have no cap and no attribute.
    """
    limit = getattr(manager, LIMIT_ATTRIBUTE, None)
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None


# Attributes through which an ASGI app reaches the app it wraps or routes to: Starlette (routes,
# router, middleware_stack, Route.endpoint / .app, Mount.app), the SDKs' StreamableHTTPASGIApp
# (session_manager), fastmcp's auth wrapper (app), and common middleware (app, _app).
_CHILD_ATTRIBUTES = (
    "session_manager",
    "_session_manager",
    "app",
    "_app",
    "endpoint",
    "router",
    "routes",
    "middleware_stack",
    "handler",
)
_MAX_VISITS = 2000


def find_session_manager(app: Any) -> Any | None:
    """The SDK session manager reachable from ``app``, or ``None``: a bounded, read-only walk.

    For frameworks that build the manager themselves and expose no argument for it (fastmcp 4.x
    creates it in its lifespan and keeps it on the route's endpoint), so the middleware can read
    live sessions without being handed the manager. Recognized by the same private surface
    :func:`check_session_manager` checks; properties that raise are skipped.
    """
    seen: set[int] = set()
    todo: list[Any] = [app]
    while todo and len(seen) < _MAX_VISITS:
        node = todo.pop(0)
        if node is None or id(node) in seen or isinstance(node, (str, bytes, int, float, bool)):
            continue
        seen.add(id(node))
        if isinstance(getattr(node, LIVE_SESSIONS_ATTRIBUTE, None), dict):
            return node
        if isinstance(node, (list, tuple)):
            todo.extend(node)
            continue
        for name in _CHILD_ATTRIBUTES:
            try:
                child = getattr(node, name, None)
            except Exception:  # noqa: S112 - a property that cannot answer yet is no path
                continue
            if child is not None:
                todo.append(child)
    return None
