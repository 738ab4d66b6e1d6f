"""The audited configuration as plain data, built from the real ``describe_*`` response shapes.

The audit reads ECS DescribeServices and DescribeTaskDefinition, ELBv2
DescribeTargetGroupAttributes (and DescribeRules for a blue/green service's production listener
rule), CloudWatch DescribeAlarms. This module turns their raw responses
into one small frozen value so the rules in ``ops.audit_rules`` are pure functions over plain data:
they can be tested with the exact shapes AWS returns, including fields moto does not model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sessionwatch.contract import (
    DIMENSION_SERVICE,
    ENV_DRAIN_SECONDS,
    ENV_SESSION_IDLE_TIMEOUT,
    FLAG_DRAIN_SECONDS,
    FLAG_GRACEFUL_SECONDS,
    FLAG_SESSION_IDLE_TIMEOUT,
    NAMESPACE,
)

# Fargate (and the ECS agent's ECS_CONTAINER_STOP_TIMEOUT) default: SIGKILL 30 s after SIGTERM.
DEFAULT_STOP_TIMEOUT_S = 30
# ELBv2 target group default deregistration delay.
DEFAULT_DEREGISTRATION_DELAY_S = 300
# ECS deploymentConfiguration.strategy values that shift traffic between two target groups.
TRAFFIC_SHIFTING_STRATEGIES = frozenset({"BLUE_GREEN", "CANARY", "LINEAR"})
# The MCP SDK's (and the reference server's) session idle timeout when none is configured.
DEFAULT_SESSION_IDLE_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class ContainerConfig:
    """One container of the task definition, as far as stopping it matters."""

    name: str
    essential: bool
    stop_timeout_s: int | None  # None: not set, the platform default applies
    drain_s: float | None  # --drain-seconds or SESSIONWATCH_DRAIN_SECONDS; None if neither
    graceful_s: float | None  # --graceful-seconds; None: the server's default
    serves_traffic: bool  # registered in a target group by the service
    idle_timeout_s: float | None = None  # --session-idle-timeout or its env; None if neither

    @property
    def effective_stop_timeout_s(self) -> int:
        return DEFAULT_STOP_TIMEOUT_S if self.stop_timeout_s is None else self.stop_timeout_s


@dataclass(frozen=True)
class TargetGroupConfig:
    """The attributes of one target group that decide when a sticky session dies."""

    arn: str
    deregistration_delay_s: int
    stickiness_enabled: bool
    stickiness_type: str | None
    stickiness_duration_s: int | None

    @property
    def name(self) -> str:
        """``targetgroup/name/id`` is how operators and CloudWatch spell it."""
        marker = ":targetgroup/"
        return "targetgroup/" + self.arn.split(marker, 1)[1] if marker in self.arn else self.arn


# (namespace, metric name, sorted dimension pairs): one metric an alarm reads.
MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class AlarmConfig:
    """A CloudWatch alarm reduced to what the audit asks: what it watches and whether it acts."""

    name: str
    exists: bool
    actions_enabled: bool
    alarm_actions: tuple[str, ...]
    metrics: tuple[MetricKey, ...]

    def watches_sessionwatch(self, service: str) -> bool:
        """True when the alarm reads a SessionWatch metric of ``service``."""
        return any(
            namespace == NAMESPACE and (DIMENSION_SERVICE, service) in dims
            for namespace, _name, dims in self.metrics
        )


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the rules look at for one ECS service."""

    cluster: str
    service: str
    desired_count: int
    deployment_controller: str
    minimum_healthy_percent: int
    maximum_percent: int
    circuit_breaker_enabled: bool
    circuit_breaker_rollback: bool
    deployment_alarms_enabled: bool
    deployment_alarm_names: tuple[str, ...]
    containers: tuple[ContainerConfig, ...]
    target_groups: tuple[TargetGroupConfig, ...]
    alarms: tuple[AlarmConfig, ...] = field(default=())
    # ECS native traffic shifting: deploymentConfiguration.strategy (ROLLING when absent) and
    # bakeTimeInMinutes; the production listener rule of the service's advancedConfiguration
    # and its forward action's target group stickiness (AWSALBTG) duration, None when off.
    strategy: str = "ROLLING"
    bake_time_s: int | None = None
    production_rule: str | None = None
    group_stickiness_s: int | None = None

    @property
    def shifts_traffic(self) -> bool:
        """Blue/green, canary or linear: two target groups behind one weighted forward."""
        return self.strategy in TRAFFIC_SHIFTING_STRATEGIES

    @property
    def serving_containers(self) -> tuple[ContainerConfig, ...]:
        """Containers behind the load balancer; all essential ones when none is registered."""
        serving = tuple(c for c in self.containers if c.serves_traffic)
        return serving or tuple(c for c in self.containers if c.essential)


def _alarm_metrics(alarm: Mapping[str, Any]) -> tuple[MetricKey, ...]:
    """Metrics an alarm reads: the single metric, or every MetricStat of a metric-math alarm."""
    found: list[MetricKey] = []
    metric_specs: list[Mapping[str, Any]] = []
    if alarm.get("MetricName"):
        metric_specs.append(alarm)
    for query in alarm.get("Metrics") or []:
        stat_metric = (query.get("MetricStat") or {}).get("Metric")
        if stat_metric:
            metric_specs.append(stat_metric)
    for spec in metric_specs:
        dims = tuple(sorted((d["Name"], d["Value"]) for d in spec.get("Dimensions") or []))
        found.append((spec.get("Namespace", ""), spec.get("MetricName", ""), dims))
    return tuple(found)


def alarm_from_response(alarm: Mapping[str, Any]) -> AlarmConfig:
    """One ``MetricAlarms`` item of DescribeAlarms."""
    return AlarmConfig(
        name=alarm["AlarmName"],
        exists=True,
        actions_enabled=bool(alarm.get("ActionsEnabled", True)),
        alarm_actions=tuple(alarm.get("AlarmActions") or ()),
        metrics=_alarm_metrics(alarm),
    )


def missing_alarm(name: str) -> AlarmConfig:
    """A name the service's deployment configuration lists but CloudWatch does not know."""
    return AlarmConfig(name=name, exists=False, actions_enabled=False, alarm_actions=(), metrics=())


def _float(raw: object) -> float | None:
    try:
        return float(str(raw))
    except ValueError:
        return None


def _flag(command: Sequence[str], flag: str) -> float | None:
    """``--flag N`` or ``--flag=N`` in a container command (the server's flag beats its env)."""
    for i, arg in enumerate(command):
        if arg == flag and i + 1 < len(command):
            return _float(command[i + 1])
        if arg.startswith(flag + "="):
            return _float(arg.split("=", 1)[1])
    return None


def _setting(container: Mapping[str, Any], flag: str, env: str) -> float | None:
    """A server setting as the server resolves it: the flag wins over the environment."""
    from_flag = _flag(container.get("command") or [], flag)
    if from_flag is not None:
        return from_flag
    for pair in container.get("environment") or []:
        if pair.get("name") == env:
            return _float(pair.get("value", ""))
    return None


def target_group_from_attributes(
    arn: str, attributes: Iterable[Mapping[str, Any]]
) -> TargetGroupConfig:
    """DescribeTargetGroupAttributes ``Attributes`` (a list of Key/Value strings)."""
    attrs = {a["Key"]: a["Value"] for a in attributes}
    sticky_type = attrs.get("stickiness.type")
    duration = attrs.get(f"stickiness.{sticky_type}.duration_seconds") if sticky_type else None
    if duration is None and sticky_type == "lb_cookie":
        duration = "86400"  # the lb_cookie default (one day) when the attribute is absent
    return TargetGroupConfig(
        arn=arn,
        deregistration_delay_s=int(
            attrs.get("deregistration_delay.timeout_seconds", DEFAULT_DEREGISTRATION_DELAY_S)
        ),
        stickiness_enabled=attrs.get("stickiness.enabled", "false").lower() == "true",
        stickiness_type=sticky_type,
        stickiness_duration_s=int(duration) if duration else None,
    )


def production_listener_rule(service: Mapping[str, Any]) -> str | None:
    """The ``advancedConfiguration.productionListenerRule`` of a blue/green service, if any."""
    for lb in service.get("loadBalancers") or []:
        rule = (lb.get("advancedConfiguration") or {}).get("productionListenerRule")
        if rule:
            return str(rule)
    return None


def group_stickiness_from_rules(rules: Iterable[Mapping[str, Any]]) -> int | None:
    """DescribeRules ``Rules``: the forward action's target group stickiness duration, if on.

    ``ForwardConfig.TargetGroupStickinessConfig`` ``{Enabled, DurationSeconds}`` (1-604800 s);
    None when no forward action enables it.
    """
    durations = [
        int(sticky.get("DurationSeconds") or 0)
        for rule in rules
        for action in rule.get("Actions") or []
        if action.get("Type") == "forward"
        for sticky in [(action.get("ForwardConfig") or {}).get("TargetGroupStickinessConfig")]
        if sticky and sticky.get("Enabled")
    ]
    return max(durations) if durations else None


def service_config_from(
    service: Mapping[str, Any],
    task_definition: Mapping[str, Any],
    target_groups: Sequence[TargetGroupConfig],
    alarms: Sequence[AlarmConfig],
    group_stickiness_s: int | None = None,
) -> ServiceConfig:
    """Build the audited value from one DescribeServices ``services`` item and the task definition.

    A service created without a ``deploymentConfiguration`` gets AWS's defaults (100/200, circuit
    breaker off), so a missing block means exactly that, not "unknown".
    """
    deploy = service.get("deploymentConfiguration") or {}
    breaker = deploy.get("deploymentCircuitBreaker") or {}
    deploy_alarms = deploy.get("alarms") or {}
    lb_containers = {lb.get("containerName") for lb in service.get("loadBalancers") or []}
    containers = tuple(
        ContainerConfig(
            name=c["name"],
            essential=bool(c.get("essential", True)),
            stop_timeout_s=c.get("stopTimeout"),
            drain_s=_setting(c, FLAG_DRAIN_SECONDS, ENV_DRAIN_SECONDS),
            graceful_s=_flag(c.get("command") or [], FLAG_GRACEFUL_SECONDS),
            idle_timeout_s=_setting(c, FLAG_SESSION_IDLE_TIMEOUT, ENV_SESSION_IDLE_TIMEOUT),
            serves_traffic=c["name"] in lb_containers,
        )
        for c in task_definition.get("containerDefinitions") or []
    )
    return ServiceConfig(
        cluster=str(service.get("clusterArn", "")).rsplit("/", 1)[-1],
        service=service["serviceName"],
        desired_count=int(service.get("desiredCount", 0)),
        deployment_controller=(service.get("deploymentController") or {}).get("type", "ECS"),
        minimum_healthy_percent=int(deploy.get("minimumHealthyPercent", 100)),
        maximum_percent=int(deploy.get("maximumPercent", 200)),
        circuit_breaker_enabled=bool(breaker.get("enable", False)),
        circuit_breaker_rollback=bool(breaker.get("rollback", False)),
        deployment_alarms_enabled=bool(deploy_alarms.get("enable", False)),
        deployment_alarm_names=tuple(deploy_alarms.get("alarmNames") or ()),
        containers=containers,
        target_groups=tuple(target_groups),
        alarms=tuple(alarms),
        strategy=str(deploy.get("strategy") or "ROLLING"),
        bake_time_s=(
            None
            if deploy.get("bakeTimeInMinutes") is None
            else int(deploy["bakeTimeInMinutes"]) * 60
        ),
        production_rule=production_listener_rule(service),
        group_stickiness_s=group_stickiness_s,
    )
