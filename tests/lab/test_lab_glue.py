"""Lab glue: subscription payloads, EMF, the awsemf mapping, ECS event shapes, the template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.alarm_replay import Datapoint
from lab.cloudwatch import AwsEmfBridge, emf_datapoints, put_metric_data
from lab.filter_pattern import compile_pattern
from lab.otlp_receiver import DataPoint
from lab.pipeline import line_timestamp_ms
from lab.template import AddonTemplate, resolve
from sessionwatch.detectors.config import load_config
from sessionwatch.detectors.facts import BadInput
from sessionwatch.detectors.parsing import decode_subscription, parse_ecs_event
from sessionwatch.infra.adot import DIMENSION_SETS, SERVER_METRICS_NAMESPACE
from world.ecs import (
    STOP_SCHEDULER,
    ServiceRef,
    TaskRecord,
    deployment_event,
    iso,
    new_deployment_id,
    scheduler_stop_reason,
    task_event,
)
from world.server_logs import subscription_payload

REF = ServiceRef("us-east-1", "123456789012", "lab-cluster", "mcp-server")


def test_subscription_payload_decodes_like_cloudwatch_logs_sends_it() -> None:
    lines = [json.dumps({"event": "session_created", "session": "0123456789abcdef"}), "x"]
    payload = subscription_payload("/g", "s", "f", [(1000, lines[0]), (2000, lines[1])])
    batch = decode_subscription(payload)
    assert not hasattr(batch, "reason"), batch
    assert batch.log_group == "/g" and batch.log_stream == "s"  # type: ignore[union-attr]
    assert [m for _, m in batch.events] == lines  # type: ignore[union-attr]


def test_emf_lines_become_one_datapoint_per_metric_and_value() -> None:
    line = json.dumps(
        {
            "_aws": {
                "Timestamp": 1_700_000_000_000,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "SessionWatch",
                        "Dimensions": [["ServiceName", "Cause"]],
                        "Metrics": [{"Name": "SessionsLost", "Unit": "Count"}],
                    }
                ],
            },
            "ServiceName": "svc",
            "Cause": "deployment",
            "SessionsLost": [1.0, 2.0],
        }
    )
    points = emf_datapoints(line)
    assert [(p.metric_name, p.value, p.timestamp) for p in points] == [
        ("SessionsLost", 1.0, 1_700_000_000.0),
        ("SessionsLost", 2.0, 1_700_000_000.0),
    ]
    assert points[0].dimensions == (("Cause", "deployment"), ("ServiceName", "svc"))


@pytest.mark.parametrize(
    "line",
    [
        "not json",
        '{"level": "INFO"}',
        '{"_aws": {"Timestamp": "x", "CloudWatchMetrics": []}}',
        # a dimension whose value is missing drops that dimension set, as CloudWatch does
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", '
        '"Dimensions": [["Missing"]], "Metrics": [{"Name": "M"}]}]}, "M": 1}',
        '{"_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "N", '
        '"Dimensions": [[]], "Metrics": [{"Name": "M"}]}]}, "M": true}',
    ],
)
def test_emf_garbage_gives_nothing(line: str) -> None:
    assert emf_datapoints(line) == []


def otlp(name: str, value: float, t: int, **attrs: Any) -> DataPoint:
    return DataPoint(
        name=name,
        kind="sum",
        unit="1",
        attributes=attrs,
        resource={"service.name": "mcp-server", "aws.ecs.task.arn": "arn:x"},
        scope="s",
        time_unix_nano=t * 1_000_000_000,
        value=value,
        monotonic=True,
    )


def test_datapoints_go_to_cloudwatch_1000_metrics_a_call_per_namespace() -> None:
    calls: list[tuple[str, int]] = []

    class CloudWatch:
        def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
            calls.append((Namespace, len(MetricData)))

    points = [Datapoint("A", "m", (("k", str(i)),), 1.0, 1.0) for i in range(1001)]
    points += [Datapoint("B", "m", (), 1.0, 2.0), Datapoint("B", "m", (), 1.0, float("nan"))]
    assert put_metric_data(CloudWatch(), points) == 1002  # NaN: CloudWatch rejects it
    assert calls == [("A", 1000), ("A", 1), ("B", 1)]


def test_awsemf_bridge_deltas_and_dimension_sets() -> None:
    bridge = AwsEmfBridge()
    attrs = {"aws.ecs.task.id": "t1"}
    first = bridge.convert([otlp("mcp.server.session.not_found", 2, 10, **attrs)])
    second = bridge.convert([otlp("mcp.server.session.not_found", 5, 11, **attrs)])
    # dimension sets whose keys are all present: [service.name] and [service.name, task id]
    expected_sets = [d for d in DIMENSION_SETS if set(d) <= {"service.name", "aws.ecs.task.id"}]
    assert len(first) == len(expected_sets) == 2
    assert {p.value for p in first} == {2.0} and {p.value for p in second} == {3.0}
    assert all(p.namespace == SERVER_METRICS_NAMESPACE for p in first + second)
    assert {dict(p.dimensions)["service.name"] for p in first} == {"mcp-server"}
    # a counter reset (process restart) never yields a negative datapoint
    assert {
        p.value for p in bridge.convert([otlp("mcp.server.session.not_found", 1, 12, **attrs)])
    } == {0.0}


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value[:1]]
    return type(value).__name__


def test_task_events_have_the_documented_shape(fixtures_dir: Path) -> None:
    documented = json.loads((fixtures_dir / "ecs" / "task-stopped-deployment.json").read_text())
    task = TaskRecord("a" * 32, "ecs-svc/111", "7", created_at=1.0, started_at=2.0)
    task.stopping_at, task.stopped_at, task.exit_code = 3.0, 4.0, 0
    task.stop_code, task.stopped_reason = STOP_SCHEDULER, scheduler_stop_reason(task)
    built = task_event(REF, task, "STOPPED", "STOPPED", 4.0)
    ours, theirs = _shape(built.detail), _shape(documented["detail"])
    missing = {k for k in theirs if k not in ours} - {
        "attachments",
        "overrides",
        "connectivity",
        "connectivityAt",
        "pullStartedAt",
        "pullStoppedAt",
    }
    assert not missing, missing
    assert all(ours[k] == theirs[k] for k in ours if k in theirs and k != "containers")
    assert built.detail["stoppedReason"] == "Scaling activity initiated by (deployment ecs-svc/111)"
    assert built.detail["stoppedAt"] == iso(4.0) == "1970-01-01T00:00:04.000Z"


def test_built_events_parse_as_the_detectors_expect(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(
        {"LEDGER_TABLE_NAME": "t", "CLUSTER_NAME": REF.cluster_arn, "SERVICE_NAMES": "mcp-server"}
    )
    deployment_id = new_deployment_id()
    assert deployment_id.startswith("ecs-svc/") and len(deployment_id) == 8 + 19
    task = TaskRecord("b" * 32, deployment_id, "2", created_at=10.0, started_at=11.0)
    for event in (
        deployment_event(REF, deployment_id, "SERVICE_DEPLOYMENT_IN_PROGRESS", 10.0),
        task_event(REF, task, "RUNNING", "RUNNING", 11.0),
    ):
        envelope = {
            "version": "0",
            "id": "1",
            "account": REF.account,
            "region": REF.region,
            "time": "2026-01-01T00:00:00Z",
            "source": "aws.ecs",
            "detail-type": event.detail_type,
            "resources": event.resources,
            "detail": event.detail,
        }
        fact = parse_ecs_event(envelope, cfg)
        assert fact is not None and not isinstance(fact, BadInput), fact


def test_resolve_intrinsics() -> None:
    refs = {"AWS::Region": "us-east-1", "Table": "tbl", "Fn.Arn": "arn:fn"}
    value = {
        "a": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Region"}, ":", {"Ref": "Table"}]]},
        "b": {"Fn::GetAtt": ["Fn", "Arn"]},
        "c": {"Fn::Sub": "x-${AWS::Region}-${Nope}"},
        "d": [{"Ref": "Table"}, 3],
    }
    assert resolve(value, refs) == {
        "a": "arn:us-east-1:tbl",
        "b": "arn:fn",
        "c": "x-us-east-1-<Nope>",
        "d": ["tbl", 3],
    }


def test_the_real_template_gives_the_lab_its_wiring(addon_template: Path) -> None:
    template = AddonTemplate.load(addon_template)
    matches = compile_pattern(template.subscription_filter_pattern())
    assert matches('{"event": "session_not_found"}') and not matches('{"event": "log"}')
    refs = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    pattern = template.ecs_event_pattern(refs)
    assert pattern["source"] == ["aws.ecs"]
    assert "arn:aws:ecs:us-east-1:123456789012:cluster/sessionwatch-lab" in json.dumps(pattern)
    table_id, table = template.table()
    assert {k["AttributeName"] for k in table["KeySchema"]} == {"pk", "sk"}
    env = template.function_env(
        "sessionwatch.detectors.handlers.session_events.handler", {table_id: "tbl"}
    )
    assert env["LEDGER_TABLE_NAME"] == "tbl" and env["SERVICE_NAMES"] == "mcp-server"


def test_line_timestamp_is_the_lines_own() -> None:
    line = json.dumps({"timestamp": "2026-11-23T23:52:56.701+00:00"})
    assert line_timestamp_ms(line, 0) == 1795477976701
    assert line_timestamp_ms("garbage", 12.5) == 12500
