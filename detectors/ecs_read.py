"""The one ECS read per deployment: its strategy, target revision, bake time and steps.

``ECS Deployment State Change`` carries no strategy, so the first event of a deployment that
the ledger has no settings for makes one ``DescribeServices`` call; the answer is cached in the
deployment's ledger item (``LedgerStore.record_settings``), so later events and every decision read
it from there.

DescribeServices lists only the service's PRIMARY and ACTIVE deployments, and its
``deploymentConfiguration`` is the service's *current* one. When the start event came so late
that its deployment is no longer listed (INACTIVE: completely replaced), the deployment's own
settings come from the service's history instead: ``ListServiceDeployments`` around the start
time, then ``DescribeServiceDeployments`` of the one created closest to it (the ``ecs-svc/`` id
of the events is not part of a service deployment's ARN, so they are matched by time). If that
fails, the current configuration stands.

When DescribeServices itself fails (AccessDenied, an unsupported region or endpoint, a missing
service), the deployment is marked ``unavailable`` and decided from events alone (as ROLLING,
the default strategy): logged once per container, never raised.

``settings_from_service``, ``settings_from_service_deployment`` and ``closest_deployment`` are
pure (tested with AWS-documented response shapes); ``read`` is the thin edge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from sessionwatch.detectors.facts import (
    EXTERNAL,
    ROLLING,
    STRATEGY_UNAVAILABLE,
    DeploymentSettings,
)

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import CreatedAtTypeDef
else:
    ECSClient = CreatedAtTypeDef = Any

# The IAM actions the ECS-events function needs for this read (detectors/README.md).
IAM_ACTIONS = (
    "ecs:DescribeServices",
    "ecs:ListServiceDeployments",
    "ecs:DescribeServiceDeployments",
)
# How far a service deployment's creation may be from the start event's time and still be the
# same deployment: ECS stamps both when it creates the deployment.
MATCH_WINDOW_S = 60.0
_logged: set[tuple[str, int]] = set()
log = logging.getLogger(__name__)


def settings_from_service(service: Mapping[str, Any], deployment_id: str) -> DeploymentSettings:
    """A DescribeServices ``services[]`` entry -> the deployment's settings.

    The strategy is the service's ``deploymentConfiguration.strategy`` (ROLLING when absent,
    as ECS defaults); a CODE_DEPLOY/EXTERNAL controller makes it EXTERNAL. The target
    revision is the ``deployments[]`` entry whose ``id`` is the deployment's.
    """
    controller = (service.get("deploymentController") or {}).get("type")
    task_definition = None
    for dep in service.get("deployments") or []:
        if dep.get("id") == deployment_id:
            task_definition = dep.get("taskDefinition")
    return _from_configuration(
        service.get("deploymentConfiguration") or {},
        task_definition,
        external=controller in ("CODE_DEPLOY", "EXTERNAL"),
    )


def settings_from_service_deployment(deployment: Mapping[str, Any]) -> DeploymentSettings:
    """A DescribeServiceDeployments ``serviceDeployments[]`` entry -> its own settings (the
    configuration it ran with, whatever the service's is now). Its target is a service
    revision, not a task definition, so lineage rests on the tasks' ``startedBy``."""
    return _from_configuration(deployment.get("deploymentConfiguration") or {}, None)


def _from_configuration(
    config: Mapping[str, Any], task_definition: str | None, external: bool = False
) -> DeploymentSettings:
    strategy = EXTERNAL if external else str(config.get("strategy") or ROLLING)
    bake = config.get("bakeTimeInMinutes")
    step_pct = step_bake = None
    if strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step_pct, step_bake = linear.get("stepPercent"), linear.get("stepBakeTimeInMinutes")
    elif strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        step_pct, step_bake = canary.get("canaryPercent"), canary.get("canaryBakeTimeInMinutes")
    return DeploymentSettings(
        strategy=strategy,
        task_definition=task_definition,
        bake_s=None if bake is None else float(bake) * 60,
        step_percent=None if step_pct is None else float(step_pct),
        step_bake_s=None if step_bake is None else float(step_bake) * 60,
    )


def closest_deployment(briefs: Iterable[Mapping[str, Any]], at: float) -> str | None:
    """The ``serviceDeploymentArn`` of the ListServiceDeployments entry created closest to
    ``at``, if one was created within ``MATCH_WINDOW_S`` of it."""
    best: tuple[float, str] | None = None
    for brief in briefs:
        arn, created = brief.get("serviceDeploymentArn"), _epoch(brief.get("createdAt"))
        if not isinstance(arn, str) or created is None or abs(created - at) > MATCH_WINDOW_S:
            continue
        if best is None or (abs(created - at), arn) < best:
            best = (abs(created - at), arn)
    return None if best is None else best[1]


def _epoch(value: object) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


def read(
    ecs: ECSClient | None,
    cluster: str,
    service: str,
    deployment_id: str,
    started_at: float | None = None,
) -> DeploymentSettings:
    """DescribeServices; the service's history when the deployment is no longer listed and its
    start time is known. A failed DescribeServices gives ``unavailable`` settings (logged)."""
    if ecs is None:
        return DeploymentSettings(None, source=STRATEGY_UNAVAILABLE)
    try:
        resp = ecs.describe_services(cluster=cluster, services=[service])
        found = [s for s in resp.get("services", []) if s.get("serviceName") == service]
        if not found:
            raise LookupError("service not found by DescribeServices")
    except (ClientError, BotoCoreError, LookupError) as exc:
        _log_once(exc, "ECS read unavailable: deciding from events alone (as ROLLING)", 0)
        return DeploymentSettings(None, source=STRATEGY_UNAVAILABLE)
    svc: dict[str, Any] = dict(found[0])
    current = settings_from_service(svc, deployment_id)
    listed = any(d.get("id") == deployment_id for d in svc.get("deployments") or [])
    if listed or started_at is None or current.strategy == EXTERNAL:
        return current
    try:
        return _from_history(ecs, cluster, service, started_at) or current
    except (ClientError, BotoCoreError) as exc:
        _log_once(exc, "ECS service history unavailable: using the service's current settings", 1)
        return current


def _from_history(
    ecs: ECSClient, cluster: str, service: str, started_at: float
) -> DeploymentSettings | None:
    window: CreatedAtTypeDef = {
        "after": datetime.fromtimestamp(started_at - MATCH_WINDOW_S, UTC),
        "before": datetime.fromtimestamp(started_at + MATCH_WINDOW_S, UTC),
    }
    briefs = ecs.list_service_deployments(cluster=cluster, service=service, createdAt=window)
    arn = closest_deployment(briefs.get("serviceDeployments", []), started_at)
    if arn is None:
        return None
    described = ecs.describe_service_deployments(serviceDeploymentArns=[arn])
    for deployment in described.get("serviceDeployments", []):
        if deployment.get("serviceDeploymentArn") == arn:
            return settings_from_service_deployment(deployment)
    return None


def _log_once(exc: Exception, message: str, action: int) -> None:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    if (code, action) not in _logged:
        _logged.add((code, action))
        log.warning(message, extra={"error": code, "action": IAM_ACTIONS[action]})
