"""Chat channels, an existing topic, and 10-second alarms: what the construct's options change."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from sessionwatch import contract
from sessionwatch.infra.construct import (
    SESSIONS_LOST_RESOLUTION_ENV,
    SessionWatch,
    SessionWatchProps,
)
from tests.infra.conftest import Synth, logical_id


def _loss_alarm_periods(template: Template) -> dict[str, set[int]]:
    alarms = template.find_resources(
        "AWS::CloudWatch::Alarm", {"Properties": {"Namespace": contract.NAMESPACE}}
    )
    periods: dict[str, set[int]] = {}
    for alarm in alarms.values():
        props = alarm["Properties"]
        dims = {d["Name"]: d["Value"] for d in props["Dimensions"]}
        kind = dims.get(contract.DIMENSION_CAUSE, props["MetricName"])
        periods.setdefault(kind, set()).add(props["Period"])
    return periods


def test_standard_resolution_is_the_default(synthesized: Synth) -> None:
    for template in (synthesized.addon_template, synthesized.demo_template):
        assert _loss_alarm_periods(template) == {
            "deployment": {60},
            "stickiness": {60},
            contract.METRIC_DEPLOYMENT_LOSS_SPIKE: {60},
        }
    synthesized.addon_template.all_resources_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({SESSIONS_LOST_RESOLUTION_ENV: "60"})}},
    )


def test_high_resolution_gives_10_second_loss_alarms_and_tells_the_detectors(
    synthesized_custom: Synth,
) -> None:
    template = synthesized_custom.addon_template
    # The spike alarm keeps the reporter's one-minute cadence; the demo follows the same flag.
    for each in (template, synthesized_custom.demo_template):
        assert _loss_alarm_periods(each) == {
            "deployment": {10},
            "stickiness": {10},
            contract.METRIC_DEPLOYMENT_LOSS_SPIKE: {60},
        }
    template.all_resources_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({SESSIONS_LOST_RESOLUTION_ENV: "1"})}},
    )


def test_slack_channel_from_context_follows_the_topic(synthesized_custom: Synth) -> None:
    template = synthesized_custom.addon_template
    topic = logical_id(synthesized_custom.addon_stack.sessionwatch.topic)
    template.has_resource_properties(
        "AWS::Chatbot::SlackChannelConfiguration",
        {
            "SlackWorkspaceId": "T0123ABCD",
            "SlackChannelId": "C0123ABCD",
            "SnsTopicArns": [{"Ref": topic}],
            "GuardrailPolicies": Match.absent(),
        },
    )


@pytest.fixture(scope="module")
def options_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Stack, SessionWatch, sns.Topic]:
    """A user's app: an existing topic, a Teams channel (L1) and a Slack channel (L2)."""
    app = App(outdir=str(tmp_path_factory.mktemp("cdk-options")))
    stack = Stack(app, "UserStack")
    existing = sns.Topic(stack, "OpsTopic")
    teams = chatbot.CfnMicrosoftTeamsChannelConfiguration(
        stack,
        "Teams",
        configuration_name="ops",
        iam_role_arn="arn:aws:iam::111122223333:role/chat",
        team_id="00000000-0000-0000-0000-000000000000",
        teams_channel_id="19%3Aabc%40thread.tacv2",
        teams_tenant_id="11111111-1111-1111-1111-111111111111",
        sns_topic_arns=["arn:aws:sns:us-east-1:111122223333:already-there"],
    )
    slack = chatbot.SlackChannelConfiguration(
        stack,
        "Slack",
        slack_channel_configuration_name="ops",
        slack_workspace_id="T1",
        slack_channel_id="C1",
    )
    sw = SessionWatch(
        stack,
        "SessionWatch",
        SessionWatchProps(
            cluster_name="c",
            service_names=["s"],
            server_log_group=logs.LogGroup.from_log_group_name(stack, "L", "/ecs/s"),
            notification_topic=existing,
            chat_channels=[teams, slack],
            alarm_email_subscribers=["oncall@example.com"],
        ),
    )
    return stack, sw, existing


def test_an_existing_topic_is_used_instead_of_a_new_one(
    options_app: tuple[Stack, SessionWatch, sns.Topic],
) -> None:
    stack, sw, existing = options_app
    template = Template.from_stack(stack)
    assert sw.topic is existing and sw.key is None
    template.resource_count_is("AWS::SNS::Topic", 1)
    template.resource_count_is("AWS::KMS::Key", 0)
    topic = {"Ref": logical_id(existing)}
    # Alarms may publish to it; the reporter may publish to it alone.
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": "sns:Publish",
                                "Resource": topic,
                            }
                        )
                    ]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::SNS::Subscription",
        {"TopicArn": topic, "Protocol": "email", "Endpoint": "oncall@example.com"},
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Environment": {"Variables": Match.object_like({"REPORT_TOPIC_ARN": topic})}},
    )


def test_chat_channels_defined_in_the_app_follow_the_topic(
    options_app: tuple[Stack, SessionWatch, sns.Topic],
) -> None:
    stack, _, existing = options_app
    template = Template.from_stack(stack)
    topic = {"Ref": logical_id(existing)}
    template.has_resource_properties(
        "AWS::Chatbot::MicrosoftTeamsChannelConfiguration",
        {"SnsTopicArns": ["arn:aws:sns:us-east-1:111122223333:already-there", topic]},
    )
    template.has_resource_properties(
        "AWS::Chatbot::SlackChannelConfiguration", {"SnsTopicArns": [topic]}
    )


def test_an_imported_channel_is_refused_with_what_to_do(tmp_path: Path) -> None:
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "S")
    imported = chatbot.SlackChannelConfiguration.from_slack_channel_configuration_arn(
        stack, "Imported", "arn:aws:chatbot::111122223333:chat-configuration/slack-channel/ops"
    )
    with pytest.raises(TypeError, match="TopicArn output"):
        SessionWatch(
            stack,
            "SessionWatch",
            SessionWatchProps(
                cluster_name="c",
                service_names=["s"],
                server_log_group=logs.LogGroup.from_log_group_name(stack, "L", "/ecs/s"),
                chat_channels=[imported],  # type: ignore[list-item]
            ),
        )
