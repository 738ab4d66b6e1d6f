"""cdk-nag (AwsSolutions) and cfn-lint over the synthesized app."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sns as sns
from cfnlint.api import lint_file

from sessionwatch.infra.app import ADDON_STACK, DEMO_STACK, add_compliance_checks
from sessionwatch.infra.construct import ECS_DEPLOYMENT_ACTIONS
from tests.infra.conftest import Synth
from tests.infra.test_infra_iam import UNSCOPABLE_ACTIONS

# CDK itself adds an explicit DependsOn on a role passed to a Function (which the function also
# references by GetAtt); harmless, and not ours to remove.
TOLERATED_WARNINGS = {"W3005"}


def test_nag_ran_and_found_nothing_unacknowledged(synthesized: Synth) -> None:
    # Synth already succeeded, which the plugin forbids on any unacknowledged finding.
    (report,) = synthesized.validation_report()["pluginReports"]
    assert report["pluginName"] == "AwsSolutions"
    assert report["conclusion"] == "success"
    assert report["violations"] == []


def test_every_acknowledgment_carries_a_specific_reason(synthesized: Synth) -> None:
    (report,) = synthesized.validation_report()["pluginReports"]
    acknowledged = report["suppressedViolations"]
    assert acknowledged, "the demo's public ALB, at least, must have been acknowledged"
    for item in acknowledged:
        rule, reason = item["ruleName"], item["reason"]
        assert len(reason.split()) >= 10, f"{rule}: reason too vague: {reason!r}"
        if rule.startswith("AwsSolutions-IAM5"):
            # A wildcard resource is excused only by naming the action that cannot be scoped
            # (or whose resource ids AWS creates later).
            excused = (*UNSCOPABLE_ACTIONS, *ECS_DEPLOYMENT_ACTIONS)
            assert any(action in reason for action in excused), reason


def test_nag_is_live_an_unencrypted_topic_fails_synth(tmp_path: Path) -> None:
    """The same check registration rejects a stack with a finding: the gate is real."""
    app = App(outdir=str(tmp_path))
    sns.Topic(Stack(app, "Bad"), "Plain")
    add_compliance_checks(app)
    with pytest.raises(Exception, match="ValidationFailed") as failure:
        app.synth()
    assert "AwsSolutions-SNS3" in str(failure.value)


@pytest.mark.parametrize("variant", ["default", "custom"])
@pytest.mark.parametrize("stack", [ADDON_STACK, DEMO_STACK])
def test_cfn_lint_finds_no_errors(
    stack: str, variant: str, synthesized: Synth, synthesized_custom: Synth
) -> None:
    """Both synths: the custom one adds the Slack channel, 10 s alarms and the HTTPS listener."""
    synth = synthesized if variant == "default" else synthesized_custom
    matches = lint_file(synth.outdir / f"{stack}.template.json")
    errors = [str(m) for m in matches if m.rule.id.startswith("E")]
    assert errors == []
    unexpected = [str(m) for m in matches if m.rule.id not in TOLERATED_WARNINGS]
    assert unexpected == []


def test_the_custom_synth_passed_nag_too(synthesized_custom: Synth) -> None:
    (report,) = synthesized_custom.validation_report()["pluginReports"]
    assert report["conclusion"] == "success" and report["violations"] == []
