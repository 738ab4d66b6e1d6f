"""``python -m server``: the reference stateful MCP server, instrumented, under uvicorn.

Every setting has a flag and an environment variable (the flag wins); see ``--help``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import uvicorn

from sessionwatch.contract import (
    ENV_DRAIN_SECONDS,
    ENV_MAX_SESSIONS,
    ENV_SESSION_IDLE_TIMEOUT,
    FLAG_DRAIN_SECONDS,
    FLAG_GRACEFUL_SECONDS,
    FLAG_MAX_SESSIONS,
    FLAG_SESSION_IDLE_TIMEOUT,
)
from sessionwatch.server.app import build_app, build_mcp_server
from sessionwatch.server.drain_budget import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_GRACEFUL_SECONDS,
    ECS_DEFAULT_STOP_TIMEOUT,
    check_drain_budget,
)
from sessionwatch.server.identity import (
    DEFAULT_TIMEOUT_S,
    METADATA_ENV,
    TASK_ID_ENV,
    resolve_identity,
)
from sessionwatch.server.instrumentation import DEFAULT_SERVICE, SERVICE_ENV, instrument
from sessionwatch.server.logs import build_event_logger, route_library_logs
from sessionwatch.server.runner import DrainingServer

DEFAULT_IDLE_TIMEOUT = 1800.0


def _env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _idle_timeout(raw: str) -> float | None:
    """Seconds, or ``none`` for sessions that never expire (the SDK's ``None``)."""
    return None if raw.strip().lower() in ("none", "0") else float(raw)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--service", default=env(SERVICE_ENV, DEFAULT_SERVICE), help=f"${SERVICE_ENV}")
    p.add_argument("--task-id", default=env(TASK_ID_ENV), help=f"fallback task id, ${TASK_ID_ENV}")
    p.add_argument("--metadata-uri", default=env(METADATA_ENV), help=f"${METADATA_ENV}")
    p.add_argument(
        FLAG_DRAIN_SECONDS,
        type=float,
        default=_env_float(ENV_DRAIN_SECONDS, DEFAULT_DRAIN_SECONDS),
        help=f"keep serving this long after SIGTERM (${ENV_DRAIN_SECONDS}); "
        "keep it under stopTimeout",
    )
    p.add_argument(FLAG_GRACEFUL_SECONDS, type=float, default=DEFAULT_GRACEFUL_SECONDS)
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=ECS_DEFAULT_STOP_TIMEOUT,
        help="the task's stopTimeout, only to warn when the drain does not fit",
    )
    p.add_argument(
        FLAG_SESSION_IDLE_TIMEOUT,
        type=_idle_timeout,
        default=_idle_timeout(env(ENV_SESSION_IDLE_TIMEOUT) or str(DEFAULT_IDLE_TIMEOUT)),
        help=f"seconds, or 'none': sessions never expire (${ENV_SESSION_IDLE_TIMEOUT})",
    )
    p.add_argument(
        FLAG_MAX_SESSIONS,
        type=int,
        default=int(env(ENV_MAX_SESSIONS) or 0) or None,
        help=f"the SDK's session cap per task, default 10000 (${ENV_MAX_SESSIONS})",
    )
    p.add_argument(
        "--otlp-endpoint",
        default=env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        help="$OTEL_EXPORTER_OTLP_ENDPOINT; no export when unset",
    )
    p.add_argument(
        "--export-interval-ms",
        type=int,
        default=int(env("OTEL_METRIC_EXPORT_INTERVAL") or 60_000),
        help="$OTEL_METRIC_EXPORT_INTERVAL",
    )
    p.add_argument("--max-body-bytes", type=int, default=None, help="SDK request body limit")
    p.add_argument("--log-requests", action="store_true", help="one JSON line per request")
    p.add_argument(
        "--sdk-log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of the mcp SDK's own lines (ids in them are always scrubbed)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    identity, metadata_error = resolve_identity(args.metadata_uri, args.task_id, DEFAULT_TIMEOUT_S)
    logger = build_event_logger(args.service, identity.task_id)
    mcp = build_mcp_server(identity)  # installs a root log handler of its own, replaced next
    # Before the server logs anything: every line the process writes is JSON with ids scrubbed.
    route_library_logs(logger)
    # The SDK's own INFO lines repeat our session events; by default keep only its warnings.
    logging.getLogger("mcp").setLevel(args.sdk_log_level)

    app = instrument(
        build_app(mcp, args.session_idle_timeout, args.max_body_bytes, args.max_sessions),
        service=args.service,
        identity=identity,
        session_manager=mcp.session_manager,
        otlp_endpoint=args.otlp_endpoint,
        export_interval_ms=args.export_interval_ms,
        logger=logger,
        log_requests=args.log_requests,
    )
    if metadata_error is not None:
        app.fault("task_metadata", metadata_error)
    if warning := check_drain_budget(args.drain_seconds, args.graceful_seconds, args.stop_timeout):
        logger.warning(warning, event="config_warning")

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        lifespan="on",
        log_config=None,  # logging is already routed (JSON, scrubbed)
        access_log=False,  # per-request lines come from --log-requests instead
        timeout_graceful_shutdown=int(args.graceful_seconds),
        server_header=False,
    )
    server = DrainingServer(config, drain_seconds=args.drain_seconds, on_signal=app.begin_shutdown)
    server.run()
    app.close()  # a no-op after lifespan shutdown; the backstop if lifespan did not run
    sys.exit(0)


if __name__ == "__main__":
    main()
