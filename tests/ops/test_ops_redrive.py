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
from sessionwatch.detectors.handlers import ecs_events, session_events
from sessionwatch.detectors.ingest import RecordsFailed
from sessionwatch.detectors.ledger import TABLE_SCHEMA
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.ops import redrive as redrive_mod
from sessionwatch.ops.cli import main
from sessionwatch.ops.redrive import local_delivery, original_event, redrive
from tests.detectors.builders import T0, deployment, fp, line, subscription, task
from tests.detectors.conftest import FakeContext
from world.ecs import STOP_SCHEDULER
from world.harness import detector_harness, emf_docs

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
        env = {
            "LEDGER_TABLE_NAME": "ledger",
            "CLUSTER_NAME": "mcp-cluster",
            "SERVICE_NAMES": SERVICE,
            "GRACE_PERIOD_SECONDS": "60",
        }
        # The handlers' environment and clock (the redrive calls them in this process).
        with detector_harness(env, now=T0 + 200):
            yield {"db": db, "sqs": sqs, "queue": queue}


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
            stop_code=STOP_SCHEDULER,
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

    result = redrive(aws["sqs"], aws["queue"], local_delivery("session_events"), wait_seconds=1)
    assert (result.received, result.redriven, result.failed) == (1, 1, 0)
    assert lost(capsys.readouterr().out) == [(Cause.DEPLOYMENT.value, 1)]
    [lock] = Ledger(aws["db"], "ledger", 14).session_locks(fp("a1"))
    assert (lock.cause, lock.deployment_id) == (Cause.DEPLOYMENT, dep)
    # The same record queued twice (at-least-once destinations) and redriven via the CLI:
    # the queue empties, nothing is counted again.
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=on_failure_record(payload))
    argv = ["redrive", "--queue-url", aws["queue"], "--function", "session_events", "--wait", "1"]
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
    assert (
        main(["redrive", "--queue-url", aws["queue"], "--function", "ecs_events", "--wait", "1"])
        == 1
    )
    monkeypatch.setattr(Ledger, "record_task", real)
    result = redrive(aws["sqs"], aws["queue"], local_delivery("ecs_events"), wait_seconds=1)
    assert (result.received, result.redriven, result.failed) == (1, 1, 0)
    assert Ledger(aws["db"], "ledger", 14).live_tasks(SERVICE) == ["task-z"]


# -- a platform engineer's mistakes: each one exit 2 and one line naming what to fix ----------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["redrive", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_queue_that_does_not_exist_is_exit_2_naming_it(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = aws["queue"].replace("sessionwatch-failures", "no-such-queue")
    argv = ["--queue-url", missing, "--function", "ecs_events", "--wait", "1"]
    code, _out, err = _cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"queue does not exist: {missing}" in err


def test_missing_ledger_settings_are_exit_2_naming_them(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=json.dumps(task("t", "RUNNING", T0)))
    monkeypatch.delenv("LEDGER_TABLE_NAME")
    code, _out, err = _cli(
        capsys, "--queue-url", aws["queue"], "--function", "ecs_events", "--wait", "1"
    )
    assert code == 2 and err.count("\n") == 1
    assert "LEDGER_TABLE_NAME" in err and "--invoke" in err
    # Nothing was received: the message is still there for the run that has its settings.
    assert len(aws["sqs"].receive_message(QueueUrl=aws["queue"]).get("Messages", [])) == 1


def test_access_denied_is_exit_2_naming_the_permission(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQS answers a denied call with HTTP 403 `AccessDenied` (Amazon SQS API Reference, Common
    Errors); moto enforces no IAM here, so the answer is stubbed at botocore's wire edge."""
    from botocore.stub import Stubber

    client = boto3.client("sqs")
    stubber = Stubber(client)
    stubber.add_client_error(
        "get_queue_attributes",
        service_error_code="AccessDenied",
        service_message="not authorized to perform sqs:GetQueueAttributes",
        http_status_code=403,
    )
    stubber.activate()
    real = boto3.Session.client
    monkeypatch.setattr(
        boto3.Session,
        "client",
        lambda self, name, *a, **k: client if name == "sqs" else real(self, name, *a, **k),
    )
    code, _out, err = _cli(capsys, "--queue-url", aws["queue"], "--function", "ecs_events")
    assert code == 2 and err.count("\n") == 1
    assert "access denied: sqs:GetQueueAttributes on " + aws["queue"] in err


def test_a_message_that_fails_again_says_why_and_stays_queued(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=json.dumps(task("t", "RUNNING", T0)))

    def throttled(self: Ledger, obs: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")

    monkeypatch.setattr(Ledger, "record_task", throttled)
    code, out, _err = _cli(
        capsys, "--queue-url", aws["queue"], "--function", "ecs_events", "--wait", "1"
    )
    assert code == 1
    (line,) = [x for x in out.splitlines() if x.startswith("message ")]
    assert "failed (ECS Task State Change at " in line
    assert line.endswith(
        "RecordsFailed: 1 record(s) failed; the rest of the batch was processed: "
        "task failed (ClientError)"
    )
    assert out.splitlines()[-1] == "received 1, redriven 0, failed again 1, unreadable 0"
    # Rerun at once: the message is hidden by the first run's receive, and the run says so.
    code, out, _err = _cli(
        capsys, "--queue-url", aws["queue"], "--function", "ecs_events", "--wait", "1"
    )
    assert code == 1
    assert "1 message(s) are in flight" in out and "rerun after that" in out


def test_dry_run_shows_every_message_and_changes_nothing(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(12):  # more than one receive's worth (10)
        body = json.dumps(task(f"t{n}", "RUNNING", T0 + n))
        aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=body)
    code, out, err = _cli(
        capsys, "--queue-url", aws["queue"], "--function", "ecs_events", "--wait", "1", "--dry-run"
    )
    assert code == 0, err
    assert len([x for x in out.splitlines() if ": would redrive (ECS Task State Change" in x]) == 12
    assert out.splitlines()[-1].startswith("dry run: 12 message(s) would be redriven")
    assert Ledger(aws["db"], "ledger", 14).live_tasks(SERVICE) == []
    attrs = aws["sqs"].get_queue_attributes(
        QueueUrl=aws["queue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "12"  # all visible again at once


def test_receives_long_poll_so_a_message_arriving_meanwhile_is_redriven(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A short poll (WaitTimeSeconds=0) answers empty while this message is delayed; a long
    poll waits for it (Amazon SQS Developer Guide, short and long polling)."""
    body = json.dumps(task("late", "RUNNING", T0))
    aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=body, DelaySeconds=1)
    code, out, err = _cli(
        capsys, "--queue-url", aws["queue"], "--function", "ecs_events", "--wait", "4"
    )
    assert code == 0, err
    assert out.splitlines()[-1] == "received 1, redriven 1, failed again 0, unreadable 0"
    assert Ledger(aws["db"], "ledger", 14).live_tasks(SERVICE) == ["late"]


def test_the_cli_default_wait_is_the_modules() -> None:
    from sessionwatch.ops import cli

    assert cli.WAIT_SECONDS == redrive_mod.WAIT_SECONDS
