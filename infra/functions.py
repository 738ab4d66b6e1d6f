"""The detector Lambda functions: code asset, Powertools layer, log group, least-privilege role.

No Docker bundling: the asset is the repo's `detectors/` package as-is (it imports only the stdlib,
boto3, Powertools and pydantic), and Powertools plus pydantic come from the public Powertools v3
layer, which AWS publishes per region, Python version and architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import Aws, Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

REPO_ROOT: Final = Path(__file__).resolve().parent.parent

# Published by the Powertools team in account 017000801446 of every commercial region.
POWERTOOLS_ACCOUNT: Final = "017000801446"
POWERTOOLS_LAYER_VERSION: Final = 38
PYTHON_RUNTIME: Final = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE: Final = lambda_.Architecture.ARM_64

# Everything but the detectors package: the asset root holds `detectors/` and nothing else.
ASSET_EXCLUDE: Final = ["*", ".*", "!detectors", "!detectors/**", "**/__pycache__", "**/*.pyc"]

HANDLERS: Final = {
    "EcsEvents": "detectors.handlers.ecs_events.handler",
    "SessionEvents": "detectors.handlers.session_events.handler",
    "Reporter": "detectors.handlers.reporter.handler",
}


def powertools_layer_arn(
    runtime: lambda_.Runtime = PYTHON_RUNTIME,
    architecture: lambda_.Architecture = ARCHITECTURE,
    version: int = POWERTOOLS_LAYER_VERSION,
) -> str:
    """The public Powertools v3 layer for this stack's region (resolved at deploy time)."""
    python = runtime.name.replace(".", "")  # python3.13 -> python313
    return (
        f"arn:{Aws.PARTITION}:lambda:{Aws.REGION}:{POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{python}-{architecture.name}:{version}"
    )


def detectors_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(REPO_ROOT), exclude=ASSET_EXCLUDE, ignore_mode=IgnoreMode.GLOB
    )


@dataclass(frozen=True)
class DetectorFunction:
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup


def detector_function(
    scope: Construct,
    id: str,
    *,
    code: lambda_.Code,
    layer: lambda_.ILayerVersion,
    environment: Mapping[str, str],
    timeout: Duration,
    log_retention: logs.RetentionDays,
    removal_policy: RemovalPolicy,
) -> DetectorFunction:
    """One detector: its own role that can write only its own log group (no managed policy).

    The caller grants the data permissions (ledger, topic, metrics) on top.
    """
    log_group = logs.LogGroup(
        scope, f"{id}Logs", retention=log_retention, removal_policy=removal_policy
    )
    role = iam.Role(
        scope,
        f"{id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"SessionWatch {id} detector",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    function = lambda_.Function(
        scope,
        id,
        code=code,
        handler=HANDLERS[id],
        runtime=PYTHON_RUNTIME,
        architecture=ARCHITECTURE,
        layers=[layer],
        environment=dict(environment),
        timeout=timeout,
        memory_size=256,
        role=role,
        log_group=log_group,
        description=f"SessionWatch detector: {HANDLERS[id]}",
    )
    return DetectorFunction(function=function, role=role, log_group=log_group)
