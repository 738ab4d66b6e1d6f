"""JSON log lines on stdout (Powertools Logger) in the docs/architecture.md §3 schema, ids scrubbed.

Why a scrubbing *handler* rather than a level change: the SDK prints raw session ids at INFO
("Created new transport with session ID: ..."), but also at WARNING ("Rejecting request for session
...") and in ERROR tracebacks ("Session ... crashed"), so no log level both keeps useful warnings
and hides ids. Rewriting the *formatted* line catches every path (message, args, extra fields,
tracebacks) of every logger routed through the handler. Any 32+ hex-digit or UUID-shaped token is
replaced by its fingerprint (docs/architecture.md §2): SDK lines stay correlatable.
The task id (also 32 hex digits on Fargate) is exempt, it is not a secret.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import sys
import threading
from collections.abc import Iterable
from typing import IO, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from sessionwatch.server.fingerprint import scrub

# Loggers of the libraries the server runs on; routed through the same JSON, scrubbing handler.
LIBRARY_LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "mcp",
    "fastmcp",
    "opentelemetry",
    "httpx",
)
# Loggers whose level the caller's choice wins over: they are set only when unset.
_KEEP_LEVEL = frozenset({"mcp", "fastmcp"})
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
    # Every line has an `event` (docs/architecture.md §3); library lines get a neutral one.
    if not hasattr(record, "event"):
        record.event = EVENT_LOG
    record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return True


# Event fields that are null where unknown (docs/architecture.md §3) instead of being dropped.
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
    logger: Logger,
    level: int = logging.INFO,
    names: Iterable[str] = LIBRARY_LOGGERS,
    scrub_streams: bool = True,
    sdk_level: int = logging.WARNING,
) -> None:
    """Send every library's log records through ``logger``'s JSON, scrubbing handler.

    A process-wide change, so the entry point (not ``instrument()``) applies it. Without it those
    libraries print plain-text lines, and the SDK's carry raw session ids. The named loggers
    (uvicorn, mcp, fastmcp, OpenTelemetry, httpx) and every other logger that already has a
    handler of its own (fastmcp's rich console handler, for one) get the scrubbing handler
    instead; everything else reaches it through the root logger. The MCP SDKs' own loggers
    (``mcp``, ``fastmcp``) get ``sdk_level`` (WARNING) unless the caller set theirs: at INFO they
    repeat every session event SessionWatch already logs ("Created new transport with session
    ID", "Rejected request with unknown or expired session ID"). With ``scrub_streams`` (the
    default) ``sys.stdout`` and ``sys.stderr`` are scrubbed as well
    (:func:`scrub_process_output`): what a library prints without logging, and the tracebacks of
    uncaught exceptions, never carry a raw id either.
    """
    handler: logging.Handler = logger.registered_handler
    # Anything else that reaches the root logger (MCPServer() installs a plain-text root handler).
    logging.root.handlers = [handler]
    for name in names:
        lib = logging.getLogger(name)
        lib.handlers = [handler]
        lib.propagate = False
        if name not in _KEEP_LEVEL:
            lib.setLevel(level)
        elif lib.level == logging.NOTSET:
            lib.setLevel(sdk_level)
    for name, other in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(other, logging.Logger) and other.handlers and name != logger.name:
            other.handlers = [handler]  # its level stays the caller's
    # The OTLP exporter logs every failed export; SessionWatch logs the first and counts them all.
    logging.getLogger("opentelemetry.exporter").setLevel(logging.CRITICAL)
    logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.CRITICAL)
    if scrub_streams:
        keep = handler.keep if isinstance(handler, ScrubbingStreamHandler) else frozenset()
        scrub_process_output(keep)


class ScrubbingStream(io.TextIOBase):
    """A text stream that rewrites id-shaped tokens of every complete line before passing it on.

    Installed as ``sys.stdout`` / ``sys.stderr`` by :func:`scrub_process_output`, so whatever a
    library prints without going through logging (rich consoles, ``print``, warnings, the
    interpreter's own traceback of an uncaught exception, ``threading``'s) is scrubbed too. Lines
    are held until their newline, so an id split across two writes is still one token.
    """

    def __init__(self, raw: IO[str], keep: Iterable[str] = ()) -> None:
        super().__init__()
        self.raw = raw
        self.keep = frozenset(keep)
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            data = self._pending + text
            head, sep, tail = data.rpartition("\n")
            self._pending = tail
            if sep:
                self.raw.write(scrub(head + sep, self.keep))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.raw.write(scrub(self._pending, self.keep))
                self._pending = ""
            self.raw.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return bool(getattr(self.raw, "isatty", lambda: False)())

    def fileno(self) -> int:
        return self.raw.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.raw, "encoding", "utf-8"))


def scrub_process_output(keep: Iterable[str] = ()) -> None:
    """Scrub everything written to ``sys.stdout`` and ``sys.stderr`` from now on (idempotent).

    The interpreter's default hooks print uncaught exceptions (main thread and other threads)
    there, so their tracebacks, whose messages may carry a session id, are scrubbed as well.
    Logging handlers created earlier hold the raw stream (``StreamHandler`` takes ``sys.stderr``
    when it is built, as ``MCPServer()``'s root handler is): they are pointed at the scrubbing
    one. Loggers and handlers created later find the scrubbing streams in ``sys``.
    """
    swapped: dict[int, ScrubbingStream] = {}
    for name in ("stdout", "stderr"):
        current = getattr(sys, name)
        if current is None:
            continue
        if not isinstance(current, ScrubbingStream):
            wrapper = ScrubbingStream(current, keep)
            setattr(sys, name, wrapper)
            current = wrapper
        swapped[id(current.raw)] = current
    for handler in _all_handlers():
        stream = getattr(handler, "stream", None)
        if isinstance(handler, logging.StreamHandler) and id(stream) in swapped:
            handler.setStream(swapped[id(stream)])
    if not _flush_registered:
        atexit.register(_flush_std_streams)
        _flush_registered.append(True)


_flush_registered: list[bool] = []


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.root] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    return [handler for lg in loggers for handler in list(lg.handlers)]


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, ScrubbingStream):
            with contextlib.suppress(Exception):
                stream.flush()
