"""``python -m server``: the reference stateful MCP server, instrumented, under uvicorn.

Every setting has a flag and an environment variable (the flag wins); see ``--help``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sessionwatch.contract import ENV_MAX_SESSIONS, FLAG_MAX_SESSIONS
from sessionwatch.server.app import build_app, build_mcp_server
from sessionwatch.server.identity import DEFAULT_TIMEOUT_S, resolve_identity
from sessionwatch.server.instrumentation import instrument
from sessionwatch.server.logs import build_event_logger, route_library_logs
from sessionwatch.server.options import add_task_options
from sessionwatch.server.runner import serve_draining


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8000)
    add_task_options(p)
    p.add_argument(
        FLAG_MAX_SESSIONS,
        type=int,
        default=int(os.environ.get(ENV_MAX_SESSIONS) or 0) or None,
        help=f"the SDK's session cap per task, default 10000 (${ENV_MAX_SESSIONS})",
    )
    p.add_argument("--max-body-bytes", type=int, default=None, help="SDK request body limit")
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
    serve_draining(
        app,
        host=args.host,
        port=args.port,
        drain_seconds=args.drain_seconds,
        graceful_seconds=args.graceful_seconds,
        stop_timeout=args.stop_timeout,
        on_signal=app.begin_shutdown,
        warn=lambda text: logger.warning(text, event="config_warning"),
    )
    app.close()  # a no-op after lifespan shutdown; the backstop if lifespan did not run
    sys.exit(0)


if __name__ == "__main__":
    main()
