"""The handlers' edges: bad input counted and logged with context, the rest of the batch kept."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass

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
from sessionwatch.detectors.handlers import runtime
from sessionwatch.detectors.ingest import RecordsFailed
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.ledger import ReadWave
from sessionwatch.detectors.reporter_run import ReporterFailed
from tests.detectors.builders import SERVICE, T0, fp, line, load, subscription
from tests.detectors.conftest import LedgerEnv
from world.ecs import STOP_SCHEDULER
from world.harness import Harness, detector_harness


@dataclass
class Wired:
    env: LedgerEnv
    h: Harness


@pytest.fixture
def wired(ledger_env: LedgerEnv) -> Iterator[Wired]:
    """The handlers over the test's DynamoDB table, at T0 (``world.harness``)."""
    env = {
        "LEDGER_TABLE_NAME": ledger_env.table,
        "CLUSTER_NAME": "mcp-cluster",
        "REPORT_TOPIC_ARN": None,
    }
    with detector_harness(env, now=T0) as h:
        yield Wired(ledger_env, h)


def test_bad_lines_are_counted_logged_and_the_rest_processed(wired: Wired, caplog) -> None:
    payload = subscription(
        [
            "{not json",
            json.dumps({"event": "session_created"}),
            line("session_created", "t1", T0 - 5, session=fp("ok")),
        ],
        stream="ecs/mcp-server/abc123",
    )
    result = wired.h.call("logs", payload)
    assert (result["stored"], result["bad_input"]) == (1, 2)
    [metric] = [d for d in wired.h.emf() if METRIC_BAD_INPUT in d]
    assert metric[METRIC_BAD_INPUT] == 2 and metric[DIMENSION_SERVICE] == BAD_INPUT_SERVICE_NAME
    warnings = [r for r in caplog.records if r.getMessage() == "detector bad input"]
    assert {w.reason for w in warnings} == {"log line is not JSON", "missing or mistyped fields"}
    assert all(w.log_stream == "ecs/mcp-server/abc123" and w.log_event_id for w in warnings)
    stored = wired.env.ledger.read(ReadWave(sessions=(fp("ok"),)))
    assert stored.origins[fp("ok")].task_id == "t1"


def test_ecs_event_of_another_detail_type_is_bad_input(wired: Wired, caplog) -> None:
    event = {**load("task-running"), "detail-type": "ECS Container Instance State Change"}
    assert wired.h.call("ecs", event)["bad_input"] == 1
    assert [d[METRIC_BAD_INPUT] for d in wired.h.emf() if METRIC_BAD_INPUT in d] == [1]
    [warning] = [r for r in caplog.records if r.getMessage() == "detector bad input"]
    assert warning.event_id == "b2e3f4a5-0001-4d3c-8f22-000000000001"
    assert warning.reason == "unexpected detail-type"
    assert runtime.logger.get_correlation_id() == "b2e3f4a5-0001-4d3c-8f22-000000000001"


def test_deeply_nested_json_is_bad_input_not_a_crash(wired: Wired) -> None:
    """json.loads raises RecursionError (not ValueError) past ~1,000 levels: a few KiB line."""
    nested = "[" * 100_000
    payload = subscription([nested, line("session_created", "t1", T0 - 5, session=fp("ok"))])
    result = wired.h.call("logs", payload)
    assert (result["stored"], result["bad_input"]) == (1, 1)
    whole = {"awslogs": {"data": base64.b64encode(gzip.compress(nested.encode())).decode()}}
    assert wired.h.call("logs", whole)["bad_input"] == 1
    assert [d[METRIC_BAD_INPUT] for d in wired.h.emf() if METRIC_BAD_INPUT in d] == [1, 1]


def lost_points(docs: list[dict]) -> list[tuple[str, int]]:
    return [
        (d[DIMENSION_CAUSE], d[METRIC_SESSIONS_LOST]) for d in docs if METRIC_SESSIONS_LOST in d
    ]


def test_losses_counted_before_a_failing_lock_are_still_emitted(wired: Wired, monkeypatch) -> None:
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
        wired.h.call("logs", payload)
    docs = wired.h.emf()
    assert lost_points(docs) == [(Cause.UNKNOWN.value, 1)]
    assert [d[METRIC_RECORD_FAILED] for d in docs if METRIC_RECORD_FAILED in d] == [1]
    assert len(calls) == 2  # the failed lock did not keep the other one from being tried


def test_reporter_emits_what_it_counted_even_when_the_publish_fails(
    wired: Wired, monkeypatch
) -> None:
    monkeypatch.setenv("REPORT_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:gone")
    runtime.reset()
    lg = wired.env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 1000, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 900, True, "COMPLETED"))
    stop = TaskFacts("old", SERVICE, "d0", T0 - 5000, T0 - 950, stop_code=STOP_SCHEDULER)
    lg.record_task(stop)
    lg.record_sessions([SessionCreated(fp("s"), "old", T0 - 2000)], [])
    lg.store_pending([NotFound(fp("s"), "new", T0 - 940)])
    with pytest.raises(ReporterFailed):
        wired.h.call("reporter", {"id": "sched"})
    assert lost_points(wired.h.emf()) == [(Cause.DEPLOYMENT.value, 1)]
