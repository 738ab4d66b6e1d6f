"""Where the events the detectors could not take wait: encrypted SQS queues, alarmed, redrivable.

Two kinds of failure lose an event without these queues:

- EventBridge cannot hand the event to the function (throttled past its retry policy, function
  deleted, permission missing): the rule target's dead-letter queue keeps it (one queue per
  target, the ECS rule's and the reporter schedule's, each admitting only its own rule).
- The function took the event (EventBridge and CloudWatch Logs both invoke Lambda asynchronously)
  and failed on every retry: the function's on-failure destination keeps the invocation record
  (request payload, error, function ARN). One queue per function, so each role may send only to
  its own queue and `sessionwatch redrive` knows which handler a record belongs to.

Encryption is SSE-SQS (SQS-owned keys): EventBridge and Lambda can write to it with no KMS grant,
so no principal needs a key permission to reach these queues, while the messages are still
encrypted at rest. A customer key would need EventBridge in its key policy and a KMS grant on
every role, for no gain in who can read a queue (that is decided by IAM on the queue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

# SQS's maximum: the longest an operator has to notice the alarm and redrive.
RETENTION: Final = Duration.days(14)
# How often the depth alarm looks; SQS publishes its queue metrics once a minute.
DEPTH_PERIOD: Final = Duration.minutes(1)
# Lambda's asynchronous retry policy for every detector (its maximums are 2 and 6 h).
ASYNC_RETRY_ATTEMPTS: Final = 2
ASYNC_MAX_EVENT_AGE: Final = Duration.hours(6)
# EventBridge's retry policy for handing events to the detectors.
ECS_RULE_RETRY_ATTEMPTS: Final = 20
ECS_RULE_MAX_EVENT_AGE: Final = Duration.hours(1)
SCHEDULE_RETRY_ATTEMPTS: Final = 3
# A reporter tick older than this is superseded by the next ones; it is kept in the DLQ anyway.
SCHEDULE_MAX_EVENT_AGE: Final = Duration.minutes(15)

# The output ids `sessionwatch redrive` looks for (CloudFormation adds a hash to the logical id).
FAILED_INVOCATIONS_OUTPUT: Final = "FailedInvocationsQueueUrl"
EVENTS_DLQ_OUTPUT: Final = "UndeliveredEventsQueueUrl"
# The detectors EventBridge invokes (the ECS rule's and the schedule's targets).
EVENTBRIDGE_TARGETS: Final = ("EcsEvents", "Reporter")


@dataclass(frozen=True)
class FailureQueue:
    """A queue and the alarm on its depth."""

    queue: sqs.Queue
    depth_alarm: cloudwatch.Alarm


def failure_queue(
    scope: Construct,
    id: str,
    *,
    description: str,
    output_id: str,
    removal_policy: RemovalPolicy,
) -> sqs.Queue:
    """An SSE-SQS, TLS-only queue that keeps messages for 14 days, its URL a stack output."""
    queue = sqs.Queue(
        scope,
        id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=RETENTION,
        removal_policy=removal_policy,
    )
    Validations.of(queue).acknowledge(
        Acknowledgment(
            id="AwsSolutions::AwsSolutions-SQS3",
            reason=(
                "This queue is itself the last stop of a failure path (an EventBridge target "
                "dead-letter queue or a Lambda on-failure destination); its depth alarms and "
                "`sessionwatch redrive` empties it, so a second dead-letter queue adds nothing."
            ),
        )
    )
    CfnOutput(scope, output_id, description=description, value=queue.queue_url)
    return queue


def allow_rule_to_send(queue: sqs.IQueue, rule_arn: str, sid: str) -> None:
    """EventBridge may send to the DLQ on behalf of exactly this rule (for an L1 rule; the L2
    targets add the same statement themselves)."""
    queue.add_to_resource_policy(
        iam.PolicyStatement(
            sid=sid,
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": rule_arn}},
        )
    )
