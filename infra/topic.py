"""The alarm and report topic: KMS-encrypted with a customer key, TLS-only, alarm-publishable.

CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed `aws/sns` key (its
policy cannot name cloudwatch.amazonaws.com), hence a customer key whose policy lists explicit
actions rather than `kms:*`.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
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
    # The topic policy replaces SNS's default one, so CloudWatch alarms need their own grant.
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=_source_account(),
        )
    )
    for address in email_subscribers:
        topic.add_subscription(subscriptions.EmailSubscription(address))
    return topic


def grant_publish(topic: sns.ITopic, key: kms.IKey, role: iam.IRole) -> None:
    """Publish to exactly this topic, encrypting with exactly this key: no wildcard actions."""
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["sns:Publish"], resources=[topic.topic_arn])
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=KEY_PUBLISH_ACTIONS, resources=[key.key_arn])
    )
