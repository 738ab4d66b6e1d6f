"""The deployment guards in the construct: the drain gate's function and hook, the stop-on-loss
and first-loss-alert permissions. Each is off unless its `SessionWatchProps` field is set."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from aws_cdk import Acknowledgment, ArnFormat, Duration, Stack, Validations
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from sessionwatch import contract

# What the drain gate does to the ledger: reads the deployment index, live tasks, their facts
# and sessions (Query, BatchGetItem), and writes its own item (UpdateItem). Nothing else.
GATE_LEDGER_ACTIONS: Final = ["dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:UpdateItem"]
GATE_HANDLER: Final = "sessionwatch.detectors.handlers.drain_gate.handler"
STOP_ACTION: Final = "ecs:StopServiceDeployment"
LIST_ACTION: Final = "ecs:ListServiceDeployments"
# ECS's own bound on a hook's timeout (DeploymentLifecycleHookTimeoutConfiguration).
MAX_HOOK_TIMEOUT_MINUTES: Final = 20160


@dataclass(frozen=True)
class DrainGateOptions:
    """The drain gate (a POST_PRODUCTION_TRAFFIC_SHIFT hook): how long it may hold blue."""

    max_hold: Duration = field(default_factory=lambda: Duration.hours(1))
    """The longest it holds the blue tasks' clean-up for their live sessions. Default: 1 hour
    (the MCP Python SDK's default idle timeout is 30 minutes)."""

    callback_delay: Duration = field(default_factory=lambda: Duration.seconds(30))
    """How soon ECS asks again while it holds (`callBackDelay`). Default: 30 s (ECS's own)."""

    def environment(self) -> dict[str, str]:
        return {
            contract.ENV_DRAIN_GATE_MAX_HOLD: str(int(self.max_hold.to_seconds())),
            contract.ENV_DRAIN_GATE_CALLBACK: str(int(self.callback_delay.to_seconds())),
        }

    def hook_timeout_minutes(self) -> int:
        """The hook's ECS timeout: past max_hold by two callbacks and 5 minutes, so the gate
        (not the timeout) ends the hold; CONTINUE at the timeout, never a rollback."""
        seconds = self.max_hold.to_seconds() + 2 * self.callback_delay.to_seconds()
        minutes = math.ceil(seconds / 60) + 5
        if minutes > MAX_HOOK_TIMEOUT_MINUTES:
            raise ValueError(
                f"max_hold too long: the hook timeout is at most {MAX_HOOK_TIMEOUT_MINUTES} min"
            )
        return minutes


def guard_environment(
    drain_gate: DrainGateOptions | None, stop_on_loss: int | None, first_loss_alert: bool
) -> dict[str, str]:
    env: dict[str, str] = {}
    if drain_gate is not None:
        env |= drain_gate.environment()
    if stop_on_loss is not None:
        if stop_on_loss < 1:
            raise ValueError("stop_on_loss is a number of lost sessions, at least 1")
        env[contract.ENV_STOP_ON_LOSS] = str(stop_on_loss)
    if first_loss_alert:
        env[contract.ENV_FIRST_LOSS_ALERT] = "true"
    return env


def grant_stops(
    stack: Stack,
    roles: Sequence[iam.IRole],
    cluster: str,
    services: Sequence[str],
    rendered: Callable[[str], str],
) -> None:
    """`ecs:StopServiceDeployment` on the watched services' deployments, and the
    ListServiceDeployments that finds a deployment's ARN, on the services only."""

    def arn(resource: str, service: str, suffix: str = "") -> str:
        return stack.format_arn(
            service="ecs",
            resource=resource,
            resource_name=f"{cluster}/{service}{suffix}",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    deployments = [arn("service-deployment", s, "/*") for s in services]
    for role in roles:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[LIST_ACTION], resources=[arn("service", s) for s in services]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=[STOP_ACTION], resources=deployments)
        )
        for resource in deployments:
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{rendered(resource)}]",
                    reason=(
                        "ecs:StopServiceDeployment names a deployment whose id exists only once "
                        "ECS created it; the wildcard is that id, under one watched service "
                        "(stop_on_loss)."
                    ),
                )
            )


def drain_gate_hook(
    service: ecs.BaseService,
    function: lambda_.IFunction,
    options: DrainGateOptions,
    hook_index: int = 0,
) -> ecs.DeploymentLifecycleLambdaTarget:
    """Attach the drain gate to a BLUE_GREEN / LINEAR / CANARY service, on
    POST_PRODUCTION_TRAFFIC_SHIFT, with a timeout past max_hold whose action is CONTINUE.

    The L2 hook has no timeout setting: it is set on the service's ``hook_index``-th lifecycle
    hook (0: the gate is the service's first hook; give its position if you add others first).
    """
    # ECS invokes the hook with this role: the one function, unqualified (no version wildcard).
    role = iam.Role(
        service,
        "SessionWatchDrainGateInvoke",
        assumed_by=iam.ServicePrincipal("ecs.amazonaws.com"),
        description="ECS invokes SessionWatch's drain gate (lifecycle hook)",
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])
    )
    target = ecs.DeploymentLifecycleLambdaTarget(
        function,
        "SessionWatchDrainGate",
        lifecycle_stages=[ecs.DeploymentLifecycleStage.POST_PRODUCTION_TRAFFIC_SHIFT],
        role=role,
    )
    service.add_lifecycle_hook(target)
    cfn = service.node.default_child
    assert isinstance(cfn, ecs.CfnService)
    cfn.add_property_override(
        f"DeploymentConfiguration.LifecycleHooks.{hook_index}.TimeoutConfiguration",
        {"Action": "CONTINUE", "TimeoutInMinutes": options.hook_timeout_minutes()},
    )
    return target
