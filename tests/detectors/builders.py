"""Small builders for detector test inputs, on the simulated world's shapes (``world``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionwatch.detectors.facts import DeploymentObserved, TaskFacts
from sessionwatch.detectors.ledger import LedgerStore
from sessionwatch.server.fingerprint import fingerprint
from world.ecs import ServiceRef, TaskRecord, deployment_event, iso, task_event
from world.server_logs import FILTER_NAME, LOG_GROUP, server_line, subscription_payload

ECS_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ecs"
CLUSTER = "mcp-cluster"
SERVICE = "mcp-service"
REGION, ACCOUNT = "us-east-1", "111122223333"
CLUSTER_ARN = ServiceRef(REGION, ACCOUNT, CLUSTER, SERVICE).cluster_arn
T0 = datetime(2026, 4, 26, 15, 0, 0, tzinfo=UTC).timestamp()

__all__ = ["CLUSTER", "CLUSTER_ARN", "SERVICE", "T0", "iso"]


def load(name: str) -> dict[str, Any]:
    return json.loads((ECS_FIXTURES / f"{name}.json").read_text())


def fp(name: str) -> str:
    """A fingerprint for a readable test session name (raw ids never leave the test)."""
    return fingerprint(f"session-{name}")


def deployment(dep: str, state: str, t: float, service: str = SERVICE) -> dict[str, Any]:
    ref = ServiceRef(REGION, ACCOUNT, CLUSTER, service)
    ev = deployment_event(ref, dep, f"SERVICE_DEPLOYMENT_{state}", t).envelope(ref, 0)
    ev["id"] = f"dep-{dep}-{state}-{t}"
    return ev


def task(
    task_id: str,
    status: str,
    t: float,
    *,
    started_by: str = "ecs-svc/old",
    started_at: float | None = None,
    stopping_at: float | None = None,
    stopped_at: float | None = None,
    stop_code: str | None = None,
    reason: str | None = None,
    service: str = SERVICE,
) -> dict[str, Any]:
    """An ECS Task State Change now ``status``, with the stop fields we choose."""
    ref = ServiceRef(REGION, ACCOUNT, CLUSTER, service)
    started = started_at if started_at is not None else T0 - 7200
    record = TaskRecord(
        task_id,
        started_by,
        "1",
        created_at=started - 30,
        started_at=started,
        stopping_at=stopping_at,
        stopped_at=stopped_at,
        stop_code=stop_code,
        stopped_reason=reason,
    )
    desired = "RUNNING" if status == "RUNNING" else "STOPPED"
    ev = task_event(ref, record, status, desired, t).envelope(ref, 0)
    ev["id"] = f"task-{task_id}-{status}-{t}"
    return ev


def line(event: str, task_id: str, t: float, **fields: Any) -> str:
    """The server's line for ``event`` on ``task_id`` at ``t``."""
    return server_line(event, task_id, t, **fields)


def subscription(messages: list[str], stream: str = "ecs/mcp-server/x") -> dict[str, Any]:
    """A CloudWatch Logs subscription event (base64 + gzip) carrying ``messages``."""
    return subscription_payload(LOG_GROUP, stream, FILTER_NAME, [(0, m) for m in messages])


def record_fact(ledger: LedgerStore, fact: DeploymentObserved | TaskFacts) -> None:
    """Store one ECS fact in ``ledger``, whichever kind it is."""
    if isinstance(fact, DeploymentObserved):
        ledger.record_deployment(fact)
    else:
        ledger.record_task(fact)
