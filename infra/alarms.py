"""The alarms of docs/architecture.md §6, one set per ECS service, all acting on the topic.

Missing data is "not breaching": the detectors publish SessionsLost only when a session is lost,
so silence means no loss, not a broken pipeline (DetectorBadInput and the dashboard cover that).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from sessionwatch import contract

PERIOD = Duration.minutes(1)
# CloudWatch's high-resolution alarm period; the metric must be stored at 1-second resolution.
HIGH_RESOLUTION_PERIOD = Duration.seconds(10)
DETECTOR_ERRORS_PERIOD = Duration.minutes(5)


@dataclass(frozen=True)
class Thresholds:
    """Alarm thresholds, in lost sessions (or spike flags) per alarm period."""

    deployment_loss: int = 1
    stickiness_loss: int = 1
    loss_spike: int = 1
    # A task's open sessions as a share of its SDK cap (max_sessions): at 1.0 new clients are
    # refused (HTTP 503), so the alarm warns while there is still room.
    session_capacity: float = 0.8


@dataclass(frozen=True)
class ServiceAlarms:
    """The alarms of one service; point ECS deployment alarms at `deployment_loss`."""

    deployment_loss: cloudwatch.Alarm
    stickiness_loss: cloudwatch.Alarm
    loss_spike: cloudwatch.Alarm

    def all(self) -> tuple[cloudwatch.Alarm, ...]:
        return (self.deployment_loss, self.stickiness_loss, self.loss_spike)


def _metric(
    metric_name: str, service: str, statistic: str, period: Duration = PERIOD, **dims: str
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=contract.NAMESPACE,
        metric_name=metric_name,
        dimensions_map={contract.DIMENSION_SERVICE: service, **dims},
        statistic=statistic,
        period=period,
    )


def _alarm(
    scope: Construct,
    id: str,
    *,
    name: str,
    description: str,
    metric: cloudwatch.IMetric,
    threshold: float,
    topic: sns.ITopic,
    comparison: cloudwatch.ComparisonOperator = (
        cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    ),
) -> cloudwatch.Alarm:
    alarm = cloudwatch.Alarm(
        scope,
        id,
        alarm_name=name,
        alarm_description=description,
        metric=metric,
        threshold=threshold,
        comparison_operator=comparison,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(actions.SnsAction(topic))
    alarm.add_ok_action(actions.SnsAction(topic))
    return alarm


def service_alarms(
    scope: Construct,
    *,
    name_prefix: str,
    service: str,
    thresholds: Thresholds,
    topic: sns.ITopic,
    loss_period: Duration = PERIOD,
) -> ServiceAlarms:
    """The three alarms for `service`; names are literal so ECS deployment alarms can use them.

    `loss_period` is the period of the two SessionsLost alarms (10 s with high resolution); the
    spike alarm keeps one minute, the reporter's own cadence.
    """
    cause = contract.DIMENSION_CAUSE
    base = f"{name_prefix}-{service}"
    alarms = ServiceAlarms(
        deployment_loss=_alarm(
            scope,
            "DeploymentLoss",
            name=f"{base}-SessionsLost-deployment",
            description=(
                f"MCP sessions of {service} lost to a rolling deployment: clients got HTTP 404 "
                "'Session not found' because their task was replaced. ALB and ECS stay green."
            ),
            metric=_metric(
                contract.METRIC_SESSIONS_LOST,
                service,
                "Sum",
                loss_period,
                **{cause: contract.Cause.DEPLOYMENT.value},
            ),
            threshold=thresholds.deployment_loss,
            topic=topic,
        ),
        stickiness_loss=_alarm(
            scope,
            "StickinessLoss",
            name=f"{base}-SessionsLost-stickiness",
            description=(
                f"MCP sessions of {service} routed away from their live task: a client did not "
                "keep the rotated AWSALB cookie, or stickiness is off."
            ),
            metric=_metric(
                contract.METRIC_SESSIONS_LOST,
                service,
                "Sum",
                loss_period,
                **{cause: contract.Cause.STICKINESS.value},
            ),
            threshold=thresholds.stickiness_loss,
            topic=topic,
        ),
        loss_spike=_alarm(
            scope,
            "LossSpike",
            name=f"{base}-DeploymentLossSpike",
            description=(
                f"During a deployment of {service}, session-not-found or ALB non-sticky requests "
                "rose above their pre-deployment baseline."
            ),
            metric=_metric(contract.METRIC_DEPLOYMENT_LOSS_SPIKE, service, "Maximum"),
            threshold=thresholds.loss_spike,
            topic=topic,
        ),
    )
    CfnOutput(
        scope,
        "DeploymentAlarmName",
        description=f"Name this alarm in the ECS deployment alarms of {service}",
        value=alarms.deployment_loss.alarm_name,
    )
    return alarms


def session_capacity_alarm(
    scope: Construct,
    id: str,
    *,
    name: str,
    server_service: str,
    threshold: float,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """A task's open sessions near the SDK's cap, from the server's own gauge.

    ``mcp.server.session.utilization`` is each task's open sessions over its ``max_sessions``
    (exported only where the SDK exposes the cap); over the ``service.name`` dimension set the
    ``Maximum`` is the fullest task's share, so one plain metric alarm covers every task without
    metric math. Missing data (no cap known, or no traffic) is not breaching.
    """
    return _alarm(
        scope,
        id,
        name=name,
        description=(
            f"An MCP server task of {server_service} holds {threshold:.0%} or more of its session "
            "cap (max_sessions): at the cap the SDK refuses every new client with HTTP 503 "
            "'Too many open sessions'. Sessions that never expire (session_idle_timeout=None) "
            "only grow; see the session_refused log lines and the dashboard's cap widget."
        ),
        metric=cloudwatch.Metric(
            namespace=contract.SERVER_METRICS_NAMESPACE,
            metric_name=contract.METRIC_SESSION_UTILIZATION,
            dimensions_map={contract.RESOURCE_SERVICE_NAME: server_service},
            statistic="Maximum",
            period=PERIOD,
        ),
        threshold=threshold,
        topic=topic,
    )


def load_balancer_refused_alarm(
    scope: Construct, id: str, *, name: str, load_balancer_full_name: str, topic: sns.ITopic
) -> cloudwatch.Alarm:
    """The ALB answered 503 itself: no target reached, so no server log line exists.

    ALB's own ``HTTPCode_ELB_503_Count`` (dimension ``LoadBalancer``; reported only when
    non-zero, Sum) is the only trace of clients a blue/green clean-up locked out: their
    ``AWSALBTG`` names a target group with no target left, and ALB does not fail over to a group
    with targets. The deployment report says how many and for how long (detectors.lockout).
    """
    return _alarm(
        scope,
        id,
        name=name,
        description=(
            "The load balancer refused requests itself (HTTP 503 from the ALB, no target "
            "reached, no server log line). After an ECS blue/green clean-up: clients whose "
            "AWSALBTG target-group stickiness cookie still names the old target group are "
            "locked out until it expires; see the deployment report. Shorten the listener "
            "rule's target group stickiness duration."
        ),
        metric=cloudwatch.Metric(
            namespace="AWS/ApplicationELB",
            metric_name="HTTPCode_ELB_503_Count",
            dimensions_map={"LoadBalancer": load_balancer_full_name},
            statistic="Sum",
            period=PERIOD,
        ),
        threshold=1,
        topic=topic,
    )


def detector_errors_alarm(
    scope: Construct, id: str, *, name: str, function: lambda_.IFunction, topic: sns.ITopic
) -> cloudwatch.Alarm:
    """The watcher watched: a detector that keeps failing would otherwise mean silence, which
    reads exactly like "no sessions lost". An addition to the alarms of docs/architecture.md §6."""
    return _alarm(
        scope,
        id,
        name=name,
        description=(
            f"SessionWatch detector {id} is failing: session losses may go undetected until "
            "it is fixed. See its log group."
        ),
        metric=function.metric_errors(period=DETECTOR_ERRORS_PERIOD, statistic="Sum"),
        threshold=1,
        topic=topic,
    )


def queue_depth_alarm(
    scope: Construct,
    id: str,
    *,
    name: str,
    queue: sqs.IQueue,
    what: str,
    period: Duration,
    topic: sns.ITopic,
) -> cloudwatch.Alarm:
    """Any message waiting in a failure queue is an event the detectors have not counted yet."""
    return _alarm(
        scope,
        id,
        name=name,
        description=(
            f"SessionWatch: {what} is waiting in queue {queue.queue_name}. Its sessions are not "
            "counted until it is re-fed: fix the cause (see the detector's log group), then run "
            "`sessionwatch redrive`."
        ),
        metric=queue.metric_approximate_number_of_messages_visible(
            period=period, statistic="Maximum"
        ),
        threshold=0,
        comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        topic=topic,
    )
