"""Stop on loss: roll a deployment back, on demand, seconds after it lost ``threshold`` sessions.

ECS facts (API reference, StopServiceDeployment; developer guide, "Stopping Amazon ECS service
deployments"): ``StopServiceDeployment(serviceDeploymentArn, stopType="ROLLBACK")`` "rolls back
the service deployment to the previous service revision", "even if you didn't configure the
service deployment for the rollback option"; a PENDING or IN_PROGRESS deployment moves to
ROLLBACK_REQUESTED and the rollback starts. IAM: ``ecs:StopServiceDeployment`` on the
``service-deployment/<cluster>/<service>/*`` resource.

The events name a deployment by its ``ecs-svc/`` id, which is not part of a service
deployment's ARN: the ARN is found as ``detectors/ecs_read.py`` finds it, by ListServiceDeployments
around the deployment's start (``ecs_read.closest_deployment``), here only among the
service's PENDING / IN_PROGRESS ones (a deployment still running is the one to stop).

``should_stop`` and ``report_line`` are pure; ``stop`` is the ECS edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sessionwatch.detectors import ecs_read
from sessionwatch.detectors.facts import DeploymentWindow
from sessionwatch.detectors.ledger import GuardValue

IAM_ACTION = "ecs:StopServiceDeployment"
STOP_TYPE = "ROLLBACK"
RUNNING_STATUSES = ["PENDING", "IN_PROGRESS"]


class NoServiceDeployment(LookupError):
    """No running service deployment of the service matches the deployment's start."""


def should_stop(window: DeploymentWindow | None, losses: int, threshold: int) -> bool:
    """Stop when on, the threshold is reached, the deployment still runs and is not itself a
    rollback (rolling a rollback back would restore the revision that was failing)."""
    return (
        threshold > 0
        and losses >= threshold
        and window is not None
        and window.ended_at is None
        and window.rollback_to is None
    )


def service_deployment_arn(ecs: Any, cluster: str, service: str, started_at: float) -> str:
    """The running service deployment created closest to the deployment's start."""
    window = {
        "after": datetime.fromtimestamp(started_at - ecs_read.MATCH_WINDOW_S, UTC),
        "before": datetime.fromtimestamp(started_at + ecs_read.MATCH_WINDOW_S, UTC),
    }
    resp = ecs.list_service_deployments(
        cluster=cluster, service=service, status=RUNNING_STATUSES, createdAt=window
    )
    arn = ecs_read.closest_deployment(resp.get("serviceDeployments", []), started_at)
    if arn is None:
        raise NoServiceDeployment(f"no running service deployment of {service} near its start")
    return arn


def stop(ecs: Any, cluster: str, window: DeploymentWindow) -> str:
    """StopServiceDeployment ROLLBACK; returns the stopped service deployment's ARN."""
    arn = service_deployment_arn(ecs, cluster, window.service, window.started_at)
    ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType=STOP_TYPE)
    return arn


def report_line(item: Mapping[str, GuardValue]) -> str | None:
    """ "stopped by SessionWatch after 2 lost sessions, 4 s after the first"."""
    at, losses, first = item.get("stopped_at"), item.get("losses"), item.get("first_loss_at")
    if not isinstance(at, float) or not isinstance(losses, float):
        return None
    after = f", {at - first:.0f} s after the first" if isinstance(first, float) else ""
    return f"stopped by SessionWatch (ROLLBACK) after {int(losses)} lost session(s){after}"
