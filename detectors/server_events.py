"""The server's log-event names the detectors consume (DESIGN section 3).

A mirror of ``server.semconv``: the Lambda asset holds only ``detectors/``, so it cannot import
``server``. tests/detectors asserts every value here equals its ``server.semconv`` twin.
"""

from __future__ import annotations

from typing import Final

EVENT_TASK_STARTED: Final = "task_started"
EVENT_SESSION_CREATED: Final = "session_created"
EVENT_SESSION_CLOSED: Final = "session_closed"
EVENT_SESSION_NOT_FOUND: Final = "session_not_found"
EVENT_SHUTDOWN_STARTED: Final = "shutdown_started"

# The server metric and resource attribute the reporter's spike check reads (DESIGN section 4).
METRIC_SESSION_NOT_FOUND: Final = "mcp.server.session.not_found"
RESOURCE_SERVICE_NAME: Final = "service.name"
