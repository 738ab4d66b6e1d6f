"""One real CDK synth per test session (about 3 s), shared by every infra test.

Tests read it through `aws_cdk.assertions.Template` (`Template.from_stack` on the synthesized app
reads its cached assembly: no second synth) and name resources by the constructs that made them
(`logical_id`), never by guessing logical ids. Where a test must evaluate an intrinsic as AWS
would (the ECS rule's pattern, the dashboard body), it resolves it with the lab's resolver
against `PSEUDO_REFS`, the ECS fixtures' account and region.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.requirements import require

# Importing the CDK starts Node.js (jsii): without it, say so (a skip, a failure under CI=true)
# instead of jsii's AttributeError at collection.
require("node")

from aws_cdk import App, CfnElement, Stack  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from constructs import IConstruct  # noqa: E402

from sessionwatch.infra.addon import SessionWatchStack  # noqa: E402
from sessionwatch.infra.app import ADDON_STACK, DEMO_STACK, build_app  # noqa: E402
from sessionwatch.infra.construct import SessionWatch  # noqa: E402
from sessionwatch.infra.demo import DemoServiceStack  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
# The ECS fixtures' account and region.
ACCOUNT = "111122223333"
REGION = "us-east-1"
PSEUDO_REFS = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


def logical_id(construct: IConstruct) -> str:
    """The logical id CloudFormation knows the construct's resource by."""
    child = construct.node.default_child
    assert isinstance(child, CfnElement), construct.node.path
    return Stack.of(construct).get_logical_id(child)


@dataclass(frozen=True)
class Synth:
    """One synthesized app: its stacks, their templates as JSON and as `Template`s."""

    outdir: Path
    app: App
    templates: dict[str, dict[str, Any]]

    def stack(self, name: str) -> Stack:
        stack = self.app.node.find_child(name)
        assert isinstance(stack, Stack)
        return stack

    def template(self, name: str) -> Template:
        """`Template.from_stack` reads the app's one cached synth (no second synth)."""
        return Template.from_stack(self.stack(name))

    @property
    def addon_template(self) -> Template:
        return self.template(ADDON_STACK)

    @property
    def demo_template(self) -> Template:
        return self.template(DEMO_STACK)

    @property
    def addon_stack(self) -> SessionWatchStack:
        stack = self.stack(ADDON_STACK)
        assert isinstance(stack, SessionWatchStack)
        return stack

    @property
    def demo_stack(self) -> DemoServiceStack:
        stack = self.stack(DEMO_STACK)
        assert isinstance(stack, DemoServiceStack)
        return stack

    def sessionwatch(self, name: str) -> SessionWatch:
        return self.addon_stack.sessionwatch if name == "addon" else self.demo_stack.sessionwatch

    @property
    def addon(self) -> dict[str, Any]:
        return self.templates[ADDON_STACK]

    @property
    def demo(self) -> dict[str, Any]:
        return self.templates[DEMO_STACK]

    def validation_report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())


def cdk_json_context() -> dict[str, Any]:
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])


def synth(outdir: Path, context: dict[str, Any]) -> Synth:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    app = build_app(outdir=str(outdir), context=context)
    app.synth()
    templates = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in outdir.glob("*.template.json")
    }
    return Synth(outdir=outdir, app=app, templates=templates)


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app exactly as `python -m sessionwatch.infra` builds it, with cdk.json's context."""
    return synth(tmp_path_factory.mktemp("cdk-out"), cdk_json_context())


CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:111122223333:certificate/00000000-0000-0000-0000-000000000000"
)
ADDON_CONTEXT = {
    "sessionwatch:clusterName": "prod-mcp",
    "sessionwatch:serviceNames": "mcp-a, mcp-b",
    "sessionwatch:logGroupName": "/ecs/prod-mcp",
    "sessionwatch:serverServiceName": "mcp-prod",
    "sessionwatch:loadBalancerFullName": "app/prod-alb/0123456789abcdef",
    "sessionwatch:targetGroupFullName": "targetgroup/prod-tg/fedcba9876543210",
    "sessionwatch:groupStickinessSeconds": "300",
    "sessionwatch:alarmEmails": "oncall@example.com,sre@example.com",
    "sessionwatch:gracePeriodSeconds": "180",
    "sessionwatch:deploymentLossThreshold": "3",
    "sessionwatch:deregistrationDelaySeconds": "60",
    "sessionwatch:stopTimeoutSeconds": "90",
    "sessionwatch:clockErrorSeconds": "0.05",
    "sessionwatch:highResolutionAlarms": "true",
    "sessionwatch:slackWorkspaceId": "T0123ABCD",
    "sessionwatch:slackChannelId": "C0123ABCD",
    # The demo stack of the same synth: public to two client networks, over HTTPS.
    "sessionwatch:allowedClientCidrs": "203.0.113.0/24, 198.51.100.7/32",
    "sessionwatch:certificateArn": CERTIFICATE_ARN,
}


@pytest.fixture(scope="session")
def synthesized_custom(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A second synth (under 1 s) with every add-on context key set, two services."""
    return synth(tmp_path_factory.mktemp("cdk-out-custom"), {**cdk_json_context(), **ADDON_CONTEXT})
