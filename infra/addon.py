"""`SessionWatchStack`: SessionWatch for an MCP service you already run, named by CDK context.

Deploy with e.g. `npx aws-cdk@2 deploy SessionWatchStack -c sessionwatch:clusterName=prod
-c sessionwatch:serviceNames=mcp-a,mcp-b -c sessionwatch:logGroupName=/ecs/mcp`. Every key has a
default in cdk.json so synth works offline; see infra/README.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_chatbot as chatbot
from aws_cdk import aws_logs as logs
from constructs import Construct, Node

from sessionwatch.infra.alarms import Thresholds
from sessionwatch.infra.construct import SessionWatch, SessionWatchProps
from sessionwatch.infra.guards import DrainGateOptions

CONTEXT_PREFIX = "sessionwatch:"


def split_list(value: Any) -> tuple[str, ...]:
    """A comma-separated context value as its non-empty, stripped parts."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def context_flag(value: Any) -> bool:
    """A context flag: `true`/`1`/`yes` (any case) or JSON true."""
    return value is True or str(value).strip().lower() in ("true", "1", "yes")


@dataclass(frozen=True)
class AddonSettings:
    """The add-on's inputs, as plain values (context strings parsed once, here)."""

    cluster_name: str
    service_names: tuple[str, ...]
    log_group_name: str
    server_service_name: str | None = None
    load_balancer_full_name: str | None = None
    target_group_full_name: str | None = None
    group_stickiness_seconds: int | None = None
    alarm_emails: tuple[str, ...] = ()
    grace_period_seconds: int = 120
    deployment_loss_threshold: int = 1
    stickiness_loss_threshold: int = 1
    deregistration_delay_seconds: int | None = None
    stop_timeout_seconds: int | None = None
    clock_error_seconds: float | None = None
    high_resolution_alarms: bool = False
    slack_workspace_id: str | None = None
    slack_channel_id: str | None = None
    drain_gate_max_hold_seconds: int | None = None  # None: no drain gate
    stop_on_loss: int | None = None  # None: off
    first_loss_alert: bool = False

    @classmethod
    def from_context(cls, node: Node) -> AddonSettings:
        def get(key: str) -> Any:
            value = node.try_get_context(CONTEXT_PREFIX + key)
            return None if value == "" else value

        missing = [k for k in ("clusterName", "serviceNames", "logGroupName") if not get(k)]
        if missing:
            raise ValueError(
                "SessionWatchStack needs context " + ", ".join(CONTEXT_PREFIX + k for k in missing)
            )
        return cls(
            cluster_name=str(get("clusterName")),
            service_names=split_list(str(get("serviceNames"))),
            log_group_name=str(get("logGroupName")),
            server_service_name=get("serverServiceName"),
            load_balancer_full_name=get("loadBalancerFullName"),
            target_group_full_name=get("targetGroupFullName"),
            group_stickiness_seconds=_optional_int(get("groupStickinessSeconds")),
            alarm_emails=split_list(get("alarmEmails")),
            grace_period_seconds=int(get("gracePeriodSeconds") or 120),
            deployment_loss_threshold=int(get("deploymentLossThreshold") or 1),
            stickiness_loss_threshold=int(get("stickinessLossThreshold") or 1),
            deregistration_delay_seconds=_optional_int(get("deregistrationDelaySeconds")),
            stop_timeout_seconds=_optional_int(get("stopTimeoutSeconds")),
            clock_error_seconds=_optional_float(get("clockErrorSeconds")),
            high_resolution_alarms=context_flag(get("highResolutionAlarms")),
            slack_workspace_id=get("slackWorkspaceId"),
            slack_channel_id=get("slackChannelId"),
            drain_gate_max_hold_seconds=_optional_int(get("drainGateMaxHoldSeconds")),
            stop_on_loss=_optional_int(get("stopOnLoss")),
            first_loss_alert=context_flag(get("firstLossAlert")),
        )


class SessionWatchStack(Stack):
    """The add-on: SessionWatch attached to an existing cluster, service(s) and log group."""

    def __init__(
        self, scope: Construct, id: str, *, settings: AddonSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.settings = settings
        self.slack_channel: chatbot.SlackChannelConfiguration | None = None
        if settings.slack_workspace_id and settings.slack_channel_id:
            # Notifications only: its role has no permissions, so nothing can be run from chat.
            self.slack_channel = chatbot.SlackChannelConfiguration(
                self,
                "SlackChannel",
                slack_channel_configuration_name=f"{self.stack_name}-sessionwatch",
                slack_workspace_id=settings.slack_workspace_id,
                slack_channel_id=settings.slack_channel_id,
                logging_level=chatbot.LoggingLevel.ERROR,
            )
        elif settings.slack_workspace_id or settings.slack_channel_id:
            raise ValueError(
                "a Slack channel needs both sessionwatch:slackWorkspaceId and "
                "sessionwatch:slackChannelId"
            )
        self.sessionwatch = SessionWatch(
            self,
            "SessionWatch",
            SessionWatchProps(
                cluster_name=settings.cluster_name,
                service_names=settings.service_names,
                server_log_group=logs.LogGroup.from_log_group_name(
                    self, "ServerLogs", settings.log_group_name
                ),
                server_service_name=settings.server_service_name,
                load_balancer_full_name=settings.load_balancer_full_name,
                target_group_full_name=settings.target_group_full_name,
                group_stickiness=(
                    None
                    if settings.group_stickiness_seconds is None
                    else Duration.seconds(settings.group_stickiness_seconds)
                ),
                alarm_email_subscribers=settings.alarm_emails,
                thresholds=Thresholds(
                    deployment_loss=settings.deployment_loss_threshold,
                    stickiness_loss=settings.stickiness_loss_threshold,
                ),
                grace_period=Duration.seconds(settings.grace_period_seconds),
                deregistration_delay_seconds=settings.deregistration_delay_seconds,
                stop_timeout_seconds=settings.stop_timeout_seconds,
                clock_error_seconds=settings.clock_error_seconds,
                high_resolution_alarms=settings.high_resolution_alarms,
                chat_channels=[self.slack_channel] if self.slack_channel else [],
                drain_gate=(
                    None
                    if settings.drain_gate_max_hold_seconds is None
                    else DrainGateOptions(
                        max_hold=Duration.seconds(settings.drain_gate_max_hold_seconds)
                    )
                ),
                stop_on_loss=settings.stop_on_loss,
                first_loss_alert=settings.first_loss_alert,
            ),
        )
