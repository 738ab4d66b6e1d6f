"""The simulated world: its shapes are AWS's and the server's, its harness always restores."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from sessionwatch import contract
from sessionwatch.detectors.handlers import runtime
from world.aws import answer_calls, record_publishes
from world.ecs import (
    STOP_SCHEDULER,
    ServiceRef,
    TaskRecord,
    deployment_event,
    hook_event,
    scheduler_stop_reason,
    task_event,
)
from world.harness import detector_harness
from world.server_logs import logged_line, server_line

REF = ServiceRef("us-east-1", "111122223333", "mcp-cluster", "mcp-service")


def _keys(doc: object) -> object:
    if isinstance(doc, dict):
        return {k: _keys(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_keys(doc[0])] if doc else []
    return type(doc).__name__


def test_the_fast_line_path_writes_what_the_server_logger_writes() -> None:
    """Every shape of the five contract events, nulls included, at random simulated times."""
    rng = random.Random(5)
    events = [
        (contract.EVENT_SESSION_CREATED, {"protocol_version": "2025-11-25"}),
        (contract.EVENT_SESSION_CREATED, {"protocol_version": None}),
        (contract.EVENT_SESSION_CLOSED, {"reason": contract.CLOSE_IDLE_TIMEOUT, "age_s": 3}),
        (
            contract.EVENT_SESSION_NOT_FOUND,
            {"http_method": "POST", "jsonrpc_code": None, "http_status": 404},
        ),
        (contract.EVENT_SHUTDOWN_STARTED, {"signal": "SIGTERM", "active_sessions": 2}),
        (contract.EVENT_TASK_STARTED, {"task_arn": None, "revision": "7"}),
    ]
    for i in range(200):
        event, fields = events[i % len(events)]
        task = f"{rng.getrandbits(128):032x}"
        t = 1_777_000_000 + rng.uniform(0, 1e6)
        session = f"{rng.getrandbits(64):016x}"
        fast = server_line(event, task, t, session=session, **fields)
        assert fast == logged_line(event, task, t, session=session, **fields)
        doc = json.loads(fast)
        assert doc["event"] == event and doc["task_id"] == task and doc["session"] == session


def test_a_raw_id_in_a_simulated_line_is_scrubbed_as_on_a_real_task() -> None:
    raw = str(uuid.uuid4())
    for _ in range(2):  # the first line of a shape and a later one
        line = server_line(contract.EVENT_SESSION_NOT_FOUND, "t-1", 1.0, session=raw)
        assert raw not in line


@pytest.mark.parametrize(
    ("fixture", "build"),
    [
        (
            "task-stopped-deployment",
            lambda: task_event(
                REF,
                _stopped_task(),
                "STOPPED",
                "STOPPED",
                4.0,
            ),
        ),
        (
            "deployment-in-progress",
            lambda: deployment_event(REF, "ecs-svc/1", "SERVICE_DEPLOYMENT_IN_PROGRESS", 1.0),
        ),
        (
            "hook-production-traffic-shift",
            lambda: hook_event(REF, "ecs-svc/1", "PRODUCTION_TRAFFIC_SHIFT", "IN_PROGRESS", 1.0),
        ),
    ],
)
def test_delivered_events_have_the_documented_shape(
    fixtures_dir: Path, fixture: str, build
) -> None:
    documented = json.loads((fixtures_dir / "ecs" / f"{fixture}.json").read_text())
    ours = build().envelope(REF, 1)
    assert set(ours) == set(documented)
    assert ours["time"].endswith("Z") and "." not in ours["time"]  # whole seconds, as AWS
    mine, theirs = _keys(ours["detail"]), _keys(documented["detail"])
    assert isinstance(mine, dict) and isinstance(theirs, dict)
    optional = {"connectivityAt", "pullStartedAt", "pullStoppedAt", "hookTargetArn"}
    assert set(theirs) - set(mine) <= optional, set(theirs) - set(mine)
    for key in set(mine) & set(theirs) - {"containers"}:
        assert mine[key] == theirs[key], key


def _stopped_task() -> TaskRecord:
    task = TaskRecord("a" * 32, "ecs-svc/111", "7", created_at=1.0, started_at=2.0)
    task.stopping_at, task.stopped_at, task.exit_code = 3.0, 4.0, 0
    task.stop_code, task.stopped_reason = STOP_SCHEDULER, scheduler_stop_reason(task)
    return task


def test_the_harness_restores_everything_even_when_the_simulation_fails() -> None:
    clock, ecs, ledger = runtime.clock, runtime.ecs, runtime.ledger
    stream = runtime.logger.registered_handler.stream  # type: ignore[attr-defined]
    name = f"SESSIONWATCH_WORLD_TEST_{uuid.uuid4().hex[:8]}"
    mine = object()
    with (
        pytest.raises(RuntimeError, match="mid-run"),
        detector_harness({name: "set"}, now=123.0, ledger=mine) as h,
    ):
        assert runtime.clock() == 123.0 and os.environ[name] == "set"
        assert runtime.ledger() is mine
        h.now = 456.0
        assert runtime.clock() == 456.0
        runtime.logger.info("into the sink")
        assert "into the sink" in h.drain()
        raise RuntimeError("mid-run")
    assert runtime.clock is clock and runtime.ecs is ecs and runtime.ledger is ledger
    assert runtime.logger.registered_handler.stream is stream  # type: ignore[attr-defined]
    assert name not in os.environ
    assert abs(runtime.clock() - time.time()) < 5


def test_a_stubbed_client_answers_what_the_world_models_and_refuses_the_rest() -> None:
    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    answer_calls(
        client, "ecs", {"DescribeServices": lambda body: {"services": [], "failures": body}}
    )
    got = client.describe_services(cluster="c", services=["s"])
    assert got["failures"] == {"cluster": "c", "services": ["s"]}  # the request it was sent
    with pytest.raises(ClientError, match="AccessDenied"):
        client.list_clusters()


def test_publishes_are_recorded_with_the_caller_s_parameters() -> None:
    sns = boto3.client(
        "sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    published = record_publishes(sns)
    arn = "arn:aws:sns:us-east-1:111122223333:t"
    attrs = {"a": {"DataType": "String", "StringValue": "v"}}
    assert sns.publish(TopicArn=arn, Message="m", MessageAttributes=attrs)["MessageId"]
    assert published == [{"TopicArn": arn, "Message": "m", "MessageAttributes": attrs}]


def test_the_sink_is_the_callers_when_given() -> None:
    sink = io.StringIO()
    with detector_harness({}, sink=sink):
        runtime.logger.info("to the caller's sink")
    assert "to the caller's sink" in sink.getvalue()


def test_a_none_in_the_env_unsets_the_variable_until_the_harness_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"SESSIONWATCH_WORLD_TEST_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(name, "before")
    with detector_harness({name: None}):
        assert name not in os.environ
    assert os.environ[name] == "before"


def test_emf_documents_are_read_from_the_sink_with_their_values_summed() -> None:
    directive = {"CloudWatchMetrics": [{"Metrics": [{"Name": "M"}, {"Name": "N"}]}]}
    with detector_harness({}) as h:
        with contextlib.redirect_stdout(h.sink):
            print("not json")
            print(json.dumps({"level": "INFO", "message": "a log line, not a metric"}))
            print(json.dumps({"_aws": directive, "M": [1, 2, 3], "N": 4}))
        assert [(d["M"], d["N"]) for d in h.emf()] == [(6, 4)]
        assert h.emf() == []  # drained
