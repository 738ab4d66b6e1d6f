"""Pure audit rules: the session survival window of a rolling deployment and the risks around it.

When sessions die is ``ops.audit_survival``'s model, the one the lab measures: "Elastic Load
Balancing stops sending requests to targets that are deregistering", so a pinned session dies
at its first request after its task begins draining; the deregistration delay lets in-flight
requests finish and the stop timeout caps the task's life after SIGTERM, neither extends the
session. These functions compute that window and list what would make sessions die sooner, or
die unnoticed. No AWS calls here.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from sessionwatch.contract import ENV_DRAIN_SECONDS, ENV_SESSION_IDLE_TIMEOUT
from sessionwatch.ops.audit_model import (
    DEFAULT_DEREGISTRATION_DELAY_S,
    DEFAULT_SESSION_IDLE_TIMEOUT_S,
    ServiceConfig,
)
from sessionwatch.ops.audit_survival import (
    SURVIVES_DRAINING_S,
    starts_replacements_first,
    tasks_per_wave,
)
from sessionwatch.server.drain_budget import (
    DEFAULT_GRACEFUL_SECONDS,
    FLUSH_ALLOWANCE_SECONDS,
    check_drain_budget,
)


class Severity(IntEnum):
    """Ordered so the worst finding is ``max()``; ``HIGH`` fails a pipeline by default."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One risk: a stable rule id (for suppression lists and dashboards), evidence and the fix."""

    rule: str
    severity: Severity
    title: str
    evidence: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "severity": str(self.severity)}


@dataclass(frozen=True)
class SurvivalWindow:
    """How long a session pinned to a task that a rolling deployment replaces can live."""

    desired_count: int
    tasks_per_wave: int  # old tasks drained at the same moment
    waves: int
    deregistration_delay_s: int | None  # longest across the service's target groups
    stickiness: bool  # every target group sticky
    stop_timeout_s: int | None  # shortest effective stop timeout of the serving containers
    server_drain_s: float | None
    # From "target starts draining" to "the session's requests go elsewhere": 0, the ALB stops
    # routing to a deregistering target (ops.audit_survival); the client's next request is lost.
    session_cliff_s: float
    task_gone_by_s: int | None  # delay + stop timeout: the latest SIGKILL after draining starts
    replacements_first: bool = True  # maximumPercent lets a wave's replacements start first
    in_flight_s: int | None = None  # the deregistration delay: requests in flight may finish

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def survival_window(cfg: ServiceConfig) -> SurvivalWindow:
    """The rolling deployment's session survival window (``ops.audit_survival``).

    A pinned session dies at its first request after its task begins draining
    (``session_cliff_s`` 0); which wave its task is in decides when that is. Without stickiness
    there is no window at all: a session survives only while its requests happen to land on the
    task that holds it, deployment or not.
    """
    per_wave = tasks_per_wave(cfg.desired_count, cfg.minimum_healthy_percent, cfg.maximum_percent)
    delays = [tg.deregistration_delay_s for tg in cfg.target_groups]
    delay = max(delays) if delays else None
    sticky = bool(cfg.target_groups) and all(tg.stickiness_enabled for tg in cfg.target_groups)
    serving = cfg.serving_containers
    stop = min((c.effective_stop_timeout_s for c in serving), default=None)
    drains = [c.drain_s for c in serving if c.drain_s is not None]
    return SurvivalWindow(
        desired_count=cfg.desired_count,
        tasks_per_wave=per_wave,
        waves=math.ceil(cfg.desired_count / per_wave) if per_wave else 0,
        deregistration_delay_s=delay,
        stickiness=sticky,
        stop_timeout_s=stop,
        server_drain_s=max(drains) if drains else None,
        session_cliff_s=SURVIVES_DRAINING_S,
        task_gone_by_s=(delay or 0) + stop if stop is not None else None,
        replacements_first=starts_replacements_first(
            cfg.desired_count, cfg.maximum_percent, per_wave
        ),
        in_flight_s=delay,
    )


def _target_group_findings(cfg: ServiceConfig) -> list[Finding]:
    if not cfg.target_groups:
        return [
            Finding(
                "no-target-group",
                Severity.INFO,
                "Service is not registered in a target group",
                f"service {cfg.service} has no loadBalancers entry",
                "Stickiness and deregistration delay rules were skipped; "
                "audit the service that sits behind the ALB.",
            )
        ]
    found: list[Finding] = []
    for tg in cfg.target_groups:
        if not tg.stickiness_enabled:
            found.append(
                Finding(
                    "stickiness-off",
                    Severity.HIGH,
                    "Target group stickiness is off",
                    f"{tg.name}: stickiness.enabled=false with {cfg.desired_count} task(s): "
                    "requests of one MCP session spread across tasks and hit 404/-32600",
                    f"aws elbv2 modify-target-group-attributes --target-group-arn {tg.arn} "
                    "--attributes Key=stickiness.enabled,Value=true "
                    "Key=stickiness.type,Value=lb_cookie",
                )
            )
        idle = max(
            (c.idle_timeout_s or DEFAULT_SESSION_IDLE_TIMEOUT_S for c in cfg.serving_containers),
            default=DEFAULT_SESSION_IDLE_TIMEOUT_S,
        )
        duration = tg.stickiness_duration_s
        if tg.stickiness_enabled and duration is not None and duration < idle:
            found.append(
                Finding(
                    "stickiness-shorter-than-session",
                    Severity.MEDIUM,
                    "Sticky cookie expires before an idle session does",
                    f"{tg.name}: {tg.stickiness_type} duration {duration} s < session idle "
                    f"timeout {idle:g} s: a session idle longer than {duration} s comes back "
                    "without stickiness and lands on any task",
                    f"Raise stickiness.{tg.stickiness_type}.duration_seconds to at least "
                    f"{math.ceil(idle)} s, or lower {ENV_SESSION_IDLE_TIMEOUT}.",
                )
            )
        if tg.deregistration_delay_s == DEFAULT_DEREGISTRATION_DELAY_S:
            found.append(
                Finding(
                    "default-deregistration-delay",
                    Severity.MEDIUM,
                    "Deregistration delay is the 300 s default",
                    f"{tg.name}: deregistration_delay.timeout_seconds=300 keeps every replaced "
                    "task 5 min per wave but saves no session: the ALB stops sending requests "
                    "to a deregistering target, so sessions die at their next request",
                    "Set it to the longest request (or stream) you need to finish in flight, "
                    "e.g. 30-60 s, for faster rollouts and rollbacks; no value removes the "
                    "loss, so alarm on it (SessionWatch SessionsLost).",
                )
            )
    return found


def _container_findings(cfg: ServiceConfig) -> list[Finding]:
    """The server's own shutdown budget (server.runner): drain + graceful + flush < stopTimeout."""
    found: list[Finding] = []
    for c in cfg.serving_containers:
        if c.drain_s is None:
            continue
        graceful = DEFAULT_GRACEFUL_SECONDS if c.graceful_s is None else c.graceful_s
        stop = c.effective_stop_timeout_s
        overrun = check_drain_budget(c.drain_s, graceful, stop)
        if overrun is None:
            continue
        source = "default" if c.stop_timeout_s is None else "set"
        need = math.ceil(c.drain_s + graceful + FLUSH_ALLOWANCE_SECONDS) + 1
        found.append(
            Finding(
                "stop-timeout-below-drain",
                Severity.HIGH,
                "Stop timeout is shorter than the server's drain",
                f"container {c.name}: stopTimeout {stop} s ({source}), {ENV_DRAIN_SECONDS}="
                f"{c.drain_s:g} s: {overrun}; SIGKILL lands mid-shutdown, in-flight calls and "
                "the shutdown accounting are cut off",
                f"Set stopTimeout >= {need} s on container {c.name} "
                f"(Fargate allows up to 120 s) or lower {ENV_DRAIN_SECONDS}.",
            )
        )
    return found


def _deployment_findings(cfg: ServiceConfig) -> list[Finding]:
    found: list[Finding] = []
    if cfg.desired_count <= 1:
        found.append(
            Finding(
                "single-task",
                Severity.MEDIUM,
                "Service runs one task",
                f"desiredCount={cfg.desired_count}: every deployment, scale event or task failure "
                "drops every open session at once",
                "Run at least 2 tasks across Availability Zones.",
            )
        )
    if cfg.deployment_controller == "ECS" and not cfg.circuit_breaker_enabled:
        found.append(
            Finding(
                "circuit-breaker-off",
                Severity.MEDIUM,
                "Deployment circuit breaker is off",
                "deploymentConfiguration.deploymentCircuitBreaker.enable=false: a rollout of "
                "failing tasks keeps replacing healthy ones (and their sessions)",
                "Enable the circuit breaker with rollback; note it never sees session loss, "
                "so pair it with a deployment alarm on SessionWatch SessionsLost.",
            )
        )
    return found


def _alarm_findings(cfg: ServiceConfig) -> list[Finding]:
    found: list[Finding] = []
    by_name = {a.name: a for a in cfg.alarms}
    deploy_alarms = [by_name[n] for n in cfg.deployment_alarm_names if n in by_name]
    if not cfg.deployment_alarms_enabled or not cfg.deployment_alarm_names:
        found.append(
            Finding(
                "no-deployment-alarm",
                Severity.MEDIUM,
                "No ECS deployment alarm",
                "deploymentConfiguration.alarms is "
                + ("disabled" if cfg.deployment_alarm_names else "empty")
                + ": nothing stops or rolls back a deployment that loses sessions",
                "Attach the SessionWatch SessionsLost (Cause=deployment) alarm as a deployment "
                "alarm with rollback enabled.",
            )
        )
    else:
        for alarm in deploy_alarms:
            if not alarm.exists:
                found.append(
                    Finding(
                        "deployment-alarm-missing",
                        Severity.MEDIUM,
                        "Deployment alarm does not exist",
                        f"deploymentConfiguration.alarms names {alarm.name!r}, "
                        "which CloudWatch does not know",
                        "Create the alarm or remove the name from the deployment configuration.",
                    )
                )
        if not any(a.watches_sessionwatch(cfg.service) for a in deploy_alarms):
            found.append(
                Finding(
                    "deployment-alarm-ignores-session-loss",
                    Severity.LOW,
                    "Deployment alarms do not watch session loss",
                    "deployment alarms: " + ", ".join(cfg.deployment_alarm_names),
                    "Add the SessionWatch SessionsLost (Cause=deployment) alarm to the list.",
                )
            )
    watching = [a for a in cfg.alarms if a.exists and a.watches_sessionwatch(cfg.service)]
    if not watching:
        found.append(
            Finding(
                "no-sessionwatch-alarm",
                Severity.HIGH,
                "No SessionWatch alarm for this service",
                f"no CloudWatch alarm reads namespace SessionWatch with ServiceName={cfg.service}: "
                "lost sessions leave ALB, ECS and the circuit breaker green",
                "Deploy the SessionWatch add-on stack for this service (infra/), which creates "
                "the SessionsLost and DeploymentLossSpike alarms.",
            )
        )
    elif not any(a.actions_enabled and a.alarm_actions for a in watching):
        found.append(
            Finding(
                "sessionwatch-alarm-silent",
                Severity.MEDIUM,
                "SessionWatch alarms notify nobody",
                "alarms " + ", ".join(a.name for a in watching) + " have no enabled AlarmActions",
                "Point the alarms at an SNS topic someone reads.",
            )
        )
    return found


def _group_stickiness_findings(cfg: ServiceConfig) -> list[Finding]:
    """AWSALBTG on a blue/green production rule: the lock-out after clean-up.

    ELB guide (forward actions): a request with the cookie "is routed to the target group
    specified in the cookie", and with weighted groups, when one "is empty or has only unhealthy
    targets, the load balancer does not automatically fail over to a target group with healthy
    targets". After clean-up the old group is empty: its pinned clients get HTTP 503 from the
    load balancer until their cookie expires, and no server sees them.
    """
    duration = cfg.group_stickiness_s
    if not cfg.shifts_traffic or duration is None:
        return []
    bake = cfg.bake_time_s
    outlives = bake is None or duration >= bake
    bake_text = "not set" if bake is None else f"{bake} s"
    return [
        Finding(
            "group-stickiness-lockout",
            Severity.HIGH if outlives else Severity.MEDIUM,
            "Target group stickiness locks clients out after the blue/green clean-up",
            f"{cfg.strategy} with production listener rule {cfg.production_rule}: "
            f"TargetGroupStickinessConfig {duration} s, bake time {bake_text}. After clean-up, "
            "a client whose AWSALBTG names the old (now empty) target group gets HTTP 503 from "
            f"the load balancer itself for up to {duration} s: ALB does not fail over to the "
            "group with targets, no task sees the request, nothing is logged"
            + (
                "; the cookie outlives the bake, so even a client idle since the traffic "
                "shift is still pinned to the old group at clean-up"
                if outlives
                else ""
            ),
            "Set the rule's TargetGroupStickinessConfig DurationSeconds far below the bake "
            "time, just above your clients' longest pause between requests (sessions still "
            "ride the bake on the old tasks, so a rollback keeps them; the lock-out lasts at "
            "most that long), or disable it (clients then move to the new tasks, and lose "
            "their sessions, at the production traffic shift, with no lock-out). Alarm on the "
            "ALB's HTTPCode_ELB_503_Count (SessionWatch does when given the load balancer).",
        )
    ]


def findings(cfg: ServiceConfig) -> list[Finding]:
    """Every risk in ``cfg``, worst first."""
    found = [
        *_target_group_findings(cfg),
        *_group_stickiness_findings(cfg),
        *_container_findings(cfg),
        *_deployment_findings(cfg),
        *_alarm_findings(cfg),
    ]
    return sorted(found, key=lambda f: (-f.severity, f.rule))


def worst(found: list[Finding]) -> Severity | None:
    """The highest severity present, None when the audit is clean."""
    return max((f.severity for f in found), default=None)
