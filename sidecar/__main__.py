"""``python -m sessionwatch.sidecar --upstream URL --port N``: SessionWatch for any MCP server.

A reverse proxy in the same task as the MCP server (any language), wrapped by ``instrument()``:
the load balancer's target group points at this port, the proxy forwards to ``--upstream``.
Every setting has a flag; those shared with ``python -m sessionwatch.server`` also an environment
variable (the flag wins).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from sessionwatch.server.identity import DEFAULT_TIMEOUT_S, resolve_identity
from sessionwatch.server.logs import build_event_logger, route_library_logs
from sessionwatch.server.options import add_task_options
from sessionwatch.server.runner import serve_draining
from sessionwatch.sidecar.app import SidecarApp, SidecarConfig
from sessionwatch.sidecar.proxy import ProxySettings, check_upstream

UPSTREAM_ENV = "SESSIONWATCH_UPSTREAM"
# Keep client connections open longer than the ALB's idle timeout (60 s by default): the ALB
# guide asks targets for a keep-alive timeout greater than the load balancer's idle timeout, or
# the target may close a connection the ALB is about to reuse (a 502 to the client).
DEFAULT_KEEP_ALIVE = 75


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def _upstream(value: str) -> str:
    try:
        return check_upstream(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser(prog: str = "python -m sessionwatch.sidecar") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument(
        "--upstream",
        type=_upstream,
        default=os.environ.get(UPSTREAM_ENV),
        required=UPSTREAM_ENV not in os.environ,
        help=f"the MCP server in this task, e.g. http://127.0.0.1:3000 (${UPSTREAM_ENV})",
    )
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8080, help="the port the target group points at")
    add_task_options(p)
    p.add_argument("--health-path", default="/health", help="answered by the sidecar itself")
    p.add_argument(
        "--upstream-health-path",
        default=None,
        help="pass the upstream's health through: /health answers what GET <upstream><path> "
        "answers (503 when it does not answer in 2 s)",
    )
    defaults = ProxySettings(upstream="http://127.0.0.1")
    p.add_argument("--connect-timeout", type=_positive, default=defaults.connect_timeout)
    p.add_argument(
        "--headers-timeout",
        type=_positive,
        default=defaults.headers_timeout,
        help="request sent -> response headers (504 after it)",
    )
    p.add_argument(
        "--read-timeout",
        type=_positive,
        default=defaults.read_timeout,
        help="between two chunks of a non-SSE response body (SSE streams have none)",
    )
    p.add_argument(
        "--preserve-host",
        action="store_true",
        help="send the client's Host upstream (default: the upstream's own authority)",
    )
    p.add_argument("--keep-alive-timeout", type=int, default=DEFAULT_KEEP_ALIVE)
    # uvicorn picks httptools and uvloop when installed (the sidecar extra installs both); the
    # benchmark measures the difference with these.
    p.add_argument("--http", choices=["auto", "httptools", "h11"], default="auto")
    p.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    return p


def main(argv: Sequence[str] | None = None, prog: str = "python -m sessionwatch.sidecar") -> int:
    args = build_parser(prog).parse_args(argv)
    identity, metadata_error = resolve_identity(args.metadata_uri, args.task_id, DEFAULT_TIMEOUT_S)
    logger = build_event_logger(args.service, identity.task_id)
    # Before anything logs: every line the process writes is JSON with ids scrubbed.
    route_library_logs(logger)
    settings = ProxySettings(
        upstream=args.upstream,
        connect_timeout=args.connect_timeout,
        headers_timeout=args.headers_timeout,
        read_timeout=args.read_timeout,
        preserve_host=args.preserve_host,
    )
    app = SidecarApp(
        SidecarConfig(
            proxy=settings,
            service=args.service,
            session_idle_timeout=args.session_idle_timeout,
            health_path=args.health_path,
            upstream_health_path=args.upstream_health_path,
        ),
        identity=identity,
        otlp_endpoint=args.otlp_endpoint,
        export_interval_ms=args.export_interval_ms,
        logger=logger,
        log_requests=args.log_requests,
    )
    if metadata_error is not None:
        app.instrumented.fault("task_metadata", metadata_error)
    serve_draining(
        app,
        host=args.host,
        port=args.port,
        drain_seconds=args.drain_seconds,
        graceful_seconds=args.graceful_seconds,
        stop_timeout=args.stop_timeout,
        on_signal=app.begin_shutdown,
        warn=lambda text: logger.warning(text, event="config_warning"),
        timeout_keep_alive=args.keep_alive_timeout,
        http=args.http,
        loop=args.loop,
        date_header=False,  # the upstream's Date passes through
        proxy_headers=False,  # X-Forwarded-* pass through to the upstream, appended to, not eaten
    )
    app.close()  # a no-op after lifespan shutdown; the backstop if lifespan did not run
    return 0


if __name__ == "__main__":
    sys.exit(main())
