"""Turn raw handler inputs into facts, or into counted BadInput: never raise on bad data.

Scope filtering lives here too, so events of other clusters and services cost one parse and
no ledger call.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import ValidationError

from sessionwatch import contract
from sessionwatch.detectors.config import Config, cluster_short_name
from sessionwatch.detectors.facts import (
    BadInput,
    DeploymentObserved,
    HookObserved,
    NotFound,
    SessionClosed,
    SessionCreated,
    TaskFacts,
)
from sessionwatch.detectors.models import (
    LINE_MODELS,
    DeploymentDetail,
    HookDetail,
    ServiceActionDetail,
    SessionClosedLine,
    SessionCreatedLine,
    SessionNotFoundLine,
    TaskDetail,
    TaskStartedLine,
)

ECS_SOURCE = "aws.ecs"
DETAIL_DEPLOYMENT = "ECS Deployment State Change"
DETAIL_TASK = "ECS Task State Change"
DETAIL_SERVICE_ACTION = "ECS Service Action"
DETAIL_HOOK = "ECS Hook State Change"
DEPLOYMENT_STARTED = "SERVICE_DEPLOYMENT_IN_PROGRESS"
DEPLOYMENT_ENDED = {
    "SERVICE_DEPLOYMENT_COMPLETED": "COMPLETED",
    "SERVICE_DEPLOYMENT_FAILED": "FAILED",
}
SERVICE_GROUP_PREFIX = "service:"

# A subscription payload is at most ~1 MB compressed; anything decompressing past this is
# hostile or broken, and reading it all would exhaust the Lambda's memory.
MAX_DECOMPRESSED_BYTES = 8 * 1024 * 1024
MAX_LINE_BYTES = 256 * 1024  # CloudWatch Logs' own event size limit

EcsResult = DeploymentObserved | HookObserved | TaskFacts | BadInput | None
LineResult = SessionCreated | SessionClosed | NotFound | TaskFacts | BadInput | None


def epoch(value: datetime) -> float:
    """Epoch seconds; a naive timestamp is UTC (the server and ECS both write UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _opt(value: datetime | None) -> float | None:
    return None if value is None else epoch(value)


def _service_from_arn(arn: str) -> tuple[str | None, str]:
    """``...:service/CLUSTER/NAME`` -> (CLUSTER, NAME); the old ``service/NAME`` has no cluster."""
    parts = arn.split(":", 5)[-1].split("/")
    if len(parts) >= 3:
        return parts[1], parts[2]
    return None, parts[-1]


def parse_ecs_event(raw: object, cfg: Config) -> EcsResult:
    """One EventBridge event -> a fact to store, None (out of scope), or BadInput."""
    try:
        envelope = EventBridgeModel.model_validate(raw)
    except ValidationError as exc:
        return BadInput("invalid EventBridge envelope", {"errors": _short(exc)})
    ctx = {"event_id": envelope.id, "detail_type": envelope.detail_type}
    if envelope.source != ECS_SOURCE:
        return BadInput("event source is not aws.ecs", ctx | {"source": envelope.source[:64]})
    detail = envelope.detail
    try:
        if envelope.detail_type == DETAIL_DEPLOYMENT:
            return _deployment(
                DeploymentDetail.model_validate(detail), envelope.resources, cfg, ctx
            )
        if envelope.detail_type == DETAIL_TASK:
            return _task(TaskDetail.model_validate(detail), cfg)
        if envelope.detail_type == DETAIL_HOOK:
            return _hook(HookDetail.model_validate(detail), envelope, cfg, ctx)
        if envelope.detail_type == DETAIL_SERVICE_ACTION:
            ServiceActionDetail.model_validate(detail)
            return None  # informative only: steady state and placement failures lose no session
    except ValidationError as exc:
        return BadInput("invalid ECS event detail", ctx | {"errors": _short(exc)})
    return BadInput("unexpected detail-type", ctx)


def _deployment(
    detail: DeploymentDetail, resources: list[str], cfg: Config, ctx: dict[str, str]
) -> EcsResult:
    service_arns = [r for r in resources if ":service/" in r]
    if not service_arns:
        return BadInput("deployment event names no service", ctx)
    cluster, service = _service_from_arn(service_arns[0])
    if (cluster is not None and not cfg.cluster_matches(cluster)) or not cfg.service_in_scope(
        service
    ):
        return None
    at = epoch(detail.updated_at)
    reason = (detail.reason or "")[:512] or None
    if detail.event_name == DEPLOYMENT_STARTED:
        return DeploymentObserved(service, detail.deployment_id, at, ended=False, reason=reason)
    if detail.event_name in DEPLOYMENT_ENDED:
        return DeploymentObserved(
            service,
            detail.deployment_id,
            at,
            ended=True,
            outcome=DEPLOYMENT_ENDED[detail.event_name],
            reason=reason,
        )
    return None


def _hook(
    detail: HookDetail, envelope: EventBridgeModel, cfg: Config, ctx: dict[str, str]
) -> EcsResult:
    arns = [detail.service_arn or "", *envelope.resources]
    service_arns = [r for r in arns if ":service/" in r]
    if not service_arns:
        return BadInput("hook event names no service", ctx)
    cluster, service = _service_from_arn(service_arns[0])
    if (cluster is not None and not cfg.cluster_matches(cluster)) or not cfg.service_in_scope(
        service
    ):
        return None
    status = (detail.event_name or detail.status or "UNKNOWN").removeprefix("HOOK_")
    at = epoch(detail.updated_at) if detail.updated_at else epoch(envelope.time)
    return HookObserved(service, detail.lifecycle_stage, status, at, detail.service_deployment_arn)


def _task(detail: TaskDetail, cfg: Config) -> EcsResult:
    if not cfg.cluster_matches(cluster_short_name(detail.cluster_arn)):
        return None
    group = detail.group or ""
    if not group.startswith(SERVICE_GROUP_PREFIX):
        return None  # a standalone task serves no service's sessions
    service = group[len(SERVICE_GROUP_PREFIX) :]
    if not cfg.service_in_scope(service):
        return None
    return TaskFacts(
        task_id=detail.task_arn.rsplit("/", 1)[-1],
        service=service,
        started_by=detail.started_by,
        started_at=_opt(detail.started_at),
        stopping_at=_opt(detail.stopping_at),
        stopped_at=_opt(detail.stopped_at),
        stop_code=detail.stop_code,
        stopped_reason=detail.stopped_reason,
        task_definition=detail.task_definition_arn,
    )


def _short(exc: ValidationError) -> str:
    """Field paths and error types only: the input values could hold a raw session id."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}:{e['type']}" for e in exc.errors()[:5])


@dataclass(frozen=True)
class LogBatch:
    """A decoded subscription payload: where it came from and its (id, message) pairs."""

    log_group: str
    log_stream: str
    message_type: str
    events: list[tuple[str, object]]


def decode_subscription(raw: object) -> LogBatch | BadInput:
    """Base64 + gzip JSON, bounded in size, into a LogBatch."""
    data = raw.get("awslogs", {}).get("data") if isinstance(raw, dict) else None
    if not isinstance(data, str):
        return BadInput("not a CloudWatch Logs subscription event")
    try:
        compressed = base64.b64decode(data, validate=True)
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
        body = inflater.decompress(compressed, MAX_DECOMPRESSED_BYTES)
        if inflater.unconsumed_tail:
            return BadInput("oversized payload", {"limit_bytes": str(MAX_DECOMPRESSED_BYTES)})
        doc = json.loads(body)
    except (binascii.Error, ValueError, RecursionError, zlib.error) as exc:
        # RecursionError: json.loads on deeply nested arrays, which fit in a few KiB.
        return BadInput("undecodable subscription payload", {"error": type(exc).__name__})
    if not isinstance(doc, dict) or not isinstance(doc.get("logEvents", []), list):
        return BadInput("subscription payload is not an object with logEvents")
    events: list[tuple[str, object]] = []
    for item in doc.get("logEvents", []):
        if isinstance(item, dict):
            events.append((str(item.get("id", ""))[:64], item.get("message")))
        else:
            events.append(("", None))
    return LogBatch(
        str(doc.get("logGroup", ""))[:512],
        str(doc.get("logStream", ""))[:512],
        str(doc.get("messageType", "DATA_MESSAGE")),
        events,
    )


def iter_lines(batch: LogBatch) -> Iterator[LineResult]:
    """Each log event of the batch as a fact, None (not ours to store) or BadInput."""
    for event_id, message in batch.events:
        ctx = {
            "log_group": batch.log_group,
            "log_stream": batch.log_stream,
            "log_event_id": event_id,
        }
        yield parse_line(message, ctx)


def parse_line(message: object, ctx: dict[str, str]) -> LineResult:
    """One server JSON line (docs/architecture.md §3) -> a fact."""
    if not isinstance(message, str):
        return BadInput("log event without a message", ctx)
    if len(message) > MAX_LINE_BYTES:
        return BadInput("oversized log line", ctx)
    try:
        doc = json.loads(message)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than json can parse
        return BadInput("log line is not JSON", ctx)
    if not isinstance(doc, dict):
        return BadInput("log line is not a JSON object", ctx)
    name = doc.get("event")
    if not isinstance(name, str):
        return BadInput("log line without event", ctx)
    model = LINE_MODELS.get(name)
    if model is None:
        return BadInput("unknown event name", ctx | {"event": name[:64]})
    try:
        line = model.model_validate(doc)
    except ValidationError as exc:
        return BadInput("missing or mistyped fields", ctx | {"event": name, "errors": _short(exc)})
    at = epoch(line.timestamp)
    if isinstance(line, SessionCreatedLine):
        client = line.client_name if isinstance(line.client_name, str) else None
        return SessionCreated(
            line.session, line.task_id, at, client[: contract.MAX_CLIENT_TEXT] if client else None
        )
    if isinstance(line, SessionClosedLine):
        return SessionClosed(line.session, line.task_id, at, line.reason)
    if isinstance(line, SessionNotFoundLine):
        return NotFound(line.session, line.task_id, at, line.service)
    if isinstance(line, TaskStartedLine):
        return TaskFacts(task_id=line.task_id, started_at=at)
    # shutdown_started: the ECS stop events carry what the verdicts need; session_refused: no
    # verdict needs it (its alarm reads the server's metrics).
    return None
