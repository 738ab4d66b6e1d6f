"""`sessionwatch audit` against moto (ECS, ELBv2, CloudWatch, IAM): each rule fires when its
configuration is present and stays quiet when it is not; AWS failures become clear errors."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto.core import set_initial_no_auth_action_count

from sessionwatch.ops.audit import AuditError, audit
from sessionwatch.ops.cli import main
from tests.ops.conftest import CLUSTER, REGION, SERVICE, ServiceSpec, build_service


def rules_of(session: boto3.Session) -> set[str]:
    return {f.rule for f in audit(session, CLUSTER, SERVICE).findings}


def test_clean_service_has_no_findings_and_its_window(session: boto3.Session) -> None:
    build_service(ServiceSpec())
    report = audit(session, CLUSTER, SERVICE)
    assert report.findings == []
    w = report.window
    assert (w.deregistration_delay_s, w.stop_timeout_s, w.server_drain_s) == (60, 90, 45.0)
    # the ALB stops routing to a draining target: no survival after it, whatever the delay
    assert w.session_cliff_s == 0 and w.task_gone_by_s == 150 and w.in_flight_s == 60
    # 100/200 with two tasks: both old tasks drain at the same moment.
    assert (w.tasks_per_wave, w.waves) == (2, 1)
    assert report.exit_code(None) == 0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ServiceSpec(stickiness=False), {"stickiness-off"}),
        (ServiceSpec(deregistration_delay=300), {"default-deregistration-delay"}),
        # A 10 min sticky cookie under the 30 min default session idle timeout.
        (ServiceSpec(stickiness_duration=600), {"stickiness-shorter-than-session"}),
        # No stopTimeout: the 30 s default kills a 45 s drain.
        (ServiceSpec(stop_timeout=None), {"stop-timeout-below-drain"}),
        (ServiceSpec(stop_timeout=40), {"stop-timeout-below-drain"}),
        (ServiceSpec(desired_count=1), {"single-task"}),
        (ServiceSpec(circuit_breaker=False), {"circuit-breaker-off"}),
        (
            ServiceSpec(deployment_alarms=[]),
            {"no-deployment-alarm"},
        ),
        (
            ServiceSpec(sessionwatch_alarm=False, deployment_alarms=["alb-5xx"]),
            {"no-sessionwatch-alarm", "deployment-alarm-ignores-session-loss"},
        ),
        (ServiceSpec(alarm_actions=False), {"sessionwatch-alarm-silent"}),
        (
            ServiceSpec(deployment_alarms=["sessionwatch-lost-deployment", "deleted-alarm"]),
            {"deployment-alarm-missing"},
        ),
        (ServiceSpec(deployment_alarms=["alb-5xx"]), {"deployment-alarm-ignores-session-loss"}),
        (ServiceSpec(with_target_group=False), {"no-target-group"}),
        # ECS native blue/green whose production rule pins clients by AWSALBTG for 1 h
        (ServiceSpec(group_stickiness=3600), {"group-stickiness-lockout"}),
        # the same for 30 s under a 10 min bake: still a (medium) lock-out; off: none
        (ServiceSpec(group_stickiness=30), {"group-stickiness-lockout"}),
        (ServiceSpec(group_stickiness=0), set()),
        # A service never given a deploymentConfiguration has AWS's defaults: no breaker, no alarm.
        (
            ServiceSpec(deployment_configuration=False),
            {"circuit-breaker-off", "no-deployment-alarm"},
        ),
    ],
    ids=lambda v: "-".join(sorted(v)) if isinstance(v, set) else None,
)
def test_rule_fires_exactly_on_its_configuration(
    session: boto3.Session, spec: ServiceSpec, expected: set[str]
) -> None:
    build_service(spec)
    assert rules_of(session) == expected


def test_blue_green_lockout_severity_follows_the_bake_time(session: boto3.Session) -> None:
    build_service(ServiceSpec(group_stickiness=3600, bake_minutes=10))
    (finding,) = audit(session, CLUSTER, SERVICE).findings
    assert (finding.rule, str(finding.severity)) == ("group-stickiness-lockout", "high")
    assert "TargetGroupStickinessConfig 3600 s, bake time 600 s" in finding.evidence


def test_short_group_stickiness_is_a_medium_lockout(session: boto3.Session) -> None:
    build_service(ServiceSpec(group_stickiness=30, bake_minutes=10))
    (finding,) = audit(session, CLUSTER, SERVICE).findings
    assert str(finding.severity) == "medium" and "for up to 30 s" in finding.evidence


def test_drain_shorter_than_stop_timeout_is_not_a_finding(session: boto3.Session) -> None:
    build_service(ServiceSpec(stop_timeout=None, drain_seconds="20"))
    assert "stop-timeout-below-drain" not in rules_of(session)


def test_stickiness_off_window_has_no_cliff(session: boto3.Session) -> None:
    build_service(ServiceSpec(stickiness=False))
    assert audit(session, CLUSTER, SERVICE).window.session_cliff_s == 0


def test_cli_json_and_exit_status_gate_on_severity(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    build_service(ServiceSpec(stickiness=False, circuit_breaker=False))
    base = ["audit", "--cluster", CLUSTER, "--service", SERVICE, "--region", REGION]
    assert main([*base, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["risk"] == "high"
    assert [f["rule"] for f in doc["findings"]] == ["stickiness-off", "circuit-breaker-off"]
    assert doc["findings"][0]["fix"].startswith("aws elbv2 modify-target-group-attributes")
    assert main([*base, "--fail-on", "never"]) == 0
    table = capsys.readouterr().out
    assert "sessions die" in table and "HIGH     stickiness-off" in table


def test_cli_medium_only_passes_default_gate_and_fails_medium_gate(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    build_service(ServiceSpec(circuit_breaker=False))
    base = ["audit", "--cluster", CLUSTER, "--service", SERVICE, "--region", REGION]
    assert main(base) == 0
    assert main([*base, "--fail-on", "medium"]) == 1


def test_missing_service_is_a_clear_error(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    build_service(ServiceSpec())
    code = main(["audit", "--cluster", CLUSTER, "--service", "nope", "--region", REGION])
    assert code == 2
    err = capsys.readouterr().err
    assert "service not found: service nope in cluster prod" in err and "MISSING" in err


def test_missing_cluster_is_a_clear_error(session: boto3.Session) -> None:
    with pytest.raises(AuditError) as caught:
        audit(session, "no-such-cluster", SERVICE)
    assert caught.value.kind == "missing_cluster"
    assert "no-such-cluster" in str(caught.value)


def test_no_credentials_is_a_clear_error(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code = main(["audit", "--cluster", CLUSTER, "--service", SERVICE, "--region", REGION, "--json"])
    assert code == 2
    assert json.loads(capsys.readouterr().out)["error"] == "no_credentials"


def test_no_region_is_a_clear_error(
    aws: None, monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/none")
    assert main(["audit", "--cluster", CLUSTER, "--service", SERVICE, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == "no_region"


@pytest.mark.parametrize(
    ("allowed", "denied"),
    [
        (["ecs:DescribeServices"], "ecs:DescribeTaskDefinition"),
        (
            ["ecs:DescribeServices", "ecs:DescribeTaskDefinition"],
            "elasticloadbalancing:DescribeTargetGroupAttributes",
        ),
        (
            [
                "ecs:DescribeServices",
                "ecs:DescribeTaskDefinition",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
            ],
            "cloudwatch:DescribeAlarms",
        ),
    ],
)
def test_access_denied_names_the_missing_permission(
    aws: None, allowed: list[str], denied: str
) -> None:
    build_service(ServiceSpec())

    # moto's IAM enforcement: the four setup calls are free, the audit's calls are checked.
    def audit_as_restricted_user() -> AuditError:
        iam = boto3.client("iam", region_name=REGION)
        iam.create_user(UserName="auditor")
        policy = iam.create_policy(
            PolicyName="audit",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}],
                }
            ),
        )["Policy"]["Arn"]
        iam.attach_user_policy(UserName="auditor", PolicyArn=policy)
        key = iam.create_access_key(UserName="auditor")["AccessKey"]
        restricted = boto3.Session(
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
            region_name=REGION,
        )
        with pytest.raises(AuditError) as caught:
            audit(restricted, CLUSTER, SERVICE)
        return caught.value

    error = set_initial_no_auth_action_count(4)(audit_as_restricted_user)()
    assert error.kind == "access_denied"
    message = str(error)
    assert message.startswith(f"access denied: {denied}")
    assert "<" not in message  # the emulator's XML error document is reduced to its text


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("AccessDeniedException", 400, "access_denied"),  # ECS, CloudWatch (JSON protocols)
        ("AccessDenied", 403, "access_denied"),  # ELBv2 (query protocol)
        ("ExpiredTokenException", 400, "no_credentials"),
        ("UnrecognizedClientException", 400, "no_credentials"),
        ("ClusterNotFoundException", 400, "missing_cluster"),
        ("ThrottlingException", 400, "aws_error"),
    ],
)
def test_real_aws_error_shapes_map_to_clear_kinds(code: str, status: int, kind: str) -> None:
    # The shapes real AWS returns, which moto does not all produce (its IAM denials on JSON
    # protocols arrive as an XML document with code "403").
    from botocore.exceptions import ClientError

    from sessionwatch.ops.audit import _explain

    response: Any = {
        "Error": {
            "Code": code,
            "Message": "User: arn:aws:sts::1:assumed-role/ci is not authorized",
        },
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    with pytest.raises(AuditError) as caught, _explain("ecs:DescribeServices", "service s"):
        raise ClientError(response, "DescribeServices")
    assert caught.value.kind == kind
    assert code in str(caught.value) or kind == "missing_cluster"
