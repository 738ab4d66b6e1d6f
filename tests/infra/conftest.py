"""One real CDK synth per test session (about 3 s), shared by every infra test."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk.assertions import Template

from sessionwatch.infra.app import ADDON_STACK, DEMO_STACK, build_app

REPO_ROOT = Path(__file__).resolve().parents[2]


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


ADDON_CONTEXT = {
    "sessionwatch:clusterName": "prod-mcp",
    "sessionwatch:serviceNames": "mcp-a, mcp-b",
    "sessionwatch:logGroupName": "/ecs/prod-mcp",
    "sessionwatch:serverServiceName": "mcp-prod",
    "sessionwatch:loadBalancerFullName": "app/prod-alb/0123456789abcdef",
    "sessionwatch:targetGroupFullName": "targetgroup/prod-tg/fedcba9876543210",
    "sessionwatch:alarmEmails": "oncall@example.com,sre@example.com",
    "sessionwatch:gracePeriodSeconds": "180",
    "sessionwatch:deploymentLossThreshold": "3",
    "sessionwatch:deregistrationDelaySeconds": "60",
    "sessionwatch:stopTimeoutSeconds": "90",
}


@pytest.fixture(scope="session")
def synthesized_custom(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A second synth (under 1 s) with every add-on context key set, two services."""
    return synth(tmp_path_factory.mktemp("cdk-out-custom"), {**cdk_json_context(), **ADDON_CONTEXT})
