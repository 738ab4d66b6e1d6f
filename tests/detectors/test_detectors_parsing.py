"""Input parsing: the ECS samples, scope filtering, every kind of bad input, the name contract."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest

from sessionwatch.detectors.config import Config, ConfigError, load_config
from sessionwatch.detectors.core import NotFound, TaskFacts
from sessionwatch.detectors.facts import (
    BadInput,
    DeploymentObserved,
    SessionClosed,
    SessionCreated,
)
from sessionwatch.detectors.parsing import (
    MAX_DECOMPRESSED_BYTES,
    decode_subscription,
    iter_lines,
    parse_ecs_event,
)
from tests.detectors.builders import T0, fp, line, load, subscription, task
from world.ecs import STOP_SPOT

CFG = Config(table_name="t", cluster_name="mcp-cluster")


def test_every_sample_parses() -> None:
    dep = parse_ecs_event(load("deployment-in-progress"), CFG)
    assert dep == DeploymentObserved(
        "mcp-service",
        "ecs-svc/4477061712834601234",
        dep.at,
        ended=False,
        reason="ECS deployment ecs-svc/4477061712834601234 in progress.",
    )
    done = parse_ecs_event(load("deployment-failed"), CFG)
    assert isinstance(done, DeploymentObserved) and (done.ended, done.outcome) == (True, "FAILED")
    stopping = parse_ecs_event(load("task-stopping-deployment"), CFG)
    assert isinstance(stopping, TaskFacts)
    assert stopping.stopping_at is not None and stopping.stopped_at is None
    assert stopping.started_by == "ecs-svc/1111111111111111111"
    spot = parse_ecs_event(load("task-stopped-spot"), CFG)
    assert isinstance(spot, TaskFacts) and spot.stop_code == STOP_SPOT
    assert parse_ecs_event(load("service-steady-state"), CFG) is None


def test_other_cluster_and_out_of_scope_services_are_ignored_not_bad() -> None:
    other = Config(table_name="t", cluster_name="other-cluster")
    assert parse_ecs_event(load("task-running"), other) is None
    assert parse_ecs_event(load("deployment-completed"), other) is None
    scoped = Config(table_name="t", cluster_name="mcp-cluster", service_names=frozenset({"x"}))
    assert parse_ecs_event(load("task-running"), scoped) is None
    standalone = task("abc", "RUNNING", T0)
    standalone["detail"]["group"] = "family:mcp-server"
    assert parse_ecs_event(standalone, CFG) is None


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "text",
        [],
        {},
        {**load("task-running"), "detail-type": "EC2 Instance State-change Notification"},
        {**load("task-running"), "source": "aws.ec2"},
        {**load("task-running"), "detail": {"taskArn": 5}},
        {**load("deployment-completed"), "resources": []},
    ],
)
def test_bad_ecs_events_are_bad_input(raw: object) -> None:
    assert isinstance(parse_ecs_event(raw, CFG), BadInput)


def test_log_lines_become_facts() -> None:
    a, b = fp("a"), fp("b")
    batch = decode_subscription(
        subscription(
            [
                line("session_created", "t1", T0, session=a, protocol_version="2025-11-25"),
                line("session_closed", "t1", T0 + 5, session=a, reason="idle_timeout", age_s=5),
                line(
                    "session_not_found",
                    "t2",
                    T0 + 9,
                    session=b,
                    http_method="POST",
                    jsonrpc_code=-32600,
                    http_status=404,
                ),
                line(
                    "task_started",
                    "t1",
                    T0 - 60,
                    task_arn="arn",
                    cluster="c",
                    family="f",
                    revision="1",
                    availability_zone=None,
                ),
                line(
                    "shutdown_started",
                    "t1",
                    T0 + 99,
                    signal="SIGTERM",
                    active_sessions=0,
                    sessions=[],
                ),
            ]
        )
    )
    assert not isinstance(batch, BadInput)
    facts = list(iter_lines(batch))
    assert facts == [
        SessionCreated(a, "t1", T0),
        SessionClosed(a, "t1", T0 + 5, "idle_timeout"),
        NotFound(b, "t2", T0 + 9, "mcp-server"),
        TaskFacts("t1", started_at=T0 - 60),
        None,
    ]


def test_client_name_is_carried_and_refusals_are_accepted_not_bad() -> None:
    """session_created's client_name reaches the fact (bounded; a mistyped one is dropped, never
    the line); session_refused passes the filter (session_*) and must not count as bad input."""
    a, b, c = fp("a"), fp("b"), fp("c")
    batch = decode_subscription(
        subscription(
            [
                line("session_created", "t1", T0, session=a, client_name="editor-agent"),
                line("session_created", "t1", T0, session=b, client_name="x" * 300),
                line("session_created", "t1", T0, session=c, client_name={"not": "text"}),
                line(
                    "session_refused",
                    "t1",
                    T0 + 1,
                    http_status=503,
                    jsonrpc_code=-32603,
                    active_sessions=3,
                    max_sessions=3,
                ),
            ]
        )
    )
    assert not isinstance(batch, BadInput)
    assert list(iter_lines(batch)) == [
        SessionCreated(a, "t1", T0, "editor-agent"),
        SessionCreated(b, "t1", T0, "x" * 64),
        SessionCreated(c, "t1", T0),
        None,
    ]


def test_every_bad_line_is_counted_with_context_and_no_raw_content() -> None:
    raw_id = "raw-session-id-that-must-not-leak"
    messages = [
        "not json",
        "[1, 2]",
        json.dumps({"level": "INFO"}),
        json.dumps(
            {"event": "session_teleported", "task_id": "t", "timestamp": "2026-01-01T00:00:00Z"}
        ),
        line("session_created", "t1", T0),  # no session field
        line("session_not_found", "t1", T0, session=raw_id),  # a raw id, not a fingerprint
        json.dumps(
            {"event": "session_created", "task_id": 3, "timestamp": "x", "session": fp("z")}
        ),
        "x" * (300 * 1024),
    ]
    batch = decode_subscription(subscription(messages))
    assert not isinstance(batch, BadInput)
    results = list(iter_lines(batch))
    assert all(isinstance(r, BadInput) for r in results), results
    assert len({r.reason for r in results if isinstance(r, BadInput)}) >= 6
    for r in results:
        assert isinstance(r, BadInput)
        assert r.context["log_stream"] == "ecs/mcp-server/x" and "log_event_id" in r.context
        assert raw_id not in json.dumps(r.context)


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"awslogs": {"data": "!!!not base64"}},
        {"awslogs": {"data": base64.b64encode(b"not gzip").decode()}},
        {"awslogs": {"data": base64.b64encode(gzip.compress(b"[1]")).decode()}},
    ],
)
def test_undecodable_payloads_are_bad_input(payload: object) -> None:
    assert isinstance(decode_subscription(payload), BadInput)


def test_oversized_payload_is_rejected_without_inflating_it() -> None:
    bomb = zlib.compress(b" " * (MAX_DECOMPRESSED_BYTES * 2), 9)
    payload = {"awslogs": {"data": base64.b64encode(bomb).decode()}}
    bad = decode_subscription(payload)
    assert isinstance(bad, BadInput) and bad.reason == "oversized payload"


def test_config_from_environment() -> None:
    cfg = load_config(
        {
            "LEDGER_TABLE_NAME": "tbl",
            "CLUSTER_NAME": "arn:aws:ecs:us-east-1:1:cluster/c1",
            "SERVICE_NAMES": " a, b ,",
            "DEREGISTRATION_DELAY_SECONDS": "30",
        }
    )
    assert (cfg.cluster_name, cfg.service_names, cfg.grace_period_s) == ("c1", {"a", "b"}, 120)
    assert cfg.deregistration_delay_s == 30 and cfg.stop_timeout_s is None
    assert cfg.server_metrics_namespace == "SessionWatch/MCPServer"
    with pytest.raises(ConfigError):
        load_config({"CLUSTER_NAME": "c"})
    with pytest.raises(ConfigError):
        load_config({"LEDGER_TABLE_NAME": "t", "CLUSTER_NAME": "c", "LEDGER_TTL_DAYS": "x"})


@pytest.mark.parametrize(("raw", "bound"), [(None, 1.0), ("0", 0.0), (" 0.005 ", 0.005)])
def test_clock_error_bound_from_environment(raw, bound) -> None:
    env = {"LEDGER_TABLE_NAME": "t", "CLUSTER_NAME": "c"}
    assert (
        load_config(env | ({} if raw is None else {"CLOCK_ERROR_SECONDS": raw})).clock_error_s
        == bound
    )


@pytest.mark.parametrize("raw", ["-0.5", "one", "inf", "nan"])
def test_clock_error_bound_refuses_what_no_clock_has(raw) -> None:
    with pytest.raises(ConfigError, match="CLOCK_ERROR_SECONDS"):
        load_config({"LEDGER_TABLE_NAME": "t", "CLUSTER_NAME": "c", "CLOCK_ERROR_SECONDS": raw})
