"""Assertions on the synthesized templates: wiring, alarms, encryption, the demo's ALB and ECS."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sessionwatch import contract
from sessionwatch.infra import adot
from sessionwatch.infra.construct import LEDGER_ACTIONS
from sessionwatch.infra.functions import HANDLERS, PYTHON_RUNTIME
from sessionwatch.server.drain_budget import DEFAULT_GRACEFUL_SECONDS, check_drain_budget
from tests.infra import cfn
from tests.infra.conftest import ADDON_CONTEXT, Synth

CONTRACT_FILTER = (
    '{ $.event = "session_*" || $.event = "task_started" || $.event = "shutdown_started" }'
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


@pytest.fixture(params=["addon", "demo"])
def template(request: pytest.FixtureRequest, synthesized: Synth) -> dict[str, Any]:
    return getattr(synthesized, request.param)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Detector functions by handler name."""
    return {
        f["Properties"]["Handler"]: f
        for f in cfn.resources(template, "AWS::Lambda::Function").values()
    }


def _function_id(template: dict[str, Any], handler: str) -> str:
    for logical_id, f in cfn.resources(template, "AWS::Lambda::Function").items():
        if f["Properties"]["Handler"] == handler:
            return logical_id
    raise AssertionError(f"no function with handler {handler}")


def test_three_detectors_with_runtime_layer_and_log_retention(template: dict[str, Any]) -> None:
    functions = _functions(template)
    assert set(functions) == set(HANDLERS.values())
    log_groups = cfn.resources(template, "AWS::Logs::LogGroup")
    for handler, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == PYTHON_RUNTIME.name
        assert props["Architectures"] == ["arm64"]
        (layer,) = props["Layers"]
        arn = cfn.resolve(layer)
        assert arn == (
            f"arn:aws:lambda:{cfn.REGION}:017000801446:layer:"
            f"AWSLambdaPowertoolsPythonV3-{PYTHON_RUNTIME.name.replace('.', '')}-arm64:"
            + arn.rsplit(":", 1)[1]
        ), handler
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert log_groups[log_group_id]["Properties"]["RetentionInDays"] > 0


def test_detectors_share_the_contract_config(template: dict[str, Any]) -> None:
    table_id = cfn.one(template, "AWS::DynamoDB::Table")[0]
    topic_id = cfn.one(template, "AWS::SNS::Topic")[0]
    # Both stacks watch a cluster named mcp-cluster: the add-on by context, the demo by its own.
    cluster_arn = f"arn:aws:ecs:{cfn.REGION}:{cfn.ACCOUNT}:cluster/mcp-cluster"
    refs = {f"{c}.Arn": cluster_arn for c in cfn.resources(template, "AWS::ECS::Cluster")}
    for function in _functions(template).values():
        env = function["Properties"]["Environment"]["Variables"]
        assert set(env) >= REQUIRED_ENV
        assert env["LEDGER_TABLE_NAME"] == {"Ref": table_id}
        assert env["REPORT_TOPIC_ARN"] == {"Ref": topic_id}
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == contract.NAMESPACE
        assert env["SERVER_METRICS_NAMESPACE"] == adot.SERVER_METRICS_NAMESPACE
        assert env["SERVICE_NAMES"] == "mcp-service"
        assert cfn.resolve(env["CLUSTER_NAME"], refs) == cluster_arn


def test_lambda_asset_holds_the_detectors_package_only(synthesized: Synth) -> None:
    code = _functions(synthesized.addon)["sessionwatch.detectors.handlers.ecs_events.handler"]
    asset_hash = code["Properties"]["Code"]["S3Key"].removesuffix(".zip")
    staged = synthesized.outdir / f"asset.{asset_hash}"
    if staged.is_dir():
        top = {p.name for p in staged.iterdir()}
        files = [p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()]
    else:
        with zipfile.ZipFile(staged.with_suffix(".zip")) as archive:
            files = archive.namelist()
        top = {name.split("/")[0] for name in files}
    assert top == {"sessionwatch"}
    assert {f.split("/")[1] for f in files} == {"__init__.py", "contract.py", "detectors"}
    for handler in HANDLERS.values():
        module = handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert module in files, module
    assert not any("__pycache__" in f for f in files)


def test_ecs_rule_targets_the_ecs_events_detector(template: dict[str, Any]) -> None:
    rules = cfn.resources(template, "AWS::Events::Rule")
    (rule,) = [r for r in rules.values() if "EventPattern" in r["Properties"]]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert set(pattern["detail-type"]) == {
        "ECS Deployment State Change",
        "ECS Task State Change",
        "ECS Service Action",
    }
    scopes = pattern["$or"]
    assert {"detail", "resources"} == {key for scope in scopes for key in scope}
    (target,) = rule["Properties"]["Targets"]
    function_id = _function_id(template, HANDLERS["EcsEvents"])
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    permissions = cfn.resources(template, "AWS::Lambda::Permission").values()
    assert any(
        p["Properties"]["Principal"] == "events.amazonaws.com"
        and p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
        for p in permissions
    )


def test_subscription_filter_selects_the_session_events(template: dict[str, Any]) -> None:
    assert contract.SESSION_EVENTS_FILTER_PATTERN == CONTRACT_FILTER
    _, subscription = cfn.one(template, "AWS::Logs::SubscriptionFilter")
    props = subscription["Properties"]
    assert props["FilterPattern"] == CONTRACT_FILTER
    function_id = _function_id(template, HANDLERS["SessionEvents"])
    assert props["DestinationArn"] == {"Fn::GetAtt": [function_id, "Arn"]}


def test_subscription_reads_the_server_log_group(synthesized: Synth) -> None:
    _, addon = cfn.one(synthesized.addon, "AWS::Logs::SubscriptionFilter")
    assert addon["Properties"]["LogGroupName"] == "/ecs/mcp-server"
    _, demo = cfn.one(synthesized.demo, "AWS::Logs::SubscriptionFilter")
    _, task_def = cfn.one(synthesized.demo, "AWS::ECS::TaskDefinition")
    server = _container(task_def, "mcp-server")
    assert (
        demo["Properties"]["LogGroupName"] == server["LogConfiguration"]["Options"]["awslogs-group"]
    )


def test_reporter_runs_every_minute(template: dict[str, Any]) -> None:
    rules = cfn.resources(template, "AWS::Events::Rule").values()
    (schedule,) = [r for r in rules if "ScheduleExpression" in r["Properties"]]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    function_id = _function_id(template, HANDLERS["Reporter"])
    assert schedule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}


def _alarms(template: dict[str, Any], namespace: str = contract.NAMESPACE) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in cfn.resources(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Namespace"] == namespace
    ]


def _dims(alarm: dict[str, Any]) -> dict[str, Any]:
    return {d["Name"]: d["Value"] for d in alarm["Dimensions"]}


def test_alarms_of_design_section_6_act_on_the_topic(template: dict[str, Any]) -> None:
    topic_id = cfn.one(template, "AWS::SNS::Topic")[0]
    alarms = _alarms(template)
    assert len(alarms) == 3
    by_kind = {(a["MetricName"], _dims(a).get(contract.DIMENSION_CAUSE)): a for a in alarms}
    assert set(by_kind) == {
        (contract.METRIC_SESSIONS_LOST, contract.Cause.DEPLOYMENT.value),
        (contract.METRIC_SESSIONS_LOST, contract.Cause.STICKINESS.value),
        (contract.METRIC_DEPLOYMENT_LOSS_SPIKE, None),
    }
    for alarm in alarms:
        assert alarm["Namespace"] == contract.NAMESPACE
        assert _dims(alarm)[contract.DIMENSION_SERVICE] == "mcp-service"
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["Period"] == 60
        assert alarm["EvaluationPeriods"] == 1
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    deployment = by_kind[(contract.METRIC_SESSIONS_LOST, contract.Cause.DEPLOYMENT.value)]
    assert deployment["Statistic"] == "Sum"


def test_failing_detectors_alarm_too(template: dict[str, Any]) -> None:
    """Silence from a crashed detector must not read as "no sessions lost"."""
    topic_id = cfn.one(template, "AWS::SNS::Topic")[0]
    alarms = _alarms(template, namespace="AWS/Lambda")
    function_ids = {_function_id(template, handler) for handler in HANDLERS.values()}
    assert {_dims(a)["FunctionName"]["Ref"] for a in alarms} == function_ids
    for alarm in alarms:
        assert alarm["MetricName"] == "Errors" and alarm["Statistic"] == "Sum"
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_ledger_table_schema_and_protection(template: dict[str, Any]) -> None:
    _, table = cfn.one(template, "AWS::DynamoDB::Table")
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
        "pk": "S",
        "sk": "S",
    }
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert "GlobalSecondaryIndexes" not in props and "LocalSecondaryIndexes" not in props


def test_ledger_grants_are_the_item_calls_only(template: dict[str, Any]) -> None:
    table_id = cfn.one(template, "AWS::DynamoDB::Table")[0]
    table_arn = {"Fn::GetAtt": [table_id, "Arn"]}
    granted = [
        s
        for policy in cfn.resources(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if table_arn in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert len(granted) == 3  # one per detector
    for statement in granted:
        assert sorted(statement["Action"]) == sorted(LEDGER_ACTIONS)


def test_topic_is_kms_encrypted_and_tls_only(template: dict[str, Any]) -> None:
    topic_id, topic = cfn.one(template, "AWS::SNS::Topic")
    key_id, key = cfn.one(template, "AWS::KMS::Key")
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    services = {
        s["Principal"].get("Service")
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if isinstance(s["Principal"], dict)
    }
    assert "cloudwatch.amazonaws.com" in services  # alarms can publish to the encrypted topic
    _, policy = cfn.one(template, "AWS::SNS::TopicPolicy")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in statements


def test_dashboard_is_created(template: dict[str, Any]) -> None:
    _, dashboard = cfn.one(template, "AWS::CloudWatch::Dashboard")
    assert "DashboardBody" in dashboard["Properties"]


# --- the add-on stack, from context ---------------------------------------------------------


def test_addon_context_sets_services_alb_emails_and_thresholds(
    synthesized_custom: Synth,
) -> None:
    template = synthesized_custom.addon
    alarms = _alarms(template)
    assert len(alarms) == 6
    assert {_dims(a)[contract.DIMENSION_SERVICE] for a in alarms} == {"mcp-a", "mcp-b"}
    deployment = [a for a in alarms if _dims(a).get(contract.DIMENSION_CAUSE) == "deployment"]
    assert {a["Threshold"] for a in deployment} == {3}
    emails = [s["Properties"] for s in cfn.resources(template, "AWS::SNS::Subscription").values()]
    assert sorted(e["Endpoint"] for e in emails) == ["oncall@example.com", "sre@example.com"]
    assert {e["Protocol"] for e in emails} == {"email"}
    for function in _functions(template).values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["SERVICE_NAMES"] == "mcp-a,mcp-b"
        assert env["LOAD_BALANCER_FULL_NAME"] == ADDON_CONTEXT["sessionwatch:loadBalancerFullName"]
        assert env["TARGET_GROUP_FULL_NAME"] == ADDON_CONTEXT["sessionwatch:targetGroupFullName"]
        assert env["GRACE_PERIOD_SECONDS"] == "180"
        assert env["DEREGISTRATION_DELAY_SECONDS"] == "60"
        assert env["STOP_TIMEOUT_SECONDS"] == "90"
        assert env["SERVER_SERVICE_NAME"] == "mcp-prod"
        assert cfn.resolve(env["CLUSTER_NAME"]).endswith(":cluster/prod-mcp")
    _, subscription = cfn.one(template, "AWS::Logs::SubscriptionFilter")
    assert subscription["Properties"]["LogGroupName"] == "/ecs/prod-mcp"
    # Each service's deployment alarm is an output, to name in that service's ECS deployment alarms.
    deployment_ids = {
        k
        for k, a in cfn.resources(template, "AWS::CloudWatch::Alarm").items()
        if {"Name": contract.DIMENSION_CAUSE, "Value": "deployment"}
        in a["Properties"]["Dimensions"]
    }
    outputs = [o["Value"] for k, o in template["Outputs"].items() if "DeploymentAlarmName" in k]
    assert {o["Ref"] for o in outputs} == deployment_ids and len(deployment_ids) == 2


def test_addon_without_context_says_what_is_missing(tmp_path: Path) -> None:
    from sessionwatch.infra.app import build_app

    with pytest.raises(ValueError, match="sessionwatch:clusterName"):
        build_app(outdir=str(tmp_path), context={})


# --- the demo stack --------------------------------------------------------------------------


def _container(task_def: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = [c for c in task_def["Properties"]["ContainerDefinitions"] if c["Name"] == name]
    return container


def _attributes(resource: dict[str, Any]) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in resource["Properties"]["TargetGroupAttributes"]}


def test_demo_target_group_is_sticky_for_a_day_with_the_configured_delay(
    synthesized: Synth,
) -> None:
    _, target_group = cfn.one(synthesized.demo, "AWS::ElasticLoadBalancingV2::TargetGroup")
    attributes = _attributes(target_group)
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert attributes["stickiness.lb_cookie.duration_seconds"] == "86400"
    assert attributes["deregistration_delay.timeout_seconds"] == "300"
    assert target_group["Properties"]["TargetType"] == "ip"


def test_demo_vpc_spans_two_azs(synthesized: Synth) -> None:
    subnets = cfn.resources(synthesized.demo, "AWS::EC2::Subnet").values()
    azs = {json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets}
    assert len(azs) == 2
    _, alb = cfn.one(synthesized.demo, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert alb["Properties"]["Scheme"] == "internet-facing"
    assert len(alb["Properties"]["Subnets"]) == 2


def test_demo_service_rolls_with_circuit_breaker_and_deployment_alarm(
    synthesized: Synth,
) -> None:
    template = synthesized.demo
    _, service = cfn.one(template, "AWS::ECS::Service")
    props = service["Properties"]
    assert props["DesiredCount"] == 2
    assert props["LaunchType"] == "FARGATE"
    assert props["ServiceName"] == "mcp-service"
    config = props["DeploymentConfiguration"]
    assert config["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert config["MinimumHealthyPercent"] == 100 and config["MaximumPercent"] == 200
    assert props["DeploymentController"] == {"Type": "ECS"}
    deployment_alarm_ids = [
        k
        for k, a in cfn.resources(template, "AWS::CloudWatch::Alarm").items()
        if {"Name": contract.DIMENSION_CAUSE, "Value": "deployment"}
        in a["Properties"]["Dimensions"]
    ]
    assert config["Alarms"]["AlarmNames"] == [{"Ref": deployment_alarm_ids[0]}]
    assert config["Alarms"]["Enable"] is True
    assert config["Alarms"]["Rollback"] is False  # FAIL_ON_ALARM: marked failed, not rolled back
    (listener_tg,) = props["LoadBalancers"]
    assert listener_tg["ContainerName"] == "mcp-server"
    assert listener_tg["ContainerPort"] == 8000


def test_demo_task_runs_server_from_asset_with_adot_sidecar(synthesized: Synth) -> None:
    template = synthesized.demo
    _, task_def = cfn.one(template, "AWS::ECS::TaskDefinition")
    assert task_def["Properties"]["RequiresCompatibilities"] == ["FARGATE"]
    server = _container(task_def, "mcp-server")
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
    image = json.dumps(server["Image"])
    assert "cdk-hnb659fds-container-assets" in image
    assets = json.loads((synthesized.outdir / "DemoServiceStack.assets.json").read_text())
    (docker_asset,) = assets["dockerImages"].values()
    assert docker_asset["source"]["dockerFile"] == "server/Dockerfile"

    collector = _container(task_def, "aws-otel-collector")
    assert collector["Image"] == adot.COLLECTOR_IMAGE
    assert collector["Essential"] is False
    collector_env = {e["Name"]: e["Value"] for e in collector["Environment"]}
    config = json.loads(cfn.resolve(collector_env[adot.CONFIG_ENV_VAR]))
    emf = config["exporters"]["awsemf"]
    assert emf["namespace"] == adot.SERVER_METRICS_NAMESPACE
    assert [tuple(d) for d in emf["metric_declarations"][0]["dimensions"]] == list(
        adot.DIMENSION_SETS
    )
    assert {"ContainerName": "aws-otel-collector", "Condition": "START"} in server["DependsOn"]


def test_demo_collector_may_write_only_its_metrics_log_group(synthesized: Synth) -> None:
    template = synthesized.demo
    _, task_def = cfn.one(template, "AWS::ECS::TaskDefinition")
    collector = _container(task_def, "aws-otel-collector")
    env = {e["Name"]: e["Value"] for e in collector["Environment"]}
    log_group_ref = json.dumps(env[adot.CONFIG_ENV_VAR])
    task_role = task_def["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = [
        s
        for p in cfn.resources(template, "AWS::IAM::Policy").values()
        if {"Ref": task_role} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    (statement,) = statements
    log_group_id = statement["Resource"]["Fn::GetAtt"][0]
    assert log_group_id in log_group_ref
    assert "logs:PutLogEvents" in statement["Action"]


def test_demo_sessionwatch_quotes_the_demo_settings(synthesized: Synth) -> None:
    for function in _functions(synthesized.demo).values():
        env = function["Properties"]["Environment"]["Variables"]
        assert env["DEREGISTRATION_DELAY_SECONDS"] == "300"
        assert env["STOP_TIMEOUT_SECONDS"] == "30"
        assert "LoadBalancerFullName" in json.dumps(env["LOAD_BALANCER_FULL_NAME"])
        assert "TargetGroupFullName" in json.dumps(env["TARGET_GROUP_FULL_NAME"])


def test_demo_health_check_is_a_route_the_server_answers(synthesized: Synth) -> None:
    """The ALB health check must hit a path the real server serves with 200, or no task is
    ever healthy and every deployment rolls back."""
    from starlette.testclient import TestClient

    from sessionwatch.infra.demo import HEALTH_CHECK_PATH, HEALTHY_HTTP_CODES
    from sessionwatch.server.app import build_app, build_mcp_server
    from sessionwatch.server.identity import TaskIdentity

    _, target_group = cfn.one(synthesized.demo, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert target_group["Properties"]["HealthCheckPath"] == HEALTH_CHECK_PATH
    assert target_group["Properties"]["Matcher"] == {"HttpCode": HEALTHY_HTTP_CODES}
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
    main()
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
