"""The alarm and report topic: KMS-encrypted with a customer key, TLS-only, alarm-publishable.

CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed `aws/sns` key (its
policy cannot name cloudwatch.amazonaws.com), hence a customer key whose policy lists explicit
actions rather than `kms:*`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

from aws_cdk import Aws, RemovalPolicy, Token
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

KEY_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
# What a publisher to an encrypted topic needs (SNS encrypts with a data key).
KEY_PUBLISH_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]


def _source_account() -> dict[str, dict[str, str]]:
    return {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}


def topic_key(scope: Construct, id: str, removal_policy: RemovalPolicy) -> kms.Key:
    """A rotating key; IAM in this account administers and uses it, CloudWatch may publish."""
    account_root = iam.AccountRootPrincipal()
    policy = iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AccountAdministersKey",
                principals=[account_root],
                actions=KEY_ADMIN_ACTIONS,
                resources=["*"],  # in a key policy, "*" is this key
            ),
            iam.PolicyStatement(
                sid="AccountIamPoliciesMayUseKey",
                principals=[account_root],
                actions=[*KEY_PUBLISH_ACTIONS, "kms:Encrypt"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=KEY_PUBLISH_ACTIONS,
                resources=["*"],
                conditions=_source_account(),
            ),
        ]
    )
    return kms.Key(
        scope,
        id,
        description="SessionWatch alarm and report topic",
        enable_key_rotation=True,
        policy=policy,
        removal_policy=removal_policy,
    )


def alarm_topic(
    scope: Construct, id: str, key: kms.IKey, email_subscribers: Sequence[str]
) -> sns.Topic:
    topic = sns.Topic(scope, id, display_name="SessionWatch", master_key=key, enforce_ssl=True)
    allow_alarms_to_publish(topic)
    subscribe_emails(topic, email_subscribers)
    return topic


def allow_alarms_to_publish(topic: sns.ITopic) -> None:
    """CloudWatch alarms of this account may publish. A topic policy replaces SNS's default one,
    so alarms need their own statement; on an imported topic CDK cannot add it (its own policy
    must allow `cloudwatch.amazonaws.com`, as SNS's default policy does for the owner account)."""
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=_source_account(),
        )
    )


def subscribe_emails(topic: sns.ITopic, addresses: Sequence[str]) -> None:
    for address in addresses:
        topic.add_subscription(subscriptions.EmailSubscription(address))


ChatChannel: TypeAlias = (
    chatbot.SlackChannelConfiguration
    | chatbot.CfnSlackChannelConfiguration
    | chatbot.CfnMicrosoftTeamsChannelConfiguration
)


def subscribe_chat_channels(topic: sns.ITopic, channels: Sequence[ChatChannel]) -> None:
    """Add the topic to each channel configuration's SNS topics; Amazon Q Developer in chat
    applications then subscribes to it over HTTPS itself.

    A configuration must be defined in this CDK app (L2 Slack, or L1 Slack or Teams): one
    imported by ARN cannot be changed by this stack, so it is refused with what to do instead.
    """
    for channel in channels:
        if isinstance(channel, chatbot.SlackChannelConfiguration):
            channel.add_notification_topic(topic)
        elif isinstance(
            channel,
            (chatbot.CfnSlackChannelConfiguration, chatbot.CfnMicrosoftTeamsChannelConfiguration),
        ):
            current = channel.sns_topic_arns
            if current is not None and Token.is_unresolved(current):
                raise ValueError(
                    f"{channel.node.path}: its SNS topics are a token; list SessionWatch's topic "
                    "(the TopicArn output) in it yourself"
                )
            channel.sns_topic_arns = [*(current or []), topic.topic_arn]
        else:
            raise TypeError(
                f"{channel!r}: pass a chat channel configuration defined in this app "
                "(aws_chatbot.SlackChannelConfiguration, CfnSlackChannelConfiguration or "
                "CfnMicrosoftTeamsChannelConfiguration). For one imported by ARN, add "
                "SessionWatch's topic (the TopicArn output) to its notifications instead."
            )


def grant_publish(topic: sns.ITopic, key: kms.IKey | None, role: iam.IRole) -> None:
    """Publish to exactly this topic, encrypting with exactly its key: no wildcard actions."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
    )
    if key is not None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=KEY_PUBLISH_ACTIONS, resources=[key.key_arn])
        )
