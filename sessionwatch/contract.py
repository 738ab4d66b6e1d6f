"""The names the parts of SessionWatch share: the one contract module.

The server emits the log events and metrics named here, the detectors consume them and emit their
own, the construct wires alarms, filters and the dashboard to them, and the lab and the tests check
each side against this module rather than against a copy of the strings. It imports nothing but the
standard library, so the Lambda asset, the server image and the CDK app can all carry it.
See docs/architecture.md for the tables these names fill.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

# ---- The server: log events, metrics, attributes, settings (docs/architecture.md, server) ----

# Log events (docs/architecture.md §3), the value of the `event` field of each JSON line.
EVENT_TASK_STARTED: Final = "task_started"
EVENT_SESSION_CREATED: Final = "session_created"
EVENT_SESSION_CLOSED: Final = "session_closed"
EVENT_SESSION_NOT_FOUND: Final = "session_not_found"
EVENT_SHUTDOWN_STARTED: Final = "shutdown_started"
# A request that would open a session was refused because the server holds as many as it may
# (the SDK's `max_sessions`): no session was created, the client is turned away.
EVENT_SESSION_REFUSED: Final = "session_refused"
LOG_EVENTS: Final = (
    EVENT_TASK_STARTED,
    EVENT_SESSION_CREATED,
    EVENT_SESSION_CLOSED,
    EVENT_SESSION_NOT_FOUND,
    EVENT_SHUTDOWN_STARTED,
    EVENT_SESSION_REFUSED,
)

# `reason` of a session_closed event.
CLOSE_CLIENT_DELETE: Final = "client_delete"
CLOSE_IDLE_TIMEOUT: Final = "idle_timeout"
CLOSE_SHUTDOWN: Final = "shutdown"

# Metric instruments (docs/architecture.md §4). The first two follow the OTel MCP conventions.
METRIC_OPERATION_DURATION: Final = "mcp.server.operation.duration"
METRIC_SESSION_DURATION: Final = "mcp.server.session.duration"
METRIC_SESSION_CREATED: Final = "mcp.server.session.created"
METRIC_SESSION_NOT_FOUND: Final = "mcp.server.session.not_found"
METRIC_SESSION_ACTIVE: Final = "mcp.server.session.active"
METRIC_SESSION_DROPPED: Final = "mcp.server.session.dropped"
# Refusals and the cap (docs/architecture.md §4): requests refused a session, the SDK's cap per
# task (`max_sessions`, a gauge, only where the SDK exposes it) and the open share of it (0..1).
METRIC_SESSION_REFUSED: Final = "mcp.server.session.refused"
METRIC_SESSION_LIMIT: Final = "mcp.server.session.limit"
METRIC_SESSION_UTILIZATION: Final = "mcp.server.session.utilization"
# Requests by protocol era and client: how much traffic still holds sessions, and whose.
METRIC_REQUESTS: Final = "mcp.server.requests"
SERVER_METRICS: Final = (
    METRIC_OPERATION_DURATION,
    METRIC_SESSION_DURATION,
    METRIC_SESSION_CREATED,
    METRIC_SESSION_NOT_FOUND,
    METRIC_SESSION_ACTIVE,
    METRIC_SESSION_DROPPED,
    METRIC_SESSION_REFUSED,
    METRIC_SESSION_LIMIT,
    METRIC_SESSION_UTILIZATION,
    METRIC_REQUESTS,
)

# Failures of SessionWatch's own telemetry (metadata, export, parsing), by `sessionwatch.fault`.
# Kept out of METRICS: it is about the instrumentation, not the sessions.
METRIC_INSTRUMENTATION_ERRORS: Final = "sessionwatch.instrumentation.errors"
ATTR_FAULT: Final = "sessionwatch.fault"

# Metric attributes. No session id or fingerprint is ever one of them.
ATTR_MCP_METHOD_NAME: Final = "mcp.method.name"
ATTR_MCP_PROTOCOL_VERSION: Final = "mcp.protocol.version"
ATTR_ERROR_TYPE: Final = "error.type"
ATTR_ECS_TASK_ID: Final = "aws.ecs.task.id"
# SessionWatch's own attributes (no OTel convention names them): the protocol era of a request
# (`ERA_*`) and the client's self-declared name (clientInfo.name, bounded and sanitized; at most
# MAX_CLIENT_LABELS distinct values per process, the rest counted as CLIENT_OTHER).
ATTR_MCP_PROTOCOL_ERA: Final = "mcp.protocol.era"
ATTR_MCP_CLIENT_NAME: Final = "mcp.client.name"
ERA_HANDSHAKE: Final = "handshake"  # initialize + Mcp-Session-Id (2025-11-25 and older)
ERA_MODERN: Final = "modern"  # 2026-07-28 and later: no session, no initialize
# The protocol revisions reached through the initialize handshake (mcp 2.x routes a request whose
# MCP-Protocol-Version header names any other revision to its sessionless, modern path).
HANDSHAKE_PROTOCOL_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
CLIENT_UNKNOWN: Final = "unknown"  # no clientInfo seen (e.g. a session opened before start-up)
CLIENT_OTHER: Final = "other"  # past MAX_CLIENT_LABELS distinct names
MAX_CLIENT_LABELS: Final = 50
MAX_CLIENT_TEXT: Final = 64  # characters kept of clientInfo.name / .version

# Resource attributes (OpenTelemetry semantic conventions for AWS ECS).
RESOURCE_SERVICE_NAME: Final = "service.name"
RESOURCE_ECS_TASK_ARN: Final = "aws.ecs.task.arn"
RESOURCE_ECS_CLUSTER_ARN: Final = "aws.ecs.cluster.arn"
RESOURCE_ECS_TASK_FAMILY: Final = "aws.ecs.task.family"
RESOURCE_ECS_TASK_REVISION: Final = "aws.ecs.task.revision"

# The JSON-RPC error a stateful server answers for an unknown session id, with HTTP 404: the
# mcp (Python) SDK's -32600 and the TypeScript SDK's -32001; -32000 is the generic server error
# older TypeScript examples answer with HTTP 400. Every form SessionWatch recognizes as a lost
# session is in sessionwatch.server.lost_session.
JSONRPC_SESSION_NOT_FOUND: Final = -32600
JSONRPC_SESSION_NOT_FOUND_TS: Final = -32001
JSONRPC_SERVER_ERROR: Final = -32000
# mcp (Python) 2.2+ and 1.30 refuse an initialize beyond `max_sessions` with HTTP 503 and this
# JSON-RPC code (INTERNAL_ERROR), "Too many open sessions" (sessionwatch.server.refusal).
JSONRPC_INTERNAL_ERROR: Final = -32603
TASK_ID_HEADER: Final = "X-Mcp-Task-Id"
MCP_PROTOCOL_VERSION_HEADER: Final = "mcp-protocol-version"
EVENT_REQUEST: Final = "request"  # per-request lines, off by default (--log-requests)
EVENT_UPSTREAM_ERROR: Final = "upstream_error"  # the sidecar could not reach its upstream
SESSION_ID_HEADER: Final = "mcp-session-id"

# The server's settings (`python -m server`) that other parts read from a task definition (the
# audit) or set (the lab, the infra): each environment variable and the flag that overrides it.
ENV_DRAIN_SECONDS: Final = "SESSIONWATCH_DRAIN_SECONDS"
ENV_SESSION_IDLE_TIMEOUT: Final = "SESSIONWATCH_SESSION_IDLE_TIMEOUT"
ENV_MAX_SESSIONS: Final = "SESSIONWATCH_MAX_SESSIONS"
FLAG_DRAIN_SECONDS: Final = "--drain-seconds"
FLAG_GRACEFUL_SECONDS: Final = "--graceful-seconds"
FLAG_SESSION_IDLE_TIMEOUT: Final = "--session-idle-timeout"
FLAG_MAX_SESSIONS: Final = "--max-sessions"

# ---- The detectors: causes and CloudWatch metrics (docs/architecture.md, detectors) ----


class Cause(StrEnum):
    """Why a session was lost: the verdict for one `session_not_found` (docs/architecture.md §5)."""

    DEPLOYMENT = "deployment"
    SCALE_IN = "scale_in"
    TASK_FAILURE = "task_failure"
    INFRASTRUCTURE = "infrastructure"
    STICKINESS = "stickiness"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    PENDING = "pending"


# CloudWatch metrics (EMF via Powertools Metrics).
NAMESPACE: Final = "SessionWatch"
DIMENSION_SERVICE: Final = "ServiceName"
DIMENSION_CAUSE: Final = "Cause"

METRIC_SESSIONS_LOST: Final = "SessionsLost"
METRIC_SESSIONS_AT_RISK: Final = "SessionsAtRisk"
METRIC_DEPLOYMENTS_IN_PROGRESS: Final = "DeploymentsInProgress"
METRIC_DEPLOYMENT_LOSS_SPIKE: Final = "DeploymentLossSpike"
METRIC_BAD_INPUT: Final = "DetectorBadInput"
# Records a detector could not store or decide (an AWS error on that record): the rest of the
# batch went through, the invocation is retried, then queued for `sessionwatch redrive`.
METRIC_RECORD_FAILED: Final = "DetectorRecordFailed"
DETECTOR_METRICS: Final = (
    METRIC_SESSIONS_LOST,
    METRIC_SESSIONS_AT_RISK,
    METRIC_DEPLOYMENTS_IN_PROGRESS,
    METRIC_DEPLOYMENT_LOSS_SPIKE,
    METRIC_BAD_INPUT,
    METRIC_RECORD_FAILED,
)

# DetectorBadInput is not about one ECS service; it carries this ServiceName value instead.
BAD_INPUT_SERVICE_NAME: Final = "sessionwatch-detectors"
# ServiceName of a lost session whose service could not be told (no ECS facts, no log field).
UNKNOWN_SERVICE_NAME: Final = "unknown"

# ---- Wiring between the parts ----

# CloudWatch namespace the ADOT collector's awsemf exporter writes the server's metrics into.
SERVER_METRICS_NAMESPACE: Final = "SessionWatch/MCPServer"

# The Logs subscription filter: the server's session events reach the detectors, nothing else does.
SESSION_EVENTS_FILTER_PATTERN: Final = (
    '{ $.event = "session_*" || $.event = "task_started" || $.event = "shutdown_started" }'
)

# The detectors' verdict log lines; the dashboard's Logs Insights widget queries the first.
VERDICT_LOG_MESSAGE: Final = "session loss decided"
PENDING_LOG_MESSAGE: Final = "session loss pending"
# A verdict that later facts contradicted: logged with both causes (`cause`, `revised_from`).
REVISED_LOG_MESSAGE: Final = "session loss revised"

# The detectors' environment variable for SessionsLost's EMF StorageResolution: "1" (high
# resolution, for the construct's 10-second loss alarms) or "60" (standard). Set by the construct.
SESSIONS_LOST_RESOLUTION_ENV: Final = "SESSIONS_LOST_STORAGE_RESOLUTION"

# ---- Deployment guards (drain gate, stop on loss, first-loss alert; issue 21) ----

ENV_DRAIN_GATE_MAX_HOLD: Final = "DRAIN_GATE_MAX_HOLD_SECONDS"
ENV_DRAIN_GATE_CALLBACK: Final = "DRAIN_GATE_CALLBACK_SECONDS"
ENV_STOP_ON_LOSS: Final = "STOP_ON_LOSS_THRESHOLD"
ENV_FIRST_LOSS_ALERT: Final = "FIRST_LOSS_ALERT"
# The gate's state inside the hook's hookDetails (ECS hands it back on the next call).
HOOK_DETAILS_KEY: Final = "sessionwatch"
# Each a count, ServiceName dimension: the gate answered SUCCEEDED because SessionWatch itself
# failed (fail open); a guard action (stop, alert) failed and will be tried again.
METRIC_DRAIN_GATE_FAILED: Final = "DrainGateFailed"
METRIC_GUARD_FAILED: Final = "GuardActionFailed"
METRIC_DEPLOYMENTS_STOPPED: Final = "DeploymentsStoppedOnLoss"
GATE_LOG_MESSAGE: Final = "drain gate decided"
STOP_LOG_MESSAGE: Final = "deployment stopped on loss"
ALERT_LOG_MESSAGE: Final = "first loss alert sent"
