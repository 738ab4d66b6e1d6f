"""The handlers' edges: bad input counted and logged with context, the rest of the batch kept."""

from __future__ import annotations

import base64
import gzip
import json

import pytest
from botocore.exceptions import ClientError

from sessionwatch.contract import (
    BAD_INPUT_SERVICE_NAME,
    DIMENSION_CAUSE,
    DIMENSION_SERVICE,
    METRIC_BAD_INPUT,
    METRIC_RECORD_FAILED,
    METRIC_SESSIONS_LOST,
    Cause,
)
from sessionwatch.detectors.core import NotFound, TaskFacts
from sessionwatch.detectors.facts import DeploymentObserved, SessionCreated
from sessionwatch.detectors.handlers import ecs_events, reporter, runtime, session_events
from sessionwatch.detectors.ingest import RecordsFailed
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.reporter_run import ReporterFailed
from tests.detectors.builders import SERVICE, T0, fp, line, load, subscription
from tests.detectors.conftest import LedgerEnv
from tests.detectors.test_detectors_scenario import emf_docs


@pytest.fixture
def wired(ledger_env: LedgerEnv, monkeypatch) -> LedgerEnv:
    monkeypatch.setenv("LEDGER_TABLE_NAME", ledger_env.table)
    monkeypatch.setenv("CLUSTER_NAME", "mcp-cluster")
    monkeypatch.setattr(runtime, "clock", lambda: T0)
    runtime.reset()
    yield ledger_env
    runtime.reset()


def test_bad_lines_are_counted_logged_and_the_rest_processed(
    wired, capsys, caplog, lambda_context
) -> None:
    payload = subscription(
        [
            "{not json",
            json.dumps({"event": "session_created"}),
            line("session_created", "t1", T0 - 5, session=fp("ok")),
        ],
        stream="ecs/mcp-server/abc123",
    )
    result = session_events.handler(payload, lambda_context)
    assert (result["stored"], result["bad_input"]) == (1, 2)
    out = capsys.readouterr().out
    [metric] = [d for d in emf_docs(out) if METRIC_BAD_INPUT in d]
    assert metric[METRIC_BAD_INPUT] == 2 and metric[DIMENSION_SERVICE] == BAD_INPUT_SERVICE_NAME
    warnings = [r for r in caplog.records if r.getMessage() == "detector bad input"]
    assert {w.reason for w in warnings} == {"log line is not JSON", "missing or mistyped fields"}
    assert all(w.log_stream == "ecs/mcp-server/abc123" and w.log_event_id for w in warnings)
    item = wired.client.get_item(
        TableName=wired.table, Key={"pk": {"S": f"SESS#{fp('ok')}"}, "sk": {"S": "CREATED"}}
    )
    assert item["Item"]["task_id"]["S"] == "t1"


def test_ecs_event_of_another_detail_type_is_bad_input(
    wired, capsys, caplog, lambda_context
) -> None:
    event = {**load("task-running"), "detail-type": "ECS Container Instance State Change"}
    assert ecs_events.handler(event, lambda_context)["bad_input"] == 1
    out = capsys.readouterr().out
    assert [d[METRIC_BAD_INPUT] for d in emf_docs(out) if METRIC_BAD_INPUT in d] == [1]
    [warning] = [r for r in caplog.records if r.getMessage() == "detector bad input"]
    assert warning.event_id == "b2e3f4a5-0001-4d3c-8f22-000000000001"
    assert warning.reason == "unexpected detail-type"
    assert runtime.logger.get_correlation_id() == "b2e3f4a5-0001-4d3c-8f22-000000000001"


def test_deeply_nested_json_is_bad_input_not_a_crash(wired, capsys, lambda_context) -> None:
    """json.loads raises RecursionError (not ValueError) past ~1,000 levels: a few KiB line."""
    nested = "[" * 100_000
    payload = subscription([nested, line("session_created", "t1", T0 - 5, session=fp("ok"))])
    result = session_events.handler(payload, lambda_context)
    assert (result["stored"], result["bad_input"]) == (1, 1)
    whole = {"awslogs": {"data": base64.b64encode(gzip.compress(nested.encode())).decode()}}
    assert session_events.handler(whole, lambda_context)["bad_input"] == 1
    out = capsys.readouterr().out
    assert [d[METRIC_BAD_INPUT] for d in emf_docs(out) if METRIC_BAD_INPUT in d] == [1, 1]


def lost_points(out: str) -> list[tuple[str, int]]:
    return [
        (d[DIMENSION_CAUSE], d[METRIC_SESSIONS_LOST])
        for d in emf_docs(out)
        if METRIC_SESSIONS_LOST in d
    ]


def test_losses_counted_before_a_failing_lock_are_still_emitted(
    wired, capsys, monkeypatch, lambda_context
) -> None:
    """A claimed lock is never claimed again, so its metric must leave even if the call fails."""
    real = Ledger.claim_lock
    calls = []

    def second_fails(self, lock, tiebreak, now):
        calls.append(lock)
        if len(calls) == 2:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")
        return real(self, lock, tiebreak, now)

    monkeypatch.setattr(Ledger, "claim_lock", second_fails)
    payload = subscription(
        [line("session_not_found", "t1", T0 - 500, session=fp(n)) for n in ("a", "b")]
    )
    with pytest.raises(RecordsFailed):  # after the rest: Lambda retries, then queues it
        session_events.handler(payload, lambda_context)
    out = capsys.readouterr().out
    assert lost_points(out) == [(Cause.UNKNOWN.value, 1)]
    assert [d[METRIC_RECORD_FAILED] for d in emf_docs(out) if METRIC_RECORD_FAILED in d] == [1]
    assert len(calls) == 2  # the failed lock did not keep the other one from being tried


def test_reporter_emits_what_it_counted_even_when_the_publish_fails(
    wired, capsys, monkeypatch, lambda_context
) -> None:
    monkeypatch.setenv("REPORT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:gone")
    runtime.reset()
    lg = wired.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 1000, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 900, True, "COMPLETED"))
    stop = TaskFacts(
        "old", SERVICE, "d0", T0 - 5000, T0 - 950, stop_code="ServiceSchedulerInitiated"
    )
    lg.record_task(stop)
    lg.record_sessions([SessionCreated(fp("s"), "old", T0 - 2000)], [])
    lg.store_pending([NotFound(fp("s"), "new", T0 - 940)])
    with pytest.raises(ReporterFailed):
        reporter.handler({"id": "sched"}, lambda_context)
    assert lost_points(capsys.readouterr().out) == [(Cause.DEPLOYMENT.value, 1)]
