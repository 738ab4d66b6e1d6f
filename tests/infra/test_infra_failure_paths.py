"""Nothing dropped silently: DLQ, on-failure destinations, their alarms and least-privilege IAM."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from sessionwatch.infra import failures
from sessionwatch.infra.construct import (
    ECS_DEPLOYMENT_ACTIONS,
    ECS_READERS,
    ECS_SERVICE_ACTIONS,
)
from sessionwatch.infra.functions import HANDLERS
from tests.infra.conftest import Synth

QUEUE = "AWS::SQS::Queue"


@pytest.fixture(params=["addon", "demo"])
def template(request: pytest.FixtureRequest, synthesized: Synth) -> Template:
    return synthesized.addon_template if request.param == "addon" else synthesized.demo_template


def _one(template: Template, type_: str, props: Any = None) -> str:
    found = template.find_resources(type_, {"Properties": props} if props else None)
    assert len(found) == 1, f"{type_}: {sorted(found)}"
    return next(iter(found))


def _by_path(template: Template, type_: str, path_part: str) -> str:
    """The one resource of `type_` under construct `SessionWatch/<path_part>` (CDK derives
    logical ids from construct paths; the template carries no path metadata outside the CLI)."""
    prefix = "SessionWatch" + path_part.strip("/")
    found = [k for k in template.find_resources(type_) if k.startswith(prefix)]
    assert len(found) == 1, (type_, path_part, found)
    return found[0]


def _function_id(template: Template, name: str) -> str:
    return _one(template, "AWS::Lambda::Function", {"Handler": HANDLERS[name]})


def _queue_ids(template: Template) -> dict[str, str]:
    names = [
        *(f"{n}FailedInvocations" for n in HANDLERS),
        *(f"{n}Undelivered" for n in failures.EVENTBRIDGE_TARGETS),
    ]
    return {name: _by_path(template, QUEUE, f"/{name}/") for name in names}


def _arn(logical_id: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


def test_five_encrypted_tls_only_queues_keep_messages_14_days(template: Template) -> None:
    template.resource_count_is(QUEUE, 5)
    template.all_resources_properties(
        QUEUE, {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 14 * 24 * 3600}
    )
    for queue_id in _queue_ids(template).values():
        template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            {
                                "Action": "sqs:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Resource": _arn(queue_id),
                            }
                        ]
                    )
                },
            },
        )


def test_every_detector_records_failed_invocations_in_its_own_queue(template: Template) -> None:
    """EventBridge and CloudWatch Logs invoke asynchronously: after Lambda's retries the record
    goes to the function's own queue."""
    queues = _queue_ids(template)
    template.resource_count_is("AWS::Lambda::EventInvokeConfig", len(HANDLERS))
    for name in HANDLERS:
        template.has_resource_properties(
            "AWS::Lambda::EventInvokeConfig",
            {
                "FunctionName": {"Ref": _function_id(template, name)},
                "Qualifier": "$LATEST",
                "MaximumRetryAttempts": failures.ASYNC_RETRY_ATTEMPTS,
                "MaximumEventAgeInSeconds": int(failures.ASYNC_MAX_EVENT_AGE.to_seconds()),
                "DestinationConfig": {
                    "OnFailure": {"Destination": _arn(queues[f"{name}FailedInvocations"])}
                },
            },
        )


def _role_statements(template: Template, name: str) -> list[dict[str, Any]]:
    role_id = _by_path(template, "AWS::IAM::Role", f"/{name}Role/")
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}}
    )
    return [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_each_function_may_send_only_to_its_own_queue(template: Template) -> None:
    queues = _queue_ids(template)
    for name in HANDLERS:
        sends = [
            s
            for s in _role_statements(template, name)
            if any(str(a).startswith("sqs:") for a in _as_list(s["Action"]))
        ]
        assert len(sends) == 1, (name, sends)
        (send,) = sends
        assert send["Resource"] == _arn(queues[f"{name}FailedInvocations"]), name
        assert "sqs:SendMessage" in send["Action"]
        assert not {"sqs:ReceiveMessage", "sqs:DeleteMessage"} & set(send["Action"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_eventbridge_targets_retry_then_dead_letter(template: Template) -> None:
    queues = _queue_ids(template)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like({"source": ["aws.ecs"]}),
            "Targets": [
                Match.object_like(
                    {
                        "Arn": _arn(_function_id(template, "EcsEvents")),
                        "DeadLetterConfig": {"Arn": _arn(queues["EcsEventsUndelivered"])},
                        "RetryPolicy": {
                            "MaximumRetryAttempts": failures.ECS_RULE_RETRY_ATTEMPTS,
                            "MaximumEventAgeInSeconds": 3600,
                        },
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [
                Match.object_like(
                    {
                        "Arn": _arn(_function_id(template, "Reporter")),
                        "DeadLetterConfig": {"Arn": _arn(queues["ReporterUndelivered"])},
                        "RetryPolicy": {
                            "MaximumRetryAttempts": failures.SCHEDULE_RETRY_ATTEMPTS,
                            "MaximumEventAgeInSeconds": 900,
                        },
                    }
                )
            ],
        },
    )


def _rule_id(template: Template, key: str) -> str:
    (rule,) = template.find_resources("AWS::Events::Rule", {"Properties": {key: Match.any_value()}})
    return rule


def test_eventbridge_may_send_to_each_dlq_for_its_own_rule_only(template: Template) -> None:
    expected = {
        "EcsEventsUndelivered": _rule_id(template, "EventPattern"),
        "ReporterUndelivered": _rule_id(template, "ScheduleExpression"),
    }
    for name, queue_id in _queue_ids(template).items():
        (policy,) = template.find_resources(
            "AWS::SQS::QueuePolicy", {"Properties": {"Queues": [{"Ref": queue_id}]}}
        ).values()
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        allows = [s for s in statements if s["Effect"] == "Allow"]
        if name not in expected:
            # On-failure queues admit nobody by resource policy (only their role, by IAM).
            assert allows == [], name
            continue
        (allow,) = allows
        assert allow["Principal"] == {"Service": "events.amazonaws.com"}
        assert allow["Action"] == "sqs:SendMessage"
        assert allow["Resource"] == _arn(queue_id)
        assert allow["Condition"] == {"ArnEquals": {"aws:SourceArn": _arn(expected[name])}}


def test_a_message_in_any_queue_alarms_on_the_topic(template: Template) -> None:
    topic_id = _one(template, "AWS::SNS::Topic")
    for queue_id in _queue_ids(template).values():
        template.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "Namespace": "AWS/SQS",
                "MetricName": "ApproximateNumberOfMessagesVisible",
                "Dimensions": [
                    {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}
                ],
                "Statistic": "Maximum",
                "Period": 60,
                "Threshold": 0,
                "ComparisonOperator": "GreaterThanThreshold",
                "EvaluationPeriods": 1,
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": topic_id}],
            },
        )


def test_queue_urls_are_outputs_for_redrive(template: Template) -> None:
    queues = _queue_ids(template)
    outputs = template.find_outputs("*")
    for name in HANDLERS:
        (url,) = [
            o
            for k, o in outputs.items()
            if k.startswith(f"SessionWatch{failures.FAILED_INVOCATIONS_OUTPUT}{name}")
        ]
        assert url["Value"] == {"Ref": queues[f"{name}FailedInvocations"]}
    for name in failures.EVENTBRIDGE_TARGETS:
        (dlq,) = [
            o
            for k, o in outputs.items()
            if k.startswith(f"SessionWatch{failures.EVENTS_DLQ_OUTPUT}{name}")
        ]
        assert dlq["Value"] == {"Ref": queues[f"{name}Undelivered"]}


def test_deployment_reads_are_scoped_to_the_watched_services(synthesized_custom: Synth) -> None:
    template = synthesized_custom.addon_template
    for name in HANDLERS:
        statements = _role_statements(template, name)
        ecs = [s for s in statements if any(a.startswith("ecs:") for a in _as_list(s["Action"]))]
        if name not in ECS_READERS:
            assert ecs == [], name
            continue
        on_services, on_deployments = ecs
        assert _as_list(on_services["Action"]) == ECS_SERVICE_ACTIONS
        services = [r["Fn::Join"][1][-1] for r in on_services["Resource"]]
        assert services == [":service/prod-mcp/mcp-a", ":service/prod-mcp/mcp-b"]
        assert _as_list(on_deployments["Action"]) == ECS_DEPLOYMENT_ACTIONS
        deployments = [r["Fn::Join"][1][-1] for r in on_deployments["Resource"]]
        assert deployments == [
            ":service-deployment/prod-mcp/mcp-a/*",
            ":service-deployment/prod-mcp/mcp-b/*",
        ]


def test_every_ecs_call_the_detectors_make_is_granted() -> None:
    """The actions the ECS read may call are exactly the ones the construct grants."""
    from sessionwatch.detectors import ecs_read

    assert sorted(ecs_read.IAM_ACTIONS) == sorted(ECS_SERVICE_ACTIONS + ECS_DEPLOYMENT_ACTIONS)
