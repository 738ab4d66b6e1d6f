"""What the demo exposes: internal ALB by default; allow-listed CIDRs; HTTPS with a certificate."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from sessionwatch.infra.demo import VPC_CIDR, client_cidrs
from tests.infra.conftest import CERTIFICATE_ARN, Synth, logical_id

LB = "AWS::ElasticLoadBalancingV2::LoadBalancer"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"


def _alb_ingress(template: Template, alb_sg: str) -> list[dict[str, object]]:
    """Every ingress rule of the ALB's security group (inline or separate resources)."""
    (group,) = [
        g for k, g in template.find_resources("AWS::EC2::SecurityGroup").items() if k == alb_sg
    ]
    rules = list(group["Properties"].get("SecurityGroupIngress", []))
    rules += [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("GroupId") == {"Fn::GetAtt": [alb_sg, "GroupId"]}
    ]
    return rules


def _alb_sg(synthesized: Synth) -> str:
    (group,) = synthesized.demo_stack.alb.connections.security_groups
    return logical_id(group)


def test_by_default_the_alb_is_internal_on_http_from_the_vpc_only(synthesized: Synth) -> None:
    template = synthesized.demo_template
    template.has_resource_properties(LB, {"Scheme": "internal"})
    template.resource_count_is(LISTENER, 1)
    template.has_resource_properties(LISTENER, {"Port": 80, "Protocol": "HTTP"})
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": VPC_CIDR})
    rules = _alb_ingress(template, _alb_sg(synthesized))
    assert [(r["CidrIp"], r["FromPort"], r["ToPort"]) for r in rules] == [(VPC_CIDR, 80, 80)]
    assert "0.0.0.0/0" not in json.dumps(rules)
    endpoint = next(o for k, o in template.find_outputs("*").items() if k.startswith("McpEndpoint"))
    assert "internal" in endpoint["Description"]


def test_allowed_cidrs_and_a_certificate_give_public_https_to_them_only(
    synthesized_custom: Synth,
) -> None:
    template = synthesized_custom.demo_template
    template.has_resource_properties(LB, {"Scheme": "internet-facing"})
    template.resource_count_is(LISTENER, 1)  # no plain-HTTP listener beside it
    template.has_resource_properties(
        LISTENER,
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": CERTIFICATE_ARN}],
            "SslPolicy": Match.string_like_regexp("^ELBSecurityPolicy-TLS13"),
        },
    )
    rules = _alb_ingress(template, _alb_sg(synthesized_custom))
    assert sorted((r["CidrIp"], r["FromPort"], r["ToPort"]) for r in rules) == [
        ("198.51.100.7/32", 443, 443),
        ("203.0.113.0/24", 443, 443),
    ]
    endpoint = next(o for k, o in template.find_outputs("*").items() if k.startswith("McpEndpoint"))
    assert json.dumps(endpoint["Value"]).startswith('{"Fn::Join": ["", ["https://')


def test_the_whole_internet_and_non_cidrs_are_refused() -> None:
    assert client_cidrs([" 203.0.113.9/24 ", "203.0.113.0/24"]) == ("203.0.113.0/24",)
    for bad in ("0.0.0.0/0", "::/0", "2001:db8::/32", "example.com", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="allowedClientCidrs"):
            client_cidrs([bad])
