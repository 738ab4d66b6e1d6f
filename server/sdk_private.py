"""The one place SessionWatch reads a private surface of the ``mcp`` SDK.

The SDK has no public "session closed" callback, and idle expiry happens inside it without any
HTTP exchange the middleware could see. So the middleware periodically compares its own table of
open sessions with the session manager's live-session dict, ``_server_instances`` (session id ->
transport). If a release renames or reshapes it, :func:`check_session_manager` raises
:class:`SdkSurfaceChanged`; ``tests/server/test_sdk_private_surface.py`` fails loudly on it, and at
run time the middleware falls back to an idle-time estimate instead of breaking.
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
