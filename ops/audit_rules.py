"""Pure audit rules: the session survival window of a rolling deployment and the risks around it.

The original experiment's lesson (finding 4): the deregistration delay is the session cliff timer,
and the stop timeout caps how long a task may drain after SIGTERM. These functions compute that
window and list what would make sessions die sooner, or die unnoticed. No AWS calls here.
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
    session_cliff_s: int  # from "target starts draining" to "the session's requests go elsewhere"
    task_gone_by_s: int | None  # delay + stop timeout: the latest SIGKILL after draining starts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tasks_per_wave(desired: int, minimum_healthy_percent: int, maximum_percent: int) -> int:
    """Old tasks a rolling update stops at once: ECS may run ``max%`` and must keep ``min%``."""
    if desired <= 0:
        return 0
    max_running = math.floor(desired * maximum_percent / 100)
    min_healthy = math.ceil(desired * minimum_healthy_percent / 100)
    return max(0, min(desired, max_running - min_healthy))


def survival_window(cfg: ServiceConfig) -> SurvivalWindow:
    """The rolling deployment's session survival window (DESIGN/background finding 4).

    Without stickiness there is no window at all: a session survives only while its requests
    happen to land on the task that holds it, deployment or not.
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
        session_cliff_s=(delay or 0) if sticky else 0,
        task_gone_by_s=(delay or 0) + stop if stop is not None else None,
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
                    f"{tg.name}: deregistration_delay.timeout_seconds=300 is the session cliff: "
                    "sessions on a replaced task die at most 300 s after it starts draining",
                    "Choose the window on purpose: shorter (e.g. 30-60 s) for fast rollouts with "
                    "clients that re-initialise, longer (up to 3600 s) to let sessions finish; "
                    "no value removes the loss, so alarm on it (SessionWatch SessionsLost).",
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


def findings(cfg: ServiceConfig) -> list[Finding]:
    """Every risk in ``cfg``, worst first."""
    found = [
        *_target_group_findings(cfg),
        *_container_findings(cfg),
        *_deployment_findings(cfg),
        *_alarm_findings(cfg),
    ]
    return sorted(found, key=lambda f: (-f.severity, f.rule))


def worst(found: list[Finding]) -> Severity | None:
    """The highest severity present, None when the audit is clean."""
    return max((f.severity for f in found), default=None)
