"""Assertions on the synthesized templates: wiring, alarms, encryption, the demo's ALB and ECS."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Match, Template

from lab.filter_pattern import compile_pattern
from lab.template import resolve
from sessionwatch import contract
from sessionwatch.dashboards.body import DashboardInputs, dashboard_body
from sessionwatch.detectors.ledger import TABLE_SCHEMA
from sessionwatch.detectors.models import LINE_MODELS
from sessionwatch.infra import adot
from sessionwatch.infra.construct import LEDGER_ACTIONS, SessionWatch
from sessionwatch.infra.event_pattern import DETAIL_TYPES
from sessionwatch.infra.functions import (
    HANDLERS,
    PYTHON_RUNTIME,
    DetectorFunction,
    powertools_layer_arn,
)
from sessionwatch.server.drain_budget import DEFAULT_GRACEFUL_SECONDS, check_drain_budget
from sessionwatch.server.instrumentation import EVENT_INSTRUMENTATION_MODE
from tests.infra.conftest import (
    ACCOUNT,
    ADDON_CONTEXT,
    PSEUDO_REFS,
    REGION,
    Synth,
    logical_id,
)

REQUIRED_ENV = {
    "LEDGER_TABLE_NAME",
    "CLUSTER_NAME",
    "SERVICE_NAMES",
    "REPORT_TOPIC_ARN",
    "GRACE_PERIOD_SECONDS",
    "LEDGER_TTL_DAYS",
    "SERVER_METRICS_NAMESPACE",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}
FUNCTION = "AWS::Lambda::Function"
ALARM = "AWS::CloudWatch::Alarm"


class Stack_:
    """One stack under test: its `Template` and its SessionWatch construct."""

    def __init__(self, synthesized: Synth, name: str) -> None:
        self.name = name
        self.template: Template = getattr(synthesized, f"{name}_template")
        self.sw: SessionWatch = synthesized.sessionwatch(name)

    def detector(self, name: str) -> DetectorFunction:
        return {
            "EcsEvents": self.sw.ecs_events,
            "SessionEvents": self.sw.session_events,
            "Reporter": self.sw.reporter,
        }[name]

    def function_id(self, name: str) -> str:
        return logical_id(self.detector(name).function)

    def function(self, name: str) -> dict[str, Any]:
        properties: dict[str, Any] = self.template.to_json()["Resources"][self.function_id(name)][
            "Properties"
        ]
        return properties

    def resolve(self, value: Any) -> Any:
        """A token as the template writes it (`{"Ref": ...}`, `{"Fn::Join": ...}`)."""
        return Stack.of(self.sw).resolve(value)


@pytest.fixture(params=["addon", "demo"])
def under_test(request: pytest.FixtureRequest, synthesized: Synth) -> Stack_:
    return Stack_(synthesized, request.param)


def _arn(logical: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, "Arn"]}


def test_three_detectors_with_runtime_layer_and_log_retention(under_test: Stack_) -> None:
    template = under_test.template
    template.resource_count_is(FUNCTION, len(HANDLERS))
    layer = under_test.resolve(powertools_layer_arn())
    python = PYTHON_RUNTIME.name.replace(".", "")
    assert resolve(layer, PSEUDO_REFS).startswith(
        f"arn:aws:lambda:{REGION}:017000801446:layer:AWSLambdaPowertoolsPythonV3-{python}-arm64:"
    )
    for name, handler in HANDLERS.items():
        log_group = logical_id(under_test.detector(name).log_group)
        template.has_resource_properties(
            FUNCTION,
            {
                "Handler": handler,
                "Runtime": PYTHON_RUNTIME.name,
                "Architectures": ["arm64"],
                "Layers": [layer],
                "LoggingConfig": {"LogGroup": {"Ref": log_group}},
            },
        )
        retention = template.to_json()["Resources"][log_group]["Properties"]["RetentionInDays"]
        assert retention > 0


def test_detectors_share_the_contract_config(under_test: Stack_, synthesized: Synth) -> None:
    sw = under_test.sw
    env = Match.object_like(
        {
            "LEDGER_TABLE_NAME": {"Ref": logical_id(sw.ledger)},
            "REPORT_TOPIC_ARN": {"Ref": logical_id(sw.topic)},
            "POWERTOOLS_METRICS_NAMESPACE": contract.NAMESPACE,
            "SERVER_METRICS_NAMESPACE": adot.SERVER_METRICS_NAMESPACE,
            "SERVICE_NAMES": "mcp-service",
            "CLUSTER_NAME": under_test.resolve(sw.cluster_arn),
        }
    )
    functions = under_test.template.find_resources(
        FUNCTION, {"Properties": {"Environment": {"Variables": env}}}
    )
    assert len(functions) == len(HANDLERS)
    for function in functions.values():
        assert set(function["Properties"]["Environment"]["Variables"]) >= REQUIRED_ENV
    # The add-on watches the cluster named by context, the demo its own cluster.
    cluster_arn = under_test.resolve(sw.cluster_arn)
    if under_test.name == "demo":
        assert cluster_arn == _arn(logical_id(synthesized.demo_stack.cluster))
    else:
        assert (
            resolve(cluster_arn, PSEUDO_REFS)
            == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/mcp-cluster"
        )


def test_lambda_asset_holds_the_detectors_package_only(synthesized: Synth) -> None:
    code = Stack_(synthesized, "addon").function("EcsEvents")["Code"]
    asset_hash = code["S3Key"].removesuffix(".zip")
    staged = synthesized.outdir / f"asset.{asset_hash}"
    if staged.is_dir():
        files = [p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()]
    else:
        with zipfile.ZipFile(staged.with_suffix(".zip")) as archive:
            files = archive.namelist()
    assert {f.split("/")[0] for f in files} == {"sessionwatch"}
    assert {f.split("/")[1] for f in files} == {"__init__.py", "contract.py", "detectors"}
    for handler in HANDLERS.values():
        module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert module in files, module
    assert not any("__pycache__" in f for f in files)


def test_ecs_rule_targets_the_ecs_events_detector(under_test: Stack_) -> None:
    template = under_test.template
    function = under_test.function_id("EcsEvents")
    rules = template.find_resources(
        "AWS::Events::Rule",
        {
            "Properties": {
                "EventPattern": {
                    "source": ["aws.ecs"],
                    "detail-type": list(DETAIL_TYPES),
                    "$or": [
                        {"detail": {"clusterArn": Match.any_value()}},
                        {"resources": [{"prefix": Match.any_value()}]},
                    ],
                },
                "Targets": [Match.object_like({"Arn": _arn(function)})],
            }
        },
    )
    assert len(rules) == 1
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Principal": "events.amazonaws.com",
            "FunctionName": _arn(function),
            "SourceArn": _arn(next(iter(rules))),
        },
    )


def test_subscription_filter_selects_the_session_events(under_test: Stack_) -> None:
    under_test.template.resource_count_is("AWS::Logs::SubscriptionFilter", 1)
    (subscription,) = under_test.template.find_resources("AWS::Logs::SubscriptionFilter").values()
    properties = subscription["Properties"]
    assert properties["DestinationArn"] == _arn(under_test.function_id("SessionEvents"))
    pattern = properties["FilterPattern"]
    assert pattern == contract.SESSION_EVENTS_FILTER_PATTERN
    # What CloudWatch Logs delivers with it (the lab's evaluator of the JSON filter syntax): every
    # line the session-events detector parses, none of the server's other lines.
    delivered = compile_pattern(pattern)
    for event in LINE_MODELS:
        assert delivered(json.dumps({"event": event, "session": "0123456789abcdef"})), event
    for other in (contract.EVENT_REQUEST, EVENT_INSTRUMENTATION_MODE, "instrumentation_error"):
        assert not delivered(json.dumps({"event": other})), other


def test_subscription_reads_the_server_log_group(synthesized: Synth) -> None:
    synthesized.addon_template.has_resource_properties(
        "AWS::Logs::SubscriptionFilter", {"LogGroupName": "/ecs/mcp-server"}
    )
    demo = synthesized.demo_stack
    server_logs = {"Ref": logical_id(demo.server_logs)}
    synthesized.demo_template.has_resource_properties(
        "AWS::Logs::SubscriptionFilter", {"LogGroupName": server_logs}
    )
    server = _container(synthesized.demo_template, "mcp-server")
    assert server["LogConfiguration"]["Options"]["awslogs-group"] == server_logs


def test_reporter_runs_every_minute(under_test: Stack_) -> None:
    under_test.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 minute)",
            "Targets": [Match.object_like({"Arn": _arn(under_test.function_id("Reporter"))})],
        },
    )


def _alarms(template: Template, namespace: str = contract.NAMESPACE) -> list[dict[str, Any]]:
    found = template.find_resources(ALARM, {"Properties": {"Namespace": namespace}})
    return [a["Properties"] for a in found.values()]


def _dims(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_alarms_of_the_architecture_act_on_the_topic(under_test: Stack_) -> None:
    topic = {"Ref": logical_id(under_test.sw.topic)}
    alarms = _alarms(under_test.template)
    assert len(alarms) == 3
    by_kind = {(a["MetricName"], _dims(a).get(contract.DIMENSION_CAUSE)): a for a in alarms}
    assert set(by_kind) == {
        (contract.METRIC_SESSIONS_LOST, contract.Cause.DEPLOYMENT.value),
        (contract.METRIC_SESSIONS_LOST, contract.Cause.STICKINESS.value),
        (contract.METRIC_DEPLOYMENT_LOSS_SPIKE, None),
    }
    under_test.template.all_resources_properties(
        ALARM,
        {"AlarmActions": [topic], "OKActions": [topic], "TreatMissingData": "notBreaching"},
    )
    for alarm in alarms:
        assert _dims(alarm)[contract.DIMENSION_SERVICE] == "mcp-service"
        assert alarm["Period"] == 60
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    deployment = by_kind[(contract.METRIC_SESSIONS_LOST, contract.Cause.DEPLOYMENT.value)]
    assert deployment["Statistic"] == "Sum"


def test_session_cap_alarm_reads_the_servers_own_utilization(under_test: Stack_) -> None:
    """A task's open sessions past 80% of the SDK's cap alarm, before clients are refused."""
    topic = {"Ref": logical_id(under_test.sw.topic)}
    alarms = _alarms(under_test.template, namespace=contract.SERVER_METRICS_NAMESPACE)
    sw = under_test.sw
    servers = {sw.server_service_name(service) for service in sw.props.service_names}
    assert {_dims(a)[contract.RESOURCE_SERVICE_NAME] for a in alarms} == servers
    assert set(sw.capacity_alarms) == servers
    for alarm in alarms:
        assert alarm["MetricName"] == contract.METRIC_SESSION_UTILIZATION
        assert alarm["Statistic"] == "Maximum"  # the fullest task's share
        assert alarm["Threshold"] == 0.8
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [topic]


def test_the_load_balancers_own_503s_alarm_when_it_is_given(synthesized_custom: Synth) -> None:
    """Clients a blue/green clean-up locks out reach no task: ALB's HTTPCode_ELB_503_Count,
    published per LoadBalancer (never per TargetGroup), is their only trace."""
    template = synthesized_custom.addon_template
    (alarm,) = _alarms(template, namespace="AWS/ApplicationELB")
    assert alarm["MetricName"] == "HTTPCode_ELB_503_Count"
    assert _dims(alarm) == {"LoadBalancer": ADDON_CONTEXT["sessionwatch:loadBalancerFullName"]}
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 60, 1)
    topic = {"Ref": logical_id(synthesized_custom.sessionwatch("addon").topic)}
    assert alarm["AlarmActions"] == [topic] and alarm["TreatMissingData"] == "notBreaching"


def test_no_load_balancer_no_load_balancer_alarm(synthesized: Synth) -> None:
    assert synthesized.sessionwatch("addon").props.load_balancer_full_name is None
    assert _alarms(synthesized.addon_template, namespace="AWS/ApplicationELB") == []


def test_failing_detectors_alarm_too(under_test: Stack_) -> None:
    """Silence from a crashed detector must not read as "no sessions lost"."""
    alarms = _alarms(under_test.template, namespace="AWS/Lambda")
    assert {_dims(a)["FunctionName"]["Ref"] for a in alarms} == {
        under_test.function_id(name) for name in HANDLERS
    }
    for alarm in alarms:
        assert alarm["MetricName"] == "Errors" and alarm["Statistic"] == "Sum"


def test_ledger_table_schema_and_protection(under_test: Stack_) -> None:
    under_test.template.resource_count_is("AWS::DynamoDB::Table", 1)
    under_test.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            # The keys the ledger reads and writes (the schema its moto tables are built from).
            "KeySchema": list(TABLE_SCHEMA["KeySchema"]),
            "AttributeDefinitions": list(TABLE_SCHEMA["AttributeDefinitions"]),
            "BillingMode": TABLE_SCHEMA["BillingMode"],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "GlobalSecondaryIndexes": Match.absent(),
            "LocalSecondaryIndexes": Match.absent(),
        },
    )


def test_ledger_grants_are_the_item_calls_only(under_test: Stack_) -> None:
    table_arn = _arn(logical_id(under_test.sw.ledger))
    granted = [
        s
        for policy in under_test.template.find_resources("AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if table_arn in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert len(granted) == 3  # one per detector
    for statement in granted:
        assert sorted(statement["Action"]) == sorted(LEDGER_ACTIONS)


def test_topic_is_kms_encrypted_and_tls_only(under_test: Stack_) -> None:
    template = under_test.template
    topic, key = logical_id(under_test.sw.topic), logical_id(under_test.sw.key)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": _arn(key)})
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [  # alarms can publish to the encrypted topic
                        Match.object_like({"Principal": {"Service": "cloudwatch.amazonaws.com"}})
                    ]
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        {
                            "Action": "sns:Publish",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            "Effect": "Deny",
                            "Principal": "*",
                            "Resource": {"Ref": topic},
                            "Sid": "AllowPublishThroughSSLOnly",
                        }
                    ]
                )
            }
        },
    )


def test_dashboard_is_created(under_test: Stack_, synthesized: Synth) -> None:
    """The stack's one dashboard is `dashboards.body` for the service the stack was given."""
    (dashboard,) = under_test.template.find_resources("AWS::CloudWatch::Dashboard").values()
    sw = under_test.sw
    alarms = {
        f"{logical}.Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{logical}"
        for logical in under_test.template.find_resources(ALARM)
    }
    groups = {
        logical_id(detector.log_group): f"/aws/lambda/{name}"
        for name, detector in (("SessionEvents", sw.session_events), ("Reporter", sw.reporter))
    }
    # The demo's own ALB and target group: their dimension values. The add-on was given none.
    lb_name, tg_name = ("app/demo-alb/0123456789abcdef", "targetgroup/demo/fedcba98")
    alb: dict[str, str] = {}
    if under_test.name == "demo":
        demo = synthesized.demo_stack
        alb = {
            f"{logical_id(demo.alb)}.LoadBalancerFullName": lb_name,
            f"{logical_id(demo.target_group)}.TargetGroupFullName": tg_name,
        }
    refs = {**PSEUDO_REFS, **alarms, **groups, **alb}
    rendered = json.loads(resolve(dashboard["Properties"]["DashboardBody"], refs))
    (alarm_widget,) = [w for w in rendered["widgets"] if w["type"] == "alarm"]
    listed = alarm_widget["properties"]["alarms"]
    assert sorted(listed) == sorted(alarms.values())  # every alarm of the stack, each once
    expected = DashboardInputs(
        region=REGION,
        services=("mcp-service",),  # cdk.json's context: the one service this app watches
        server_service_name="mcp-server",
        load_balancer_full_name=lb_name if alb else None,
        target_group_full_name=tg_name if alb else None,
        alarm_arns=tuple(listed),
        verdict_log_groups=("/aws/lambda/SessionEvents", "/aws/lambda/Reporter"),
    )
    assert rendered == dashboard_body(expected)


# --- the add-on stack, from context ---------------------------------------------------------


def test_addon_context_sets_services_alb_emails_and_thresholds(
    synthesized_custom: Synth,
) -> None:
    template = synthesized_custom.addon_template
    alarms = _alarms(template)
    assert len(alarms) == 6
    assert {_dims(a)[contract.DIMENSION_SERVICE] for a in alarms} == {"mcp-a", "mcp-b"}
    deployment = [a for a in alarms if _dims(a).get(contract.DIMENSION_CAUSE) == "deployment"]
    assert {a["Threshold"] for a in deployment} == {3}
    emails = template.find_resources("AWS::SNS::Subscription")
    assert sorted(e["Properties"]["Endpoint"] for e in emails.values()) == [
        "oncall@example.com",
        "sre@example.com",
    ]
    template.all_resources_properties("AWS::SNS::Subscription", {"Protocol": "email"})
    template.all_resources_properties(
        FUNCTION,
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "SERVICE_NAMES": "mcp-a,mcp-b",
                        "LOAD_BALANCER_FULL_NAME": ADDON_CONTEXT[
                            "sessionwatch:loadBalancerFullName"
                        ],
                        "TARGET_GROUP_FULL_NAME": ADDON_CONTEXT["sessionwatch:targetGroupFullName"],
                        "GRACE_PERIOD_SECONDS": "180",
                        "DEREGISTRATION_DELAY_SECONDS": "60",
                        "STOP_TIMEOUT_SECONDS": "90",
                        "CLOCK_ERROR_SECONDS": "0.05",
                        # The given server service.name, for every watched service.
                        "SERVER_SERVICE_NAMES": "mcp-a=mcp-prod,mcp-b=mcp-prod",
                        "GROUP_STICKINESS_SECONDS": "300",
                    }
                )
            }
        },
    )
    sw = synthesized_custom.sessionwatch("addon")
    cluster = resolve(Stack.of(sw).resolve(sw.cluster_arn), PSEUDO_REFS)
    assert cluster == f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod-mcp"
    template.has_resource_properties(
        "AWS::Logs::SubscriptionFilter", {"LogGroupName": "/ecs/prod-mcp"}
    )
    # Each service's deployment alarm is an output, to name in that service's ECS deployment alarms.
    deployment_ids = {logical_id(a.deployment_loss) for a in sw.alarms.values()}
    outputs = template.find_outputs("*")
    named = [o["Value"] for k, o in outputs.items() if "DeploymentAlarmName" in k]
    assert {o["Ref"] for o in named} == deployment_ids and len(deployment_ids) == 2


def test_addon_without_context_says_what_is_missing(tmp_path: Path) -> None:
    from sessionwatch.infra.app import build_app

    with pytest.raises(ValueError, match="sessionwatch:clusterName"):
        build_app(outdir=str(tmp_path), context={})


# --- the demo stack --------------------------------------------------------------------------


def _container(template: Template, name: str) -> dict[str, Any]:
    (task_def,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    (container,) = [c for c in task_def["Properties"]["ContainerDefinitions"] if c["Name"] == name]
    return container


def test_demo_target_group_is_sticky_for_a_day_with_the_configured_delay(
    synthesized: Synth,
) -> None:
    synthesized.demo_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "TargetType": "ip",
            "TargetGroupAttributes": Match.array_with(
                [
                    {"Key": "deregistration_delay.timeout_seconds", "Value": "300"},
                    {"Key": "stickiness.enabled", "Value": "true"},
                    {"Key": "stickiness.type", "Value": "lb_cookie"},
                    {"Key": "stickiness.lb_cookie.duration_seconds", "Value": "86400"},
                ]
            ),
        },
    )


def test_demo_vpc_spans_two_azs(synthesized: Synth) -> None:
    subnets = synthesized.demo_template.find_resources("AWS::EC2::Subnet").values()
    azs = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2
    (alb,) = synthesized.demo_template.find_resources(
        "AWS::ElasticLoadBalancingV2::LoadBalancer"
    ).values()
    assert len(alb["Properties"]["Subnets"]) == 2


def test_demo_service_rolls_with_circuit_breaker_and_deployment_alarm(
    synthesized: Synth,
) -> None:
    sw = synthesized.sessionwatch("demo")
    deployment_alarm = logical_id(sw.deployment_alarm("mcp-service"))
    synthesized.demo_template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "DesiredCount": 2,
            "LaunchType": "FARGATE",
            "ServiceName": "mcp-service",
            "DeploymentController": {"Type": "ECS"},
            "DeploymentConfiguration": {
                "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                "MinimumHealthyPercent": 100,
                "MaximumPercent": 200,
                # FAIL_ON_ALARM: marked failed, not rolled back
                "Alarms": {
                    "AlarmNames": [{"Ref": deployment_alarm}],
                    "Enable": True,
                    "Rollback": False,
                },
            },
            "LoadBalancers": [
                Match.object_like({"ContainerName": "mcp-server", "ContainerPort": 8000})
            ],
        },
    )


def test_demo_task_runs_server_from_asset_with_adot_sidecar(synthesized: Synth) -> None:
    template = synthesized.demo_template
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"RequiresCompatibilities": ["FARGATE"]}
    )
    server = _container(template, "mcp-server")
    assert server["StopTimeout"] == 30
    env = {e["Name"]: e["Value"] for e in server["Environment"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://localhost:4318"
    assert env["SESSIONWATCH_SERVICE"] == "mcp-server"
    # The server's own budget check: drain + graceful shutdown + flush fit in the stop timeout.
    drain = float(env["SESSIONWATCH_DRAIN_SECONDS"])
    assert drain > 0
    assert check_drain_budget(drain, DEFAULT_GRACEFUL_SECONDS, server["StopTimeout"]) is None
    assert server["LogConfiguration"]["LogDriver"] == "awslogs"
    # The image is a staged Docker asset (ECR), built from server/Dockerfile at deploy time.
    assert "cdk-hnb659fds-container-assets" in json.dumps(server["Image"])
    assets = json.loads((synthesized.outdir / "DemoServiceStack.assets.json").read_text())
    (docker_asset,) = assets["dockerImages"].values()
    assert docker_asset["source"]["dockerFile"] == "server/Dockerfile"

    collector = _container(template, "aws-otel-collector")
    assert collector["Image"] == adot.COLLECTOR_IMAGE
    assert collector["Essential"] is False
    collector_env = {e["Name"]: e["Value"] for e in collector["Environment"]}
    config = json.loads(resolve(collector_env[adot.CONFIG_ENV_VAR], PSEUDO_REFS))
    emf = config["exporters"]["awsemf"]
    assert emf["namespace"] == adot.SERVER_METRICS_NAMESPACE
    assert [tuple(d) for d in emf["metric_declarations"][0]["dimensions"]] == list(
        adot.DIMENSION_SETS
    )
    assert {"ContainerName": "aws-otel-collector", "Condition": "START"} in server["DependsOn"]


def test_demo_collector_may_write_only_its_metrics_log_group(synthesized: Synth) -> None:
    template = synthesized.demo_template
    (task_def,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    collector = _container(template, "aws-otel-collector")
    env = {e["Name"]: e["Value"] for e in collector["Environment"]}
    log_group_ref = json.dumps(env[adot.CONFIG_ENV_VAR])
    task_role = task_def["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    policies = template.find_resources(
        "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": task_role}]}}
    )
    (statement,) = [
        s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    log_group_id = statement["Resource"]["Fn::GetAtt"][0]
    assert log_group_id in log_group_ref
    assert "logs:PutLogEvents" in statement["Action"]


def test_demo_sessionwatch_quotes_the_demo_settings(synthesized: Synth) -> None:
    demo = synthesized.demo_stack
    synthesized.demo_template.all_resources_properties(
        FUNCTION,
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "DEREGISTRATION_DELAY_SECONDS": "300",
                        "STOP_TIMEOUT_SECONDS": "30",
                        "LOAD_BALANCER_FULL_NAME": demo.resolve(demo.alb.load_balancer_full_name),
                        "TARGET_GROUP_FULL_NAME": demo.resolve(
                            demo.target_group.target_group_full_name
                        ),
                    }
                )
            }
        },
    )


def test_demo_health_check_is_a_route_the_server_answers(synthesized: Synth) -> None:
    """The ALB health check must hit a path the real server serves with 200, or no task is
    ever healthy and every deployment rolls back."""
    from starlette.testclient import TestClient

    from sessionwatch.infra.demo import HEALTH_CHECK_PATH, HEALTHY_HTTP_CODES
    from sessionwatch.server.app import build_app, build_mcp_server
    from sessionwatch.server.identity import TaskIdentity

    synthesized.demo_template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {"HealthCheckPath": HEALTH_CHECK_PATH, "Matcher": {"HttpCode": HEALTHY_HTTP_CODES}},
    )
    app = build_app(build_mcp_server(TaskIdentity(task_id="t")), session_idle_timeout=None)
    with TestClient(app) as client:
        assert client.get(HEALTH_CHECK_PATH).status_code == int(HEALTHY_HTTP_CODES)


def test_python_m_infra_synthesizes_both_stacks_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m sessionwatch.infra` outside the CDK CLI: cdk.json's context, no AWS call."""
    from sessionwatch.infra.__main__ import CDK_JSON, main

    assert json.loads(CDK_JSON.read_text())["app"].endswith("python -m sessionwatch.infra")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "CDK_DEFAULT_ACCOUNT"):
        monkeypatch.delenv(variable, raising=False)
    main([])
    written = {p.name for p in (tmp_path / "cdk.out").glob("*.template.json")}
    assert written == {"SessionWatchStack.template.json", "DemoServiceStack.template.json"}


def test_image_context_is_what_the_dockerfile_copies(synthesized: Synth) -> None:
    """Docker is not needed to synth: the image asset is only staged. The staged context must
    hold every COPY source of server/Dockerfile and nothing else (an unrelated edit would change
    the image hash and roll the service, losing sessions)."""
    assets = json.loads((synthesized.outdir / "DemoServiceStack.assets.json").read_text())
    (docker_asset,) = assets["dockerImages"].values()
    context = synthesized.outdir / docker_asset["source"]["directory"]
    dockerfile = (context / "server" / "Dockerfile").read_text()
    sources = [
        source.rstrip("/")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
        for source in line.split()[1:-1]
    ]
    assert sources
    for source in sources:
        assert (context / source).exists(), source
    assert {p.name for p in context.iterdir()} == {"pyproject.toml", "README.md", "server"}
    assert not list(context.rglob("__pycache__"))
