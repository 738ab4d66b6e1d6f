"""IAM in every synthesized template: no wildcard actions, every scopable permission scoped."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk.assertions import Match, Template

from sessionwatch.infra.construct import ECS_DEPLOYMENT_ACTIONS
from tests.infra.conftest import REGION, Synth

# Actions that support no resource-level permissions: "*" is the only resource AWS accepts.
UNSCOPABLE_ACTIONS = {"cloudwatch:GetMetricData", "ecr:GetAuthorizationToken"}
IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
RESOURCE_POLICY_TYPES = ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(logical id, resource type, statement) for identity and resource policies alike."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] in (*IDENTITY_POLICY_TYPES, *RESOURCE_POLICY_TYPES):
            documents.append(props["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] == "AWS::KMS::Key":
            documents.append(props["KeyPolicy"])
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, resource["Type"], statement


@pytest.fixture(params=["addon", "demo", "addon-custom"])
def template(
    request: pytest.FixtureRequest, synthesized: Synth, synthesized_custom: Synth
) -> dict[str, Any]:
    if request.param == "addon-custom":
        return synthesized_custom.addon
    return getattr(synthesized, request.param)


def test_policies_exist_to_check(template: dict[str, Any]) -> None:
    assert sum(1 for _ in _statements(template)) >= 10


def test_no_wildcard_action_is_allowed_anywhere(template: dict[str, Any]) -> None:
    """A wildcard may only deny (the queues' TLS-only statement denies `sqs:*` without TLS)."""
    for logical_id, _, statement in _statements(template):
        assert "NotAction" not in statement, logical_id
        if statement["Effect"] == "Deny":
            assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            continue
        for action in _as_list(statement.get("Action", [])):
            assert "*" not in action, f"{logical_id}: {action}"
    Template.from_json(template).all_resources_properties(
        "AWS::Lambda::Permission", {"Action": "lambda:InvokeFunction"}
    )


def test_every_scopable_permission_is_scoped_to_its_resource(template: dict[str, Any]) -> None:
    for logical_id, type_, statement in _statements(template):
        if type_ not in IDENTITY_POLICY_TYPES and type_ != "AWS::IAM::Role":
            continue
        assert statement["Effect"] == "Allow"
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                assert set(_as_list(statement["Action"])) <= UNSCOPABLE_ACTIONS, logical_id
            elif set(_as_list(statement["Action"])) <= set(ECS_DEPLOYMENT_ACTIONS):
                # A service's deployments get ids only when ECS creates them: the one wildcard
                # allowed is the id, under one named service.
                parts = resource["Fn::Join"][1]
                joined = "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
                assert re.fullmatch(r"arn:.*:service-deployment/[^*/]+/[^*/]+/\*", joined), joined
            else:
                # A reference to a resource of this template or a built ARN, never a wildcard.
                assert "*" not in json.dumps(resource), f"{logical_id}: {resource}"


def test_no_managed_policies_on_roles(template: dict[str, Any]) -> None:
    Template.from_json(template).all_resources_properties(
        "AWS::IAM::Role", {"ManagedPolicyArns": Match.absent()}
    )


def test_resource_policies_name_their_principals(template: dict[str, Any]) -> None:
    """The topic's, queues' and key's allow statements go to named principals, never to anyone."""
    checked = 0
    for logical_id, type_, statement in _statements(template):
        if type_ in (*RESOURCE_POLICY_TYPES, "AWS::KMS::Key") and statement["Effect"] == "Allow":
            checked += 1
            assert statement["Principal"] != "*", logical_id
            if "Service" in statement["Principal"]:
                # A service may act only on behalf of this account or one named resource of it
                # (confused deputy).
                condition = json.dumps(statement["Condition"])
                assert "aws:SourceAccount" in condition or "aws:SourceArn" in condition, logical_id
    assert checked >= 4


def test_lambda_invocations_are_scoped_to_their_source(template: dict[str, Any]) -> None:
    Template.from_json(template).all_resources_properties(
        "AWS::Lambda::Permission", {"SourceArn": Match.any_value()}
    )


def test_detectors_call_only_granted_aws_operations(synthesized: Synth) -> None:
    """Every DynamoDB, SNS and CloudWatch operation the detector code calls is granted to the
    detectors' roles: a new call without a grant would be AccessDenied only in production."""
    session = boto3.session.Session(region_name=REGION)
    operations = {
        method: f"{service}:{api}"
        for service in ("dynamodb", "sns", "cloudwatch", "ecs", "sqs")
        for method, api in session.client(service).meta.method_to_api_mapping.items()
    }
    detectors = Path(__file__).resolve().parents[2] / "detectors"
    called = {
        operations[name]
        for path in detectors.rglob("*.py")
        for name in re.findall(r"\.([a-z_]+)\(", path.read_text())
        if name in operations
    }
    assert {"dynamodb:UpdateItem", "dynamodb:Query", "sns:Publish"} <= called
    granted = {
        action
        for logical_id, type_, statement in _statements(synthesized.addon)
        if type_ == "AWS::IAM::Policy" and "SessionWatch" in logical_id
        for action in _as_list(statement["Action"])
    }
    # Granted only with stop_on_loss on (tests/infra/test_infra_guards.py checks that grant).
    guard_only = {"ecs:StopServiceDeployment"}
    assert called - guard_only <= granted
