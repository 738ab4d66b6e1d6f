"""Fixtures of the ops suite: an ECS service behind an ELBv2 target group, in moto."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws

from sessionwatch.contract import (
    DIMENSION_CAUSE,
    DIMENSION_SERVICE,
    METRIC_SESSIONS_LOST,
    NAMESPACE,
)

# The in-process SDK servers the shared client's tests run against (the lab's suite uses them too).
from tests.lab.conftest import anyio_backend, sdk_servers  # noqa: F401

REGION = "eu-west-1"
CLUSTER = "prod"
SERVICE = "mcp-server"
TOPIC = f"arn:aws:sns:{REGION}:123456789012:sessionwatch-alerts"


@dataclass
class ServiceSpec:
    """A knob per risk rule; the defaults are a configuration with no findings at all."""

    desired_count: int = 2
    stickiness: bool = True
    deregistration_delay: int = 60
    stickiness_duration: int = 86400
    stop_timeout: int | None = 90
    drain_seconds: str | None = "45"
    circuit_breaker: bool = True
    deployment_alarms: list[str] = field(default_factory=lambda: ["sessionwatch-lost-deployment"])
    sessionwatch_alarm: bool = True
    alarm_actions: bool = True
    with_target_group: bool = True
    deployment_configuration: bool = True
    # ECS native blue/green: the production listener rule's AWSALBTG duration (None: a rolling
    # service) and the bake time in minutes.
    group_stickiness: int | None = None
    bake_minutes: int = 10


def build_service(spec: ServiceSpec) -> dict[str, Any]:
    """Create the service in the active moto backend the way an operator's stack would."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    tg_arn = elbv2.create_target_group(
        Name="mcp", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=tg_arn,
        Attributes=[
            {"Key": "stickiness.enabled", "Value": str(spec.stickiness).lower()},
            {"Key": "stickiness.type", "Value": "lb_cookie"},
            {
                "Key": "stickiness.lb_cookie.duration_seconds",
                "Value": str(spec.stickiness_duration),
            },
            {
                "Key": "deregistration_delay.timeout_seconds",
                "Value": str(spec.deregistration_delay),
            },
        ],
    )
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(clusterName=CLUSTER)
    container: dict[str, Any] = {"name": "mcp", "image": "mcp-server:1", "essential": True}
    if spec.stop_timeout is not None:
        container["stopTimeout"] = spec.stop_timeout
    if spec.drain_seconds is not None:
        container["environment"] = [
            {"name": "SESSIONWATCH_DRAIN_SECONDS", "value": spec.drain_seconds}
        ]
    sidecar = {"name": "adot", "image": "adot:latest", "essential": False}
    ecs.register_task_definition(
        family="mcp-server",
        containerDefinitions=[container, sidecar],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    lbs = (
        [{"targetGroupArn": tg_arn, "containerName": "mcp", "containerPort": 8000}]
        if spec.with_target_group
        else []
    )
    ecs.create_service(
        cluster=CLUSTER,
        serviceName=SERVICE,
        taskDefinition="mcp-server",
        desiredCount=spec.desired_count,
        launchType="FARGATE",
        loadBalancers=lbs,
    )
    if spec.deployment_configuration:
        # moto 5.2 drops deploymentConfiguration on CreateService but keeps it on UpdateService.
        ecs.update_service(
            cluster=CLUSTER,
            service=SERVICE,
            deploymentConfiguration={
                "maximumPercent": 200,
                "minimumHealthyPercent": 100,
                "deploymentCircuitBreaker": {
                    "enable": spec.circuit_breaker,
                    "rollback": spec.circuit_breaker,
                },
                "alarms": {
                    "alarmNames": spec.deployment_alarms,
                    "enable": bool(spec.deployment_alarms),
                    "rollback": True,
                },
            },
        )
    if spec.group_stickiness is not None:
        _blue_green(ecs, elbv2, ec2, vpc, tg_arn, spec)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    # An unrelated alarm every account has: it must never count as a SessionWatch alarm.
    cloudwatch.put_metric_alarm(
        AlarmName="alb-5xx",
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=[{"Name": "TargetGroup", "Value": "targetgroup/mcp/x"}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[TOPIC],
    )
    if spec.sessionwatch_alarm:
        cloudwatch.put_metric_alarm(
            AlarmName="sessionwatch-lost-deployment",
            Namespace=NAMESPACE,
            MetricName=METRIC_SESSIONS_LOST,
            Dimensions=[
                {"Name": DIMENSION_SERVICE, "Value": SERVICE},
                {"Name": DIMENSION_CAUSE, "Value": "deployment"},
            ],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[TOPIC] if spec.alarm_actions else [],
        )
    return {"target_group_arn": tg_arn}


def _blue_green(ecs: Any, elbv2: Any, ec2: Any, vpc: str, blue: str, spec: ServiceSpec) -> None:
    """The service turned ECS native blue/green: a weighted forward rule with AWSALBTG."""
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    alb = elbv2.create_load_balancer(Name="mcp-alb", Subnets=subnets)["LoadBalancers"][0]
    green = elbv2.create_target_group(
        Name="mcp-green", Protocol="HTTP", Port=8000, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=alb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    forward = {
        "TargetGroups": [
            {"TargetGroupArn": blue, "Weight": 100},
            {"TargetGroupArn": green, "Weight": 0},
        ],
        "TargetGroupStickinessConfig": {
            "Enabled": spec.group_stickiness > 0,
            **({"DurationSeconds": spec.group_stickiness} if spec.group_stickiness else {}),
        },
    }
    rule = elbv2.create_rule(
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/mcp*"]}],
        Actions=[{"Type": "forward", "ForwardConfig": forward}],
    )["Rules"][0]["RuleArn"]
    advanced = {
        "alternateTargetGroupArn": green,
        "productionListenerRule": rule,
        "roleArn": "arn:aws:iam::123456789012:role/ecs-blue-green",
    }
    # moto keeps loadBalancers' advancedConfiguration and the strategy on UpdateService.
    ecs.update_service(
        cluster=CLUSTER,
        service=SERVICE,
        loadBalancers=[
            {
                "targetGroupArn": blue,
                "containerName": "mcp",
                "containerPort": 8000,
                "advancedConfiguration": advanced,
            }
        ],
        deploymentConfiguration={
            "strategy": "BLUE_GREEN",
            "bakeTimeInMinutes": spec.bake_minutes,
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            "alarms": {
                "alarmNames": spec.deployment_alarms,
                "enable": bool(spec.deployment_alarms),
                "rollback": True,
            },
        },
    )


@pytest.fixture
def aws() -> Iterator[None]:
    """A fresh moto backend per test: each test builds exactly the configuration it audits.

    Its VPC needs none of the default AMIs moto otherwise creates (with their volumes and
    snapshots) whenever a region's EC2 backend starts: half of the audit tests' CPU. (Set by
    hand, not with the test's monkeypatch, which must undo its own changes before moto's.)"""
    with mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}), mock_aws():
        yield


@pytest.fixture
def session(aws: None) -> boto3.Session:
    return boto3.Session(region_name=REGION)
