"""``sessionwatch audit``: the boto3 edge that reads a service's configuration and reports risks.

Reads only (Describe* calls), so it is safe to run against production from a pipeline. Every AWS
failure becomes an :class:`AuditError` with a sentence an operator can act on: which service was
missing, which IAM permission was denied, that no credentials were found.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

import boto3

from sessionwatch.ops.aws_errors import explain

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

from sessionwatch.ops.audit_clients import (
    DEFAULT_LOOKBACK_S,
    StatelessReadiness,
    fetch_rows,
    summarize,
)
from sessionwatch.ops.audit_model import (
    AlarmConfig,
    ServiceConfig,
    alarm_from_response,
    group_stickiness_from_rules,
    missing_alarm,
    production_listener_rule,
    service_config_from,
    target_group_from_attributes,
)
from sessionwatch.ops.audit_rules import (
    Finding,
    Severity,
    SurvivalWindow,
    findings,
    survival_window,
    worst,
)

EXIT_OK = 0
EXIT_RISK = 1
EXIT_ERROR = 2


class AuditError(Exception):
    """The audit could not run. ``kind`` is stable for scripts; the message is for people."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _explain(action: str, subject: str) -> AbstractContextManager[None]:
    """Turn botocore failures of one IAM ``action`` on ``subject`` into an AuditError."""
    return explain(action, subject, AuditError)


def _all_metric_alarms(cloudwatch: CloudWatchClient) -> list[Mapping[str, Any]]:
    alarms: list[Mapping[str, Any]] = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        alarms.extend(page.get("MetricAlarms", []))
    return alarms


def fetch_config(session: boto3.Session, cluster: str, service: str) -> ServiceConfig:
    """Read the service, its task definition, target groups and alarms (Describe* only)."""
    if session.region_name is None:
        raise AuditError("no_region", "no AWS region: pass --region or set AWS_REGION")
    ecs = session.client("ecs")
    where = f"service {service} in cluster {cluster}"
    with _explain("ecs:DescribeServices", where):
        described = ecs.describe_services(cluster=cluster, services=[service])
    active = [s for s in described.get("services", []) if s.get("status") != "INACTIVE"]
    if not active:
        reasons = ", ".join(f.get("reason", "?") for f in described.get("failures", []))
        raise AuditError(
            "missing_service",
            f"service not found: {where} (region {session.region_name}"
            + (f", {reasons}" if reasons else ", INACTIVE")
            + ")",
        )
    svc: Mapping[str, Any] = active[0]
    with _explain("ecs:DescribeTaskDefinition", svc["taskDefinition"]):
        task_def = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])
    elbv2 = session.client("elbv2")
    target_groups = []
    for arn in dict.fromkeys(
        lb["targetGroupArn"] for lb in svc.get("loadBalancers", []) if lb.get("targetGroupArn")
    ):
        with _explain("elasticloadbalancing:DescribeTargetGroupAttributes", arn):
            attrs = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
        target_groups.append(target_group_from_attributes(arn, attrs))
    group_stickiness = None
    rule = production_listener_rule(svc)
    if rule:
        with _explain("elasticloadbalancing:DescribeRules", rule):
            rules = elbv2.describe_rules(RuleArns=[rule])["Rules"]
        group_stickiness = group_stickiness_from_rules(rules)
    with _explain("cloudwatch:DescribeAlarms", f"region {session.region_name}"):
        raw_alarms = _all_metric_alarms(session.client("cloudwatch"))
    alarms: list[AlarmConfig] = [alarm_from_response(a) for a in raw_alarms]
    known = {a.name for a in alarms}
    deploy_names = ((svc.get("deploymentConfiguration") or {}).get("alarms") or {}).get(
        "alarmNames"
    ) or []
    alarms.extend(missing_alarm(n) for n in deploy_names if n not in known)
    return service_config_from(
        svc, task_def["taskDefinition"], target_groups, alarms, group_stickiness
    )


@dataclass(frozen=True)
class AuditReport:
    """The result the CLI renders and the exit code is decided from."""

    config: ServiceConfig
    region: str | None
    window: SurvivalWindow
    findings: list[Finding]
    stateless: StatelessReadiness | None = None  # who going stateless would affect

    def exit_code(self, fail_on: Severity | None) -> int:
        """``fail_on`` None never fails; otherwise fail on any finding at or above it."""
        top = worst(self.findings)
        return EXIT_RISK if fail_on is not None and top is not None and top >= fail_on else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        top = worst(self.findings)
        return {
            "cluster": self.config.cluster,
            "service": self.config.service,
            "region": self.region,
            "window": self.window.to_dict(),
            "risk": str(top) if top is not None else "none",
            "findings": [f.to_dict() for f in self.findings],
            "stateless": self.stateless.to_dict() if self.stateless else None,
        }


def stateless_readiness(
    session: boto3.Session, server_service: str, lookback_s: int = DEFAULT_LOOKBACK_S
) -> StatelessReadiness:
    """The clients still holding sessions, from the server's metrics; a read failure becomes
    the section's ``error`` (the audit's other findings stand without it)."""
    try:
        with _explain("cloudwatch:ListMetrics and cloudwatch:GetMetricStatistics", server_service):
            rows = fetch_rows(
                session.client("cloudwatch"), server_service, datetime.now(UTC), lookback_s
            )
    except AuditError as exc:
        return StatelessReadiness(server_service, lookback_s, error=str(exc))
    return StatelessReadiness(server_service, lookback_s, summarize(rows))


def audit(
    session: boto3.Session, cluster: str, service: str, server_service: str | None = None
) -> AuditReport:
    """Fetch and evaluate; raises :class:`AuditError` when the service cannot be read.

    ``server_service``: the MCP server's OpenTelemetry ``service.name`` (``SESSIONWATCH_SERVICE``)
    whose metrics say which clients still hold sessions; ``None`` skips that section.
    """
    cfg = fetch_config(session, cluster, service)
    stateless = None if server_service is None else stateless_readiness(session, server_service)
    return AuditReport(cfg, session.region_name, survival_window(cfg), findings(cfg), stateless)


def _seconds(value: float | None, unknown: str = "unknown") -> str:
    return unknown if value is None else f"{value:g} s"


def render_text(report: AuditReport, out: TextIO) -> None:
    """The human table: the window first (what will happen), then the findings (what to fix)."""
    cfg, w = report.config, report.window
    rows = [
        ("tasks", f"{w.desired_count} ({w.tasks_per_wave} drained at once, {w.waves} wave(s))"),
        ("deregistration delay", _seconds(w.deregistration_delay_s, "no target group")),
        (
            "stickiness",
            ", ".join(
                f"{tg.name}: {tg.stickiness_type}, {_seconds(tg.stickiness_duration_s)}"
                if tg.stickiness_enabled
                else f"{tg.name}: OFF"
                for tg in cfg.target_groups
            )
            or "no target group",
        ),
        ("stop timeout", _seconds(w.stop_timeout_s)),
        ("server drain", _seconds(w.server_drain_s, "not set in the task definition")),
        (
            "sessions die",
            f"at their first request after their task starts draining ({w.session_cliff_s:g} "
            "s survival: the ALB stops sending requests to deregistering targets)",
        ),
        (
            "wave order",
            "replacements start first, then the wave drains"
            if w.replacements_first
            else "old tasks stop first: a wave's sessions go before any replacement is up",
        ),
        ("in-flight requests", _seconds(w.in_flight_s, "no target group") + " to finish"),
        ("old task killed by", _seconds(w.task_gone_by_s) + " (delay + stop timeout)"),
    ]
    out.write(
        f"SessionWatch audit: service {cfg.service}, cluster {cfg.cluster}, "
        f"region {report.region}\n\nSession survival window of a rolling deployment\n"
    )
    for label, value in rows:
        out.write(f"  {label:<22}{value}\n")
    out.write("\n")
    if report.stateless is not None:
        out.write("\n".join(report.stateless.lines()) + "\n\n")
    if not report.findings:
        out.write("No findings.\n")
        return
    out.write(f"{'SEVERITY':<9}{'RULE':<38}EVIDENCE / FIX\n")
    for f in report.findings:
        out.write(f"{str(f.severity).upper():<9}{f.rule:<38}{f.evidence}\n")
        out.write(f"{'':<47}fix: {f.fix}\n")
    top = worst(report.findings)
    out.write(f"\nrisk: {top}  ({len(report.findings)} finding(s))\n")


def render_json(report: AuditReport, out: TextIO) -> None:
    json.dump(report.to_dict(), out, indent=2)
    out.write("\n")
