"""ECS events in the shapes AWS documents for source ``aws.ecs``: the world's one definition.

The lab's orchestration, the accuracy benchmark's generated timelines and the detector tests all
build their ECS events here (the same fields as tests/fixtures/ecs/, which tests/world compares
them with). ``EcsEvent`` holds what ``put_events`` takes (the lab puts it into moto EventBridge,
which adds ``id``, ``version``, ``account`` and ``region``); ``EcsEvent.envelope`` is the whole
event as EventBridge delivers it to a target (what a Lambda is invoked with).

Field sources: "Amazon ECS task state change events", "Amazon ECS service deployment state
change events", "Amazon ECS service action events" and the lifecycle-hook events of the ECS
Developer Guide; a task's ``stopCode``/``stoppedReason`` as the Task API reference lists them.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

DETAIL_DEPLOYMENT = "ECS Deployment State Change"
DETAIL_TASK = "ECS Task State Change"
DETAIL_SERVICE_ACTION = "ECS Service Action"
DETAIL_HOOK = "ECS Hook State Change"
CONTAINER = "mcp-server"

STOP_SCHEDULER = "ServiceSchedulerInitiated"
STOP_ESSENTIAL_EXIT = "EssentialContainerExited"
STOP_SPOT = "SpotInterruption"
STOP_USER = "UserInitiated"
SPOT_REASON = "Your Spot Task was interrupted."
CRASH_REASON = "Essential container in task exited"
CIRCUIT_BREAKER_FAILED = "ECS deployment circuit breaker: tasks failed to start."
# ECS's documented rollback reason is the circuit breaker's; for an alarm-based rollback the lab
# words it the same way, naming the alarm as the trigger (the detectors key on "rolling back to").
ROLLBACK_REASON = "ECS deployment {trigger}: rolling back to deploymentId {target}."


def iso(t: float) -> str:
    """ECS's timestamp format (and the server's): ISO-8601 UTC with milliseconds and ``Z``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def health_check_reason(target_group_arn: str) -> str:
    """ECS stops a task that fails its load balancer health checks with this reason (and the
    scheduler's stop code)."""
    return f"Task failed ELB health checks in (target-group {target_group_arn})"


def scheduler_reason(started_by: str) -> str:
    """ECS names the deployment that STARTED the task being stopped (docs/architecture.md §5)."""
    return f"Scaling activity initiated by (deployment {started_by})"


def new_deployment_id(rng: random.Random | None = None) -> str:
    """An ECS deployment id (``ecs-svc/`` and 19 digits)."""
    rng = rng or random.Random()
    return "ecs-svc/" + "".join(str(rng.randrange(10)) for _ in range(19))


@dataclass(frozen=True)
class ServiceRef:
    """Where the lab's service lives: what every event names."""

    region: str
    account: str
    cluster: str
    service: str
    family: str = "mcp-server"

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{self.cluster}"

    @property
    def service_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:service/{self.cluster}/{self.service}"

    def task_arn(self, task_id: str) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:task/{self.cluster}/{task_id}"

    def task_definition_arn(self, revision: str | int) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:task-definition/{self.family}:{revision}"

    def service_revision_arn(self, revision: str | int) -> str:
        return (
            f"arn:aws:ecs:{self.region}:{self.account}:service-revision/"
            f"{self.cluster}/{self.service}/{revision}"
        )


@dataclass(frozen=True)
class EcsEvent:
    """One event as ``put_events`` takes it."""

    detail_type: str
    resources: list[str]
    detail: dict[str, Any]
    time: float

    def as_entry(self) -> dict[str, Any]:
        return {
            "Source": "aws.ecs",
            "DetailType": self.detail_type,
            "Resources": self.resources,
            "Detail": json.dumps(self.detail),
            "Time": datetime.fromtimestamp(self.time, UTC),
        }

    def envelope(self, ref: ServiceRef, n: int) -> dict[str, Any]:
        """The event as EventBridge delivers it to a target; ``n`` makes its ``id`` unique.
        EventBridge's ``time`` has whole seconds and no fraction (tests/fixtures/ecs/)."""
        return {
            "version": "0",
            "id": f"{n:08x}-0000-4000-8000-{int(self.time * 1000) % 10**12:012d}",
            "detail-type": self.detail_type,
            "source": "aws.ecs",
            "account": ref.account,
            "time": datetime.fromtimestamp(math.floor(self.time), UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "region": ref.region,
            "resources": self.resources,
            "detail": self.detail,
        }


def deployment_event(
    ref: ServiceRef, deployment_id: str, name: str, at: float, reason: str | None = None
) -> EcsEvent:
    """``SERVICE_DEPLOYMENT_IN_PROGRESS`` / ``_COMPLETED`` / ``_FAILED`` (``reason`` overrides)."""
    words = {
        "SERVICE_DEPLOYMENT_IN_PROGRESS": "in progress",
        "SERVICE_DEPLOYMENT_COMPLETED": "completed",
    }
    detail = {
        "eventType": "ERROR" if name == "SERVICE_DEPLOYMENT_FAILED" else "INFO",
        "eventName": name,
        "deploymentId": deployment_id,
        "updatedAt": iso(at),
        "reason": reason or f"ECS deployment {deployment_id} {words.get(name, 'failed')}.",
    }
    return EcsEvent(DETAIL_DEPLOYMENT, [ref.service_arn], detail, at)


def service_deployment_arn(ref: ServiceRef, deployment_id: str) -> str:
    """The service deployment's ARN (``service-deployment/<cluster>/<service>/<id>``)."""
    suffix = deployment_id.removeprefix("ecs-svc/")
    return (
        f"arn:aws:ecs:{ref.region}:{ref.account}:service-deployment/"
        f"{ref.cluster}/{ref.service}/{suffix}"
    )


def hook_event(ref: ServiceRef, deployment_id: str, stage: str, status: str, at: float) -> EcsEvent:
    """An ``ECS Hook State Change``: a lifecycle hook of ``stage`` is ``status`` (IN_PROGRESS,
    SUCCEEDED, ...). ECS sends these only for stages the service has a hook on."""
    detail = {
        "eventType": "INFO",
        "eventName": f"HOOK_{status}",
        "lifecycleStage": stage,
        "clusterArn": ref.cluster_arn,
        "serviceArn": ref.service_arn,
        "serviceDeploymentArn": service_deployment_arn(ref, deployment_id),
        "hookTargetArn": f"arn:aws:lambda:{ref.region}:{ref.account}:function:lab-hook",
        "updatedAt": iso(at),
    }
    return EcsEvent(DETAIL_HOOK, [ref.service_arn], detail, at)


def steady_state_event(ref: ServiceRef, at: float) -> EcsEvent:
    return service_action_event(ref, "SERVICE_STEADY_STATE", at)


def service_action_event(ref: ServiceRef, name: str, at: float) -> EcsEvent:
    detail = {
        "eventType": "INFO",
        "eventName": name,
        "clusterArn": ref.cluster_arn,
        "createdAt": iso(at),
    }
    return EcsEvent(DETAIL_SERVICE_ACTION, [ref.service_arn], detail, at)


@dataclass
class TaskRecord:
    """What ECS knows about one task, updated as the lab moves it through its life."""

    task_id: str
    started_by: str
    revision: str
    created_at: float
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    exit_code: int | None = None
    version: int = 1
    capacity_provider: str = "FARGATE"
    execution_stopped_at: float | None = None
    availability_zone: str = "a"  # the zone's letter in the service's region


def task_event(ref: ServiceRef, task: TaskRecord, last: str, desired: str, at: float) -> EcsEvent:
    """An ``ECS Task State Change`` for ``task`` now ``last`` (lastStatus), wanted ``desired``."""
    task.version += 1
    arn = ref.task_arn(task.task_id)
    container: dict[str, Any] = {
        "containerArn": f"{arn.replace(':task/', ':container/')}/{CONTAINER}",
        "lastStatus": last,
        "name": CONTAINER,
        "image": f"{ref.account}.dkr.ecr.{ref.region}.amazonaws.com/{ref.family}:lab",
        "taskArn": arn,
        "cpu": "0",
    }
    if task.exit_code is not None and last == "STOPPED":
        container["exitCode"] = task.exit_code
    detail: dict[str, Any] = {
        "attachments": [
            {
                "id": f"eni-{task.task_id[:8]}",
                "type": "eni",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": "subnet-0abcd1234"},
                    {"name": "networkInterfaceId", "value": f"eni-{task.task_id[:8]}"},
                    {"name": "privateIPv4Address", "value": "10.0.1.139"},
                ],
            }
        ],
        "availabilityZone": f"{ref.region}{task.availability_zone}",
        "clusterArn": ref.cluster_arn,
        "containers": [container],
        "createdAt": iso(task.created_at),
        "launchType": "FARGATE",
        "cpu": "256",
        "memory": "512",
        "desiredStatus": desired,
        "group": f"service:{ref.service}",
        "lastStatus": last,
        "overrides": {"containerOverrides": [{"name": CONTAINER}]},
        "connectivity": "CONNECTED",
        "startedBy": task.started_by,
        "taskArn": arn,
        "taskDefinitionArn": (
            f"arn:aws:ecs:{ref.region}:{ref.account}:task-definition/{ref.family}:{task.revision}"
        ),
        "updatedAt": iso(at),
        "version": task.version,
        "platformVersion": "1.4.0",
        "capacityProviderName": task.capacity_provider,
    }
    for key, value in (
        ("startedAt", task.started_at),
        ("stoppingAt", task.stopping_at),
        (
            "executionStoppedAt",
            task.execution_stopped_at if task.execution_stopped_at is not None else task.stopped_at,
        ),
        ("stoppedAt", task.stopped_at if last == "STOPPED" else None),
    ):
        if value is not None:
            detail[key] = iso(value)
    if task.stop_code is not None:
        detail["stopCode"] = task.stop_code
        detail["stoppedReason"] = task.stopped_reason
    return EcsEvent(DETAIL_TASK, [arn], detail, at)


def scheduler_stop_reason(task: TaskRecord) -> str:
    """ECS names the deployment that STARTED the task being stopped (docs/architecture.md §5)."""
    return scheduler_reason(task.started_by)
