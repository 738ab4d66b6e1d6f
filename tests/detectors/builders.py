"""Small builders for detector test inputs, starting from the copied ECS samples."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sessionwatch.server.fingerprint import fingerprint

ECS_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "ecs"
CLUSTER = "mcp-cluster"
SERVICE = "mcp-service"
CLUSTER_ARN = f"arn:aws:ecs:us-east-1:111122223333:cluster/{CLUSTER}"
T0 = datetime(2026, 4, 26, 15, 0, 0, tzinfo=UTC).timestamp()


def load(name: str) -> dict[str, Any]:
    return json.loads((ECS_FIXTURES / f"{name}.json").read_text())


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fp(name: str) -> str:
    """A fingerprint for a readable test session name (raw ids never leave the test)."""
    return fingerprint(f"session-{name}")


def deployment(dep: str, state: str, t: float, service: str = SERVICE) -> dict[str, Any]:
    ev = copy.deepcopy(load("deployment-in-progress"))
    ev["id"] = f"dep-{dep}-{state}-{t}"
    ev["time"] = iso(t)
    ev["resources"] = [f"arn:aws:ecs:us-east-1:111122223333:service/{CLUSTER}/{service}"]
    ev["detail"].update(eventName=f"SERVICE_DEPLOYMENT_{state}", deploymentId=dep, updatedAt=iso(t))
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
    cluster_arn: str = CLUSTER_ARN,
) -> dict[str, Any]:
    """An ECS Task State Change built on the RUNNING sample, with the stop fields we choose."""
    ev = copy.deepcopy(load("task-running"))
    arn = f"arn:aws:ecs:us-east-1:111122223333:task/{CLUSTER}/{task_id}"
    ev["id"] = f"task-{task_id}-{status}-{t}"
    ev["time"] = iso(t)
    ev["resources"] = [arn]
    d = ev["detail"]
    d.update(
        taskArn=arn,
        clusterArn=cluster_arn,
        group=f"service:{service}",
        lastStatus=status,
        desiredStatus="RUNNING" if status == "RUNNING" else "STOPPED",
        startedBy=started_by,
        startedAt=iso(started_at if started_at is not None else T0 - 7200),
        updatedAt=iso(t),
    )
    for key, value in (
        ("stoppingAt", stopping_at),
        ("stoppedAt", stopped_at),
    ):
        if value is not None:
            d[key] = iso(value)
    if stop_code:
        d["stopCode"] = stop_code
    if reason:
        d["stoppedReason"] = reason
    return ev


def line(event: str, task_id: str, t: float, **fields: Any) -> str:
    doc = {
        "timestamp": iso(t),
        "level": "INFO",
        "service": "mcp-server",
        "message": event.replace("_", " "),
        "event": event,
        "task_id": task_id,
        **fields,
    }
    return json.dumps(doc)


def subscription(messages: list[str], stream: str = "ecs/mcp-server/x") -> dict[str, Any]:
    """A CloudWatch Logs subscription event (base64 + gzip) carrying ``messages``."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": "/ecs/mcp-server",
        "logStream": stream,
        "subscriptionFilters": ["sessionwatch"],
        "logEvents": [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(messages)],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()}}
