"""The server's JSON log lines at simulated times, and the CloudWatch Logs payloads carrying them.

Lines are written by the server's own event logger (``sessionwatch.server.logs``: Powertools'
formatter, nullable fields, the id-scrubbing handler), so a simulated line has exactly the shape
a real task prints; only its ``timestamp`` is the simulated time (a logging filter sets the
record's creation time, which the formatter reads). The logger costs about a millisecond a
line, too slow for a thousand timelines, so each shape (event and which fields are null) is
logged once and its later lines are filled into that line's keys, serialized as the formatter
does and scrubbed as the handler does (tests/world checks the two paths give equal lines).
The subscription payload is the documented CloudWatch Logs subscription-filter shape for a
Lambda destination: ``{"awslogs": {"data": base64(gzip(json))}}`` with ``messageType``,
``owner``, ``logGroup``, ``logStream``, ``subscriptionFilters`` and ``logEvents`` (``id``,
``timestamp`` in ms, ``message``).
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from world.ecs import CONTAINER

SERVICE = "mcp-server"  # the `service` field of the lines (the server's --service)
FILTER_NAME = "sessionwatch"
LOG_GROUP = f"/ecs/{CONTAINER}"
ACCOUNT = "111122223333"


class _At(logging.Filter):
    """Stamps each record with the simulated time it is written at."""

    t = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        record.created = self.t
        record.msecs = (self.t % 1) * 1000
        return True


@cache
def _writer() -> tuple[Any, Any, _At, io.StringIO]:
    from sessionwatch.server.logs import build_event_logger

    buf = io.StringIO()
    # One logger per process: Powertools keeps the first handler of a logger name.
    logger = build_event_logger(SERVICE, "-", stream=buf)
    handler = logger.registered_handler
    at = _At()
    handler.addFilter(at)
    return logger, handler, at, buf


_shapes: dict[tuple[str, tuple[tuple[str, bool], ...]], dict[str, Any]] = {}


def server_line(event: str, task_id: str, t: float, **fields: Any) -> str:
    """One line as the server on ``task_id`` logs ``event`` (a contract EVENT_*) at ``t``."""
    shape = (event, tuple((k, v is None) for k, v in fields.items()))
    first = _shapes.get(shape)
    if first is None:
        line = logged_line(event, task_id, t, **fields)
        _shapes[shape] = json.loads(line)
        return line
    from sessionwatch.server.fingerprint import scrub

    values = {"timestamp": _stamp(t), "task_id": task_id, **fields}
    doc = {k: values.get(k, v) for k, v in first.items()}
    text = json.dumps(doc, default=str, separators=(",", ":"), ensure_ascii=False)
    return scrub(text, frozenset({task_id}))


def _stamp(t: float) -> str:
    # Powertools' formatter with utc=True, use_rfc3339=True.
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def logged_line(event: str, task_id: str, t: float, **fields: Any) -> str:
    """The line written through the server's own logger (the slow, reference path)."""
    logger, handler, at, buf = _writer()
    at.t = t
    handler.keep = frozenset({task_id})  # the task id is not a secret (server/logs.py)
    logger.append_keys(task_id=task_id)
    buf.seek(0)
    buf.truncate()
    logger.info(event.replace("_", " "), event=event, **fields)
    return buf.getvalue().rstrip("\n")


def subscription_payload(
    log_group: str,
    log_stream: str,
    filter_name: str,
    events: Iterable[tuple[int, str]],
    *,
    first_id: int = 0,
    owner: str = ACCOUNT,
) -> dict[str, Any]:
    """A CloudWatch Logs subscription event for ``events`` = (timestamp ms, message) pairs,
    as a subscription filter delivers it to a Lambda function (event ids: 56 digits)."""
    log_events = [
        {"id": str(first_id + i).zfill(56), "timestamp": ts, "message": message}
        for i, (ts, message) in enumerate(events)
    ]
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": owner,
        "logGroup": log_group,
        "logStream": log_stream,
        "subscriptionFilters": [filter_name],
        "logEvents": log_events,
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()}}


def log_stream(task_id: str) -> str:
    """The awslogs driver's stream name: ``<prefix>/<container>/<task id>``."""
    return f"ecs/{CONTAINER}/{task_id}"
