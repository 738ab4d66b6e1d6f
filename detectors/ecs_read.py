"""The one ECS read per deployment: its strategy, target revision, bake time and steps.

``ECS Deployment State Change`` carries no strategy, so the first event of a deployment that
the ledger has no settings for makes one ``DescribeServices`` call; the answer is cached in the
deployment's ledger item (``Ledger.record_settings``), so later events and every decision read
it from there. When the call fails (AccessDenied, an unsupported region or endpoint, a missing
service), the deployment is marked ``unavailable`` and decided from events alone (as ROLLING,
the default strategy): logged once per container, never raised.

``settings_from_service`` is pure (tested with AWS-documented response shapes); ``read`` is the
thin edge.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
else:
    ECSClient = Any

# The IAM actions the ECS-events function needs for this read (detectors/README.md).
IAM_ACTIONS = ("ecs:DescribeServices",)
_logged: set[str] = set()
log = logging.getLogger(__name__)


def settings_from_service(service: Mapping[str, Any], deployment_id: str) -> DeploymentSettings:
    """A DescribeServices ``services[]`` entry -> the deployment's settings.

    The strategy is the service's ``deploymentConfiguration.strategy`` (ROLLING when absent,
    as ECS defaults); a CODE_DEPLOY/EXTERNAL controller makes it EXTERNAL. The target
    revision is the ``deployments[]`` entry whose ``id`` is the deployment's.
    """
    config = service.get("deploymentConfiguration") or {}
    controller = (service.get("deploymentController") or {}).get("type")
    strategy = str(config.get("strategy") or ROLLING)
    if controller in ("CODE_DEPLOY", "EXTERNAL"):
        strategy = EXTERNAL
    task_definition = None
    for dep in service.get("deployments") or []:
        if dep.get("id") == deployment_id:
            task_definition = dep.get("taskDefinition")
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


def read(
    ecs: ECSClient | None, cluster: str, service: str, deployment_id: str
) -> DeploymentSettings:
    """One DescribeServices call; any failure gives ``unavailable`` settings (logged once)."""
    if ecs is None:
        return DeploymentSettings(None, source=STRATEGY_UNAVAILABLE)
    try:
        resp = ecs.describe_services(cluster=cluster, services=[service])
        found = [s for s in resp.get("services", []) if s.get("serviceName") == service]
        if not found:
            raise LookupError("service not found by DescribeServices")
        return settings_from_service(dict(found[0]), deployment_id)
    except (ClientError, BotoCoreError, LookupError) as exc:
        code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
        if code not in _logged:
            _logged.add(code)
            log.warning(
                "ECS read unavailable: deciding from events alone (as ROLLING)",
                extra={"error": code, "action": IAM_ACTIONS[0]},
            )
        return DeploymentSettings(None, source=STRATEGY_UNAVAILABLE)
