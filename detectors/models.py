"""Input models: the ECS EventBridge ``detail`` shapes and the server's log lines.

Powertools ships no ECS detail models, so these are our own, permissive about fields we do not
read (AWS adds fields) and strict about the ones the verdicts rest on.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from sessionwatch import contract

FINGERPRINT_PATTERN = r"^[0-9a-f]{16}$"  # docs/architecture.md §2; a raw session id never matches


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class DeploymentDetail(_Lenient):
    """``ECS Deployment State Change`` detail."""

    event_name: str = Field(alias="eventName")
    deployment_id: str = Field(alias="deploymentId", min_length=1)
    updated_at: datetime = Field(alias="updatedAt")
    reason: str | None = None


class HookDetail(_Lenient):
    """``ECS Hook State Change`` detail (only for services with lifecycle hooks).

    Lenient on purpose: AWS documents ``lifecycleStage``, ``serviceDeploymentArn`` and
    ``serviceArn``; the status is read from ``eventName`` (HOOK_IN_PROGRESS, SUCCEEDED, ...)
    or ``status``, the time from ``updatedAt`` or the envelope's ``time``.
    """

    lifecycle_stage: str = Field(alias="lifecycleStage", min_length=1, max_length=64)
    event_name: str | None = Field(default=None, alias="eventName", max_length=64)
    status: str | None = Field(default=None, max_length=64)
    service_arn: str | None = Field(default=None, alias="serviceArn")
    service_deployment_arn: str | None = Field(default=None, alias="serviceDeploymentArn")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


class TaskDetail(_Lenient):
    """``ECS Task State Change`` detail: the fields the verdicts read."""

    task_arn: str = Field(alias="taskArn", min_length=1)
    cluster_arn: str = Field(alias="clusterArn", min_length=1)
    group: str | None = None
    last_status: str = Field(alias="lastStatus")
    desired_status: str | None = Field(default=None, alias="desiredStatus")
    started_by: str | None = Field(default=None, alias="startedBy")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    stopping_at: datetime | None = Field(default=None, alias="stoppingAt")
    stopped_at: datetime | None = Field(default=None, alias="stoppedAt")
    stop_code: str | None = Field(default=None, alias="stopCode")
    stopped_reason: str | None = Field(default=None, alias="stoppedReason")
    task_definition_arn: str | None = Field(default=None, alias="taskDefinitionArn")


class ServiceActionDetail(_Lenient):
    """``ECS Service Action`` detail (steady state, placement failures): logged, not stored."""

    event_name: str = Field(alias="eventName")
    cluster_arn: str | None = Field(default=None, alias="clusterArn")


class ServerLine(_Lenient):
    """Fields every server line carries (docs/architecture.md §3); ``event`` picks the subclass."""

    timestamp: datetime
    task_id: str = Field(min_length=1, max_length=128)
    service: str | None = None


class SessionCreatedLine(ServerLine):
    session: str = Field(pattern=FINGERPRINT_PATTERN)
    # clientInfo.name as the server sanitized it; anything else is dropped, never the line.
    client_name: object = None


class SessionClosedLine(ServerLine):
    session: str = Field(pattern=FINGERPRINT_PATTERN)
    reason: str | None = None


class SessionNotFoundLine(ServerLine):
    session: str = Field(pattern=FINGERPRINT_PATTERN)


class TaskStartedLine(ServerLine):
    task_arn: str | None = None
    cluster: str | None = None


class ShutdownStartedLine(ServerLine):
    active_sessions: int | None = None


class SessionRefusedLine(ServerLine):
    """A new session refused at the SDK's cap: it passes the filter (``session_*``) and is
    accepted, but no verdict needs it (its alarm is on the server's metrics)."""

    http_status: int | None = None


LINE_MODELS: dict[str, type[ServerLine]] = {
    contract.EVENT_SESSION_CREATED: SessionCreatedLine,
    contract.EVENT_SESSION_CLOSED: SessionClosedLine,
    contract.EVENT_SESSION_NOT_FOUND: SessionNotFoundLine,
    contract.EVENT_TASK_STARTED: TaskStartedLine,
    contract.EVENT_SHUTDOWN_STARTED: ShutdownStartedLine,
    contract.EVENT_SESSION_REFUSED: SessionRefusedLine,
}
