"""The CDK app: the add-on stack and the demo stack, checked by cdk-nag on every synth.

`build_app()` has no side effects until `.synth()`; tests call it with their own outdir and
context. Stacks are environment-agnostic (region and account resolve at deploy time), so synth
needs no credentials and makes no AWS call: the demo VPC takes the first two AZs of whatever
region it is deployed to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from sessionwatch.infra.addon import AddonSettings, SessionWatchStack, context_flag, split_list
from sessionwatch.infra.demo import DemoServiceProps, DemoServiceStack

ADDON_STACK = "SessionWatchStack"
DEMO_STACK = "DemoServiceStack"


def build_app(outdir: str | None = None, context: Mapping[str, Any] | None = None) -> App:
    """Both stacks, with AwsSolutions checks registered (synth fails on unacknowledged findings)."""
    app = App(outdir=outdir, context=dict(context or {}))
    SessionWatchStack(
        app,
        ADDON_STACK,
        settings=AddonSettings.from_context(app.node),
        description="SessionWatch: session-loss detection for an existing MCP service on ECS",
    )
    DemoServiceStack(
        app,
        DEMO_STACK,
        props=DemoServiceProps(
            alarm_email_subscribers=split_list(
                app.node.try_get_context("sessionwatch:alarmEmails")
            ),
            allowed_client_cidrs=split_list(
                app.node.try_get_context("sessionwatch:allowedClientCidrs")
            ),
            certificate_arn=app.node.try_get_context("sessionwatch:certificateArn") or None,
            high_resolution_alarms=context_flag(
                app.node.try_get_context("sessionwatch:highResolutionAlarms")
            ),
            server_runtime=app.node.try_get_context("sessionwatch:serverRuntime") or "python",
            blue_green_guards=context_flag(
                app.node.try_get_context("sessionwatch:demoBlueGreenGuards")
            ),
        ),
        description="SessionWatch demo: a stateful MCP server on Fargate behind a sticky ALB",
    )
    add_compliance_checks(app)
    return app


def add_compliance_checks(app: App) -> None:
    """cdk-nag's AwsSolutions pack as a synth-time validation: any unacknowledged finding fails
    the synth, and `validation-report.json` in the outdir lists every acknowledgment's reason."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
