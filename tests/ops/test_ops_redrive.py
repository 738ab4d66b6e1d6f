"""``sessionwatch redrive`` against moto: a failed event is queued, redriven, counted once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sessionwatch.contract import Cause
from sessionwatch.detectors.handlers import ecs_events, runtime, session_events
from sessionwatch.detectors.ingest import RecordsFailed
from sessionwatch.detectors.ledger import TABLE_SCHEMA
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.ops import redrive as redrive_mod
from sessionwatch.ops.cli import main
from sessionwatch.ops.redrive import local_delivery, original_event, redrive
from tests.detectors.builders import T0, deployment, fp, line, subscription, task
from tests.detectors.conftest import FakeContext
from tests.detectors.test_detectors_scenario import emf_docs

SERVICE = "mcp-service"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        db = boto3.client("dynamodb")
        db.create_table(TableName="ledger", **TABLE_SCHEMA)
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="sessionwatch-failures")["QueueUrl"]
        for key, value in {
            "LEDGER_TABLE_NAME": "ledger",
            "CLUSTER_NAME": "mcp-cluster",
            "SERVICE_NAMES": SERVICE,
            "GRACE_PERIOD_SECONDS": "60",
        }.items():
            monkeypatch.setenv(key, value)
        runtime.reset()
        monkeypatch.setattr(runtime, "clock", lambda: T0 + 200)
        yield {"db": db, "sqs": sqs, "queue": queue}
        runtime.reset()


def on_failure_record(event: Any) -> str:
    """A Lambda on-failure destination message (the shape Lambda documents)."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-04-26T15:01:10.000Z",
            "requestContext": {
                "requestId": "r-1",
                "functionArn": "arn:aws:lambda:us-east-1:111122223333:function:sw-session:$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "1 record(s) failed"},
        }
    )


def lost(out: str) -> list[tuple[str, float]]:
    return [(d["Cause"], d["SessionsLost"]) for d in emf_docs(out) if "SessionsLost" in d]


def test_a_failed_session_batch_is_queued_redriven_and_counted_once(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = FakeContext()
    dep = "ecs-svc/2000000000000000001"
    for event in (
        deployment(dep, "IN_PROGRESS", T0),
        task("task-c", "RUNNING", T0 + 30, started_by=dep, started_at=T0 + 30),
        task(
            "task-a",
            "STOPPED",
            T0 + 60,
            stopping_at=T0 + 60,
            stopped_at=T0 + 90,
            stop_code="ServiceSchedulerInitiated",
        ),
    ):
        ecs_events.handler(event, ctx)
    payload = subscription(
        [
            line("session_created", "task-a", T0 - 500, session=fp("a1")),
            line("session_not_found", "task-c", T0 + 70, session=fp("a1")),
        ]
    )
    real = Ledger.claim_lock

    def throttled(self: Ledger, *args: Any) -> Any:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")

    monkeypatch.setattr(Ledger, "claim_lock", throttled)
    capsys.readouterr()
    for _ in range(3):  # Lambda's async retries, all failing
        with pytest.raises(RecordsFailed):
            session_events.handler(payload, ctx)
    assert lost(capsys.readouterr().out) == []
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=on_failure_record(payload))
    monkeypatch.setattr(Ledger, "claim_lock", real)  # DynamoDB recovered

    result = redrive(aws["sqs"], aws["queue"], local_delivery("session_events"))
    assert (result.received, result.redriven, result.failed) == (1, 1, 0)
    assert lost(capsys.readouterr().out) == [(Cause.DEPLOYMENT.value, 1)]
    [lock] = Ledger(aws["db"], "ledger", 14).session_locks(fp("a1"))
    assert (lock.cause, lock.deployment_id) == (Cause.DEPLOYMENT, dep)
    # The same record queued twice (at-least-once destinations) and redriven via the CLI:
    # the queue empties, nothing is counted again.
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=on_failure_record(payload))
    argv = ["redrive", "--queue-url", aws["queue"], "--function", "session_events"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "redriven 1" in out and lost(out) == []
    assert "Messages" not in aws["sqs"].receive_message(QueueUrl=aws["queue"])


def test_an_eventbridge_dlq_message_is_the_event_and_a_failing_one_stays_queued(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = task("task-z", "RUNNING", T0)
    assert original_event(json.dumps(event)) == event
    assert original_event(on_failure_record(event)) == event
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=json.dumps(event))
    monkeypatch.setattr(redrive_mod, "VISIBILITY_TIMEOUT_S", 0)  # back at once when it fails
    real = Ledger.record_task

    def throttled(self: Ledger, obs: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")

    monkeypatch.setattr(Ledger, "record_task", throttled)
    assert main(["redrive", "--queue-url", aws["queue"], "--function", "ecs_events"]) == 1
    monkeypatch.setattr(Ledger, "record_task", real)
    result = redrive(aws["sqs"], aws["queue"], local_delivery("ecs_events"))
    assert (result.received, result.redriven, result.failed) == (1, 1, 0)
    assert Ledger(aws["db"], "ledger", 14).live_tasks(SERVICE) == ["task-z"]
