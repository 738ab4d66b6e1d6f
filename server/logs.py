"""JSON log lines on stdout (Powertools Logger) in the DESIGN section 3 schema, ids scrubbed.

Why a scrubbing *handler* rather than a level change: the SDK prints raw session ids at INFO
("Created new transport with session ID: ..."), but also at WARNING ("Rejecting request for session
...") and in ERROR tracebacks ("Session ... crashed"), so no log level both keeps useful warnings
and hides ids. Rewriting the *formatted* line catches every path (message, args, extra fields,
tracebacks) of every logger routed through the handler. Any 32+ hex-digit or UUID-shaped token is
replaced by its fingerprint (DESIGN section 2), which keeps SDK lines correlatable with our events.
The task id (also 32 hex digits on Fargate) is exempt, it is not a secret.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import IO, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from sessionwatch.server.fingerprint import scrub

# Loggers of the libraries the server runs on; routed through the same JSON, scrubbing handler.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "mcp", "opentelemetry", "httpx")
EVENT_LOG = "log"  # the `event` of lines that are not one of the contract events


class ScrubbingStreamHandler(logging.StreamHandler):
    """A stream handler whose every formatted line has ids rewritten to fingerprints."""

    def __init__(self, stream: IO[str] | None = None, keep: Iterable[str] = ()) -> None:
        super().__init__(stream or sys.stdout)
        self.keep = frozenset(keep)
        self.addFilter(_default_event)

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record), self.keep)


def _default_event(record: logging.LogRecord) -> bool:
    # Every line has an `event` (DESIGN section 3); library lines get a neutral one.
    if not hasattr(record, "event"):
        record.event = EVENT_LOG
    record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return True


# Event fields that are null where unknown (DESIGN section 3) instead of being dropped.
NULLABLE_FIELDS = frozenset(
    {
        "task_arn",
        "cluster",
        "family",
        "revision",
        "availability_zone",
        "protocol_version",
        "signal",
        "jsonrpc_code",  # a plain-text lost-session answer (mcp <= 1.26) has none
    }
)


class EventFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON formatter, keeping the documented nullable fields as ``null``."""

    def _strip_none_records(self, records: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return {k: v for k, v in records.items() if v is not None or k in NULLABLE_FIELDS}


def build_event_logger(
    service: str,
    task_id: str,
    stream: IO[str] | None = None,
    level: str | int = "INFO",
) -> Logger:
    """The Powertools logger for events: UTC ISO-8601 times, ``task_id`` on each line."""
    handler = ScrubbingStreamHandler(stream, keep=(task_id,))
    formatter = EventFormatter(
        utc=True,
        use_rfc3339=True,
        log_record_order=["timestamp", "level", "service", "message", "event", "task_id"],
    )
    logger = Logger(
        service=service, level=level, logger_handler=handler, logger_formatter=formatter
    )
    logger.remove_keys(["location", "sampling_rate"])
    # Our lines go to our handler only, never also to a root handler someone else installed.
    logging.getLogger(logger.name).propagate = False
    logger.append_keys(task_id=task_id)
    return logger


def route_library_logs(
    logger: Logger, level: int = logging.INFO, names: Iterable[str] = LIBRARY_LOGGERS
) -> None:
    """Send uvicorn, SDK and OpenTelemetry log records through ``logger``'s JSON, scrubbing handler.

    A process-wide change, so the entry point (not ``instrument()``) applies it. Without it those
    libraries print plain-text lines, and the SDK's carry raw session ids.
    """
    handler: logging.Handler = logger.registered_handler
    # Anything else that reaches the root logger (MCPServer() installs a plain-text root handler).
    logging.root.handlers = [handler]
    for name in names:
        lib = logging.getLogger(name)
        lib.handlers = [handler]
        lib.propagate = False
        if name != "mcp" or lib.level == logging.NOTSET:
            lib.setLevel(level)
    # The OTLP exporter logs every failed export; SessionWatch logs the first and counts them all.
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.CRITICAL)
