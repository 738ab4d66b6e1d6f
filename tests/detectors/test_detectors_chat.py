"""Chat-ready messages: the custom-notification schema, threading, the per-protocol SNS message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import ParamValidator
from jsonschema import Draft202012Validator
from moto import mock_aws

from sessionwatch.detectors import chat
from sessionwatch.detectors.report_document import DeploymentReport
from sessionwatch.detectors.spike import SeriesSpike

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[1]
        / "fixtures"
        / "chatbot"
        / "custom_notification.schema.json"
    ).read_text()
)
VALIDATOR = Draft202012Validator(SCHEMA)
T0 = 1_764_600_000.0


def _report(**overrides: Any) -> DeploymentReport:
    fields: dict[str, Any] = {
        "service": "mcp-service",
        "deployment_id": "ecs-svc/1234567890123456789",
        "outcome": "SERVICE_DEPLOYMENT_COMPLETED",
        "started_at": T0,
        "ended_at": T0 + 300,
        "tasks_replaced": ["a1b2c3", "d4e5f6"],
        "sessions_at_risk": 12,
        "sessions_lost": 7,
        "first_loss_at": T0 + 61,
        "session_cliff_s": 61.0,
        "deregistration_delay_s": 300,
        "stop_timeout_s": 30,
        "spike": [SeriesSpike("ALB NonStickyRequestCount", 40.0, 2.0, True)],
        "verdict_basis": "per-session attribution",
    }
    fields.update(overrides)
    return DeploymentReport(**fields)


def _errors(doc: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(doc)]


def test_schema_fixture_rejects_what_the_service_rejects() -> None:
    """The validator is live: wrong version, source, text type or value types all fail."""
    good = chat.report_notification(_report().to_json())
    assert _errors(good) == []
    for path, bad in [
        (("version",), "2.0"),
        (("source",), "aws.ecs"),
        (("content", "textType"), "markdown"),
        (("content", "nextSteps"), "one string"),
        (("metadata", "additionalContext"), {"n": 1}),
        (("content", "title"), "x" * 251),
    ]:
        doc = json.loads(json.dumps(good))
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        assert _errors(doc), path


def test_the_report_renders_every_fact_within_the_schema() -> None:
    report = _report()
    doc = chat.report_notification(report.to_json())
    assert _errors(doc) == []
    content, metadata = doc["content"], doc["metadata"]
    assert content["title"] == ":rotating_light: mcp-service: deployment lost 7 MCP session(s)"
    for fact in ("ecs-svc/1234567890123456789", "7 of 12 at risk", "tasks replaced: 2", "61 s"):
        assert fact in content["description"], fact
    assert "300 s" in content["description"] and "30 s" in content["description"]
    assert "SPIKE" in content["description"]
    assert content["nextSteps"][0].startswith("Raise the target group's deregistration delay")
    assert any("SIGTERM" in step for step in content["nextSteps"])
    assert metadata["eventType"] == chat.EVENT_REPORT
    assert metadata["additionalContext"]["sessionsLost"] == "7"
    assert metadata["additionalContext"]["spikeDetected"] == "true"
    assert metadata["additionalContext"]["startedAt"] == "2025-12-01T14:40:00Z"
    assert metadata["relatedResources"][:3] == ["ecs-svc/1234567890123456789", "a1b2c3", "d4e5f6"]


def test_a_clean_deployment_says_so_without_steps() -> None:
    doc = chat.report_notification(_report(sessions_lost=0, sessions_at_risk=0).to_json())
    assert _errors(doc) == []
    assert doc["content"]["title"].startswith(":white_check_mark:")
    assert doc["content"]["nextSteps"] == []


def test_follow_ups_thread_under_their_deployment_only() -> None:
    report = _report()
    first = chat.report_notification(report.to_json())
    later = chat.follow_up_notification(
        service=report.service,
        deployment_id=report.deployment_id,
        title="2 more sessions lost after the report",
        description="Late session events arrived after the grace period.",
        context={"sessionsLost": 9},
    )
    assert _errors(later) == []
    assert later["metadata"]["threadId"] == first["metadata"]["threadId"]
    assert later["metadata"]["eventType"] == chat.EVENT_FOLLOW_UP
    other = chat.report_notification(_report(deployment_id="ecs-svc/999").to_json())
    assert other["metadata"]["threadId"] != first["metadata"]["threadId"]
    # Ids that clean to the same text stay apart (the hash of the exact pair).
    assert chat.thread_id("a/b", "c") != chat.thread_id("a-b", "c")


def test_a_huge_deployment_still_fits_every_limit() -> None:
    report = _report(
        service="s" * 300,
        deployment_id="d/" * 200,
        tasks_replaced=[f"task-{i:05d}" for i in range(5_000)],
        spike=[SeriesSpike(f"metric {i}", 1.0, 0.0, True) for i in range(200)],
        verdict_basis="v" * 5_000,
    )
    doc = chat.report_notification(report.to_json())
    assert _errors(doc) == []
    request = chat.report_publish_request("arn:aws:sns:us-east-1:111122223333:t", report)
    assert len(request["Message"].encode()) <= chat.SNS_MESSAGE_MAX_BYTES
    assert len(request["Subject"]) <= chat.SUBJECT_MAX


def test_per_protocol_message_gives_chat_json_and_email_text() -> None:
    report = _report()
    request = chat.report_publish_request("arn:aws:sns:us-east-1:111122223333:t", report)
    assert request["MessageStructure"] == "json"
    message = json.loads(request["Message"])
    assert set(message) == {"default", "https", "email"}
    assert json.loads(message["https"]) == chat.report_notification(report.to_json())
    assert message["default"] == message["https"]
    assert message["email"] == report.to_text()
    assert request["Subject"] == report.subject()
    attribute = request["MessageAttributes"][chat.REPORT_ATTRIBUTE]
    assert json.loads(attribute["StringValue"]) == report.to_json()


def test_the_request_is_a_valid_sns_publish_call() -> None:
    """botocore's own validator against the SNS service model: the call AWS would accept."""
    model = botocore.session.get_session().get_service_model("sns")
    shape = model.operation_model("Publish").input_shape
    request = chat.report_publish_request("arn:aws:sns:us-east-1:111122223333:t", _report())
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


@pytest.fixture
def topic_with_queue() -> Any:
    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="sessionwatch")["TopicArn"]
        queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        yield sns, sqs, topic, queue


def test_an_sqs_subscriber_receives_the_chat_json(topic_with_queue: Any) -> None:
    """Through SNS (moto): a non-email, non-HTTPS subscriber gets `default`, the chat JSON."""
    sns, sqs, topic, queue = topic_with_queue
    report = _report()
    sns.publish(**chat.report_publish_request(topic, report))
    (received,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelope = json.loads(received["Body"])
    assert envelope["Subject"] == report.subject()
    delivered = json.loads(envelope["Message"])
    assert _errors(delivered) == []
    assert delivered == chat.report_notification(report.to_json())


def test_client_names_are_inert_in_chat() -> None:
    """clientInfo is client-supplied: a name must not close its code span or mention anyone."""
    from sessionwatch.detectors.chat import client_list

    text = client_list({"editor-agent": 2, "<!channel> `x`": 1})
    assert text == "`editor-agent` 2, `!channel x` 1"
    assert "<" not in text and ">" not in text
