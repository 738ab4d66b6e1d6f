"""A platform engineer's mistakes in `SessionWatchProps`, each refused at synth time with the prop
named and the fix said; a cluster given by ARN works like one given by name."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Match, Template
from moto.events.models import EventPattern

from lab.template import resolve
from sessionwatch.infra.construct import SessionWatch, SessionWatchProps
from sessionwatch.infra.props_check import SessionWatchPropsError

ECS_FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "ecs").glob("*.json"))
# The ECS fixtures' cluster; the stack itself is deployed to another account and region.
FIXTURE_CLUSTER_ARN = "arn:aws:ecs:us-east-1:111122223333:cluster/mcp-cluster"
STACK_REFS = {
    "AWS::AccountId": "999988887777",
    "AWS::Region": "eu-west-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


def _stack() -> Stack:
    return Stack(App(), "Orders")


def _props(stack: Stack, **changes: Any) -> SessionWatchProps:
    group = stack.node.try_find_child("ServerLogs") or logs.LogGroup.from_log_group_name(
        stack, "ServerLogs", "/ecs/orders"
    )
    base = SessionWatchProps(
        cluster_name="orders",
        service_names=["orders-mcp"],
        server_log_group=group,  # type: ignore[arg-type]
        alarm_email_subscribers=["oncall@example.com"],
    )
    return replace(base, **changes)


def _refused(stack: Stack, **changes: Any) -> SessionWatchPropsError:
    with pytest.raises(SessionWatchPropsError) as info:
        SessionWatch(stack, "SessionWatch", _props(stack, **changes))
    # Nothing half-built is left behind: the construct refused before adding itself.
    assert stack.node.try_find_child("SessionWatch") is None
    return info.value


@pytest.mark.parametrize(
    ("changes", "prop", "fix"),
    [
        ({"cluster_name": ""}, "cluster_name", "cluster's name"),
        ({"cluster_name": "orders/prod"}, "cluster_name", "1-255 letters"),
        ({"cluster_name": "arn:aws:ecs:us-east-1:1111:cluster/x"}, "cluster_name", "arn:aws:ecs"),
        ({"cluster_name": 42}, "cluster_name", "its ARN"),
        ({"service_names": "orders-mcp"}, "service_names", 'service_names=["orders-mcp"]'),
        ({"service_names": []}, "service_names", "list of ECS service names"),
        ({"service_names": ["a", "b", "a"]}, "service_names", "each service once"),
        ({"service_names": ["orders mcp"]}, "service_names", "1-255 letters"),
        ({"service_names": ["x" * 256]}, "service_names", "1-255 letters"),
        (
            {"cluster_arn": "arn:aws:ecs:us-east-1:111122223333:cluster/billing"},
            "cluster_arn",
            "same cluster",
        ),
        ({"grace_period": 120}, "grace_period", "Duration.seconds(120)"),
        ({"ledger_ttl_days": 0}, "ledger_ttl_days", "ledger_ttl_days=14"),
        ({"high_resolution_alarms": "yes"}, "high_resolution_alarms", "True or False"),
        ({"alarm_email_subscribers": "a@example.com"}, "alarm_email_subscribers", '["a@'),
        ({"alarm_email_subscribers": ["oncall"]}, "alarm_email_subscribers", "@example.com"),
        ({"server_service_name": ""}, "server_service_name", "leave server_service_name out"),
        ({"clock_error_seconds": -0.5}, "clock_error_seconds", "clock_error_seconds=0.05"),
        ({"clock_error_seconds": "1"}, "clock_error_seconds", "clock_error_seconds=0.05"),
        ({"clock_error_seconds": float("nan")}, "clock_error_seconds", "detectors' 1 s"),
    ],
)
def test_a_wrong_prop_is_refused_naming_it_and_its_fix(
    changes: dict[str, Any], prop: str, fix: str
) -> None:
    error = _refused(_stack(), **changes)
    assert error.prop == prop
    assert str(error).startswith(f"SessionWatchProps.{prop}: ")
    assert fix in str(error).split("Fix: ", 1)[1]


def test_a_plain_string_log_group_is_refused_before_jsii_sees_it() -> None:
    error = _refused(_stack(), server_log_group="/ecs/orders")
    assert error.prop == "server_log_group"
    # The fix is the very call to write, with the user's own name in it.
    assert 'logs.LogGroup.from_log_group_name(stack, "ServerLogs", "/ecs/orders")' in str(error)
    assert "jsii" not in str(error).lower()


@pytest.mark.parametrize("name", ["/ecs/orders mcp", "aws/ecs/orders", "/ecs/" + "x" * 512, ""])
def test_a_log_group_name_cloudwatch_logs_would_reject_is_refused(name: str) -> None:
    stack = _stack()
    group = logs.LogGroup.from_log_group_name(stack, "Bad", name)
    error = _refused(stack, server_log_group=group)
    assert error.prop == "server_log_group"
    assert "not starting with 'aws/'" in str(error)


def test_valid_names_of_every_allowed_character_pass() -> None:
    stack = _stack()
    group = logs.LogGroup.from_log_group_name(stack, "Good", "/ecs/Orders_mcp-2.prod#blue")
    props = _props(stack, service_names=["Orders_mcp-2", "b"], server_log_group=group)
    SessionWatch(stack, "SessionWatch", props)


def _warnings(construct: SessionWatch) -> list[str]:
    return [str(m.data) for m in construct.node.metadata if m.type == "aws:cdk:warning"]


def test_no_subscriber_is_a_synth_time_warning_and_any_subscriber_silences_it() -> None:
    stack = _stack()
    silent = SessionWatch(stack, "Silent", _props(stack, alarm_email_subscribers=()))
    (warning,) = _warnings(silent)
    assert "nobody is subscribed" in warning
    assert "alarm_email_subscribers, chat_channels or notification_topic" in warning
    heard = SessionWatch(stack, "Heard", _props(stack, service_names=["other"]))
    assert _warnings(heard) == []


def _rule_pattern(template: Template) -> EventPattern:
    rules = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"EventPattern": Match.any_value()}}
    )
    (rule,) = rules.values()
    return EventPattern.load(json.dumps(resolve(rule["Properties"]["EventPattern"], STACK_REFS)))


def _policy_resources(template: Template) -> list[str]:
    resources: list[str] = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(str(a).startswith("ecs:") for a in _as_list(statement["Action"])):
                resources += [resolve(r, STACK_REFS) for r in _as_list(statement["Resource"])]
    return resources


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_a_cluster_given_by_arn_routes_its_events_and_scopes_its_arns_to_that_account() -> None:
    """The ARN's account and region, not the stack's, go into the rule and the IAM ARNs."""
    stack = _stack()
    watch = SessionWatch(
        stack,
        "SessionWatch",
        _props(
            stack,
            cluster_name=FIXTURE_CLUSTER_ARN,
            service_names=["mcp-service"],
            grace_period=Duration.seconds(120),
        ),
    )
    assert watch.cluster.name == "mcp-cluster"
    assert watch.cluster_arn == FIXTURE_CLUSTER_ARN
    template = Template.from_stack(stack)
    pattern = _rule_pattern(template)
    for path in ECS_FIXTURES:
        event = json.loads(path.read_text())
        assert pattern.matches_event(event), path.name
    assert sorted(_policy_resources(template)) == [
        "arn:aws:ecs:us-east-1:111122223333:service-deployment/mcp-cluster/mcp-service/*",
        "arn:aws:ecs:us-east-1:111122223333:service/mcp-cluster/mcp-service",
    ]
    detectors = [
        f["Properties"]["Environment"]["Variables"]
        for f in template.find_resources("AWS::Lambda::Function").values()
        if "LEDGER_TABLE_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert len(detectors) == 3
    for variables in detectors:
        assert variables["CLUSTER_NAME"] == FIXTURE_CLUSTER_ARN
        assert variables["SERVER_SERVICE_NAMES"] == "mcp-service=mcp-service"
