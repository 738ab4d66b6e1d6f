"""The command-line options every SessionWatch process in a task shares (flag wins over env).

``python -m sessionwatch.server`` and ``python -m sessionwatch.sidecar`` take the same task,
drain, idle-expiry and metrics settings; they are defined here once.
"""

from __future__ import annotations

import argparse
import os

from sessionwatch.contract import (
    ENV_DRAIN_SECONDS,
    ENV_SESSION_IDLE_TIMEOUT,
    FLAG_DRAIN_SECONDS,
    FLAG_GRACEFUL_SECONDS,
    FLAG_SESSION_IDLE_TIMEOUT,
)
from sessionwatch.server.drain_budget import (
    DEFAULT_DRAIN_SECONDS,
    DEFAULT_GRACEFUL_SECONDS,
    ECS_DEFAULT_STOP_TIMEOUT,
)
from sessionwatch.server.identity import METADATA_ENV, TASK_ID_ENV
from sessionwatch.server.instrumentation import DEFAULT_SERVICE, SERVICE_ENV

DEFAULT_IDLE_TIMEOUT = 1800.0


def env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def idle_timeout(raw: str) -> float | None:
    """Seconds, or ``none`` for sessions that never expire (the SDK's ``None``)."""
    return None if raw.strip().lower() in ("none", "0") else float(raw)


def add_task_options(p: argparse.ArgumentParser) -> None:
    """Task identity, SIGTERM drain, idle expiry, OTLP export and per-request log options."""
    env = os.environ.get
    p.add_argument("--service", default=env(SERVICE_ENV, DEFAULT_SERVICE), help=f"${SERVICE_ENV}")
    p.add_argument("--task-id", default=env(TASK_ID_ENV), help=f"fallback task id, ${TASK_ID_ENV}")
    p.add_argument("--metadata-uri", default=env(METADATA_ENV), help=f"${METADATA_ENV}")
    p.add_argument(
        FLAG_DRAIN_SECONDS,
        type=float,
        default=env_float(ENV_DRAIN_SECONDS, DEFAULT_DRAIN_SECONDS),
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
        type=idle_timeout,
        default=idle_timeout(env(ENV_SESSION_IDLE_TIMEOUT) or str(DEFAULT_IDLE_TIMEOUT)),
        help=f"seconds, or 'none': sessions never expire (${ENV_SESSION_IDLE_TIMEOUT})",
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
    p.add_argument("--log-requests", action="store_true", help="one JSON line per request")
