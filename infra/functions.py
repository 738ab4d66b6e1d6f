"""The detector Lambda functions: code asset, Powertools layer, log group, least-privilege role.

No Docker bundling: the asset is the `sessionwatch` package cut down to what the detectors import
(``__init__``, ``contract``, ``detectors/``), copied from wherever the package is installed, so a
user's CDK app synthesizes it from the wheel as this repository does. Beyond the stdlib the
detectors need boto3 (in the runtime), Powertools and pydantic (the public Powertools v3 layer,
which AWS publishes per region, Python version and architecture).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

import sessionwatch

# Where `sessionwatch` is imported from: the repository (through its symlinks) or site-packages.
PACKAGE_DIR: Final = Path(sessionwatch.__file__).parent
# The repository checkout, for the demo's container image (only meaningful in a clone).
REPO_ROOT: Final = Path(__file__).resolve().parent.parent

# Published by the Powertools team in account 017000801446 of every commercial region.
POWERTOOLS_ACCOUNT: Final = "017000801446"
POWERTOOLS_LAYER_VERSION: Final = 38
PYTHON_RUNTIME: Final = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE: Final = lambda_.Architecture.ARM_64

# The modules the Lambda asset carries: the detectors and the one module they share.
ASSET_MODULES: Final = ("__init__.py", "contract.py")
ASSET_PACKAGES: Final = ("detectors",)

HANDLERS: Final = {
    "EcsEvents": "sessionwatch.detectors.handlers.ecs_events.handler",
    "SessionEvents": "sessionwatch.detectors.handlers.session_events.handler",
    "Reporter": "sessionwatch.detectors.handlers.reporter.handler",
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


@cache
def detectors_asset_dir() -> Path:
    """A staged copy of the asset: ``<dir>/sessionwatch/{__init__,contract}.py, detectors/``.

    Staged once per process into a temporary directory (removed at exit); CDK copies it into the
    cloud assembly and hashes its content, so the template does not depend on the directory.
    """
    staged = Path(tempfile.mkdtemp(prefix="sessionwatch-asset-"))
    atexit.register(shutil.rmtree, staged, True)
    package = staged / "sessionwatch"
    package.mkdir()
    for module in ASSET_MODULES:
        shutil.copyfile(PACKAGE_DIR / module, package / module)
    for sub in ASSET_PACKAGES:
        shutil.copytree(
            PACKAGE_DIR / sub,
            package / sub,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.md"),
        )
    return staged


def detectors_code() -> lambda_.Code:
    return lambda_.Code.from_asset(str(detectors_asset_dir()))


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
    failed_invocations: sqs.IQueue | None,
    retry_attempts: int,
    max_event_age: Duration | None,
    handler: str | None = None,
) -> DetectorFunction:
    """One detector: its own role that can write only its own log group (no managed policy).

    Every trigger invokes it asynchronously (EventBridge, CloudWatch Logs), so Lambda retries a
    failed invocation `retry_attempts` times and then records it in `failed_invocations`; the
    destination grants the role SendMessage on that queue alone. The caller grants the data
    permissions (ledger, topic, metrics, ECS) on top.
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
        handler=handler or HANDLERS[id],
        runtime=PYTHON_RUNTIME,
        architecture=ARCHITECTURE,
        layers=[layer],
        environment=dict(environment),
        timeout=timeout,
        memory_size=256,
        role=role,
        log_group=log_group,
        description=f"SessionWatch detector: {handler or HANDLERS[id]}",
        on_failure=(
            None if failed_invocations is None else destinations.SqsDestination(failed_invocations)
        ),
        retry_attempts=retry_attempts,
        max_event_age=max_event_age,
    )
    return DetectorFunction(function=function, role=role, log_group=log_group)
