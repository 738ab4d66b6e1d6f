"""Every fact the detectors read, store and decide from: one module, plain frozen dataclasses.

A fact is what one input said (an ECS event, a log line, one ECS read) or the merge of many
such observations of the same entity. The merges live in ``detectors.ledger.codec`` and are
order-free (earliest time wins, smallest string per field), so one observation and the merged
facts have the same shape. Nothing here does I/O or decides a cause (that is ``core``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from sessionwatch.contract import Cause

# The server clock and ECS's clock disagree a little: the allowance for comparing a log line's
# time with an ECS time where order is not physically fixed (a 404 after a drain began, a
# deployment's start against a task's start, a close against a 404).
CLOCK_SKEW_S = 5.0
# How much earlier than ECS's drain time (``stoppingAt``, else ``stoppedAt``) a 404 may be
# logged and still be that drain's: the two clocks' error, no more. The order is physical:
# "when task status changes are requested, such as stopping a task", ECS records the desired
# status STOPPED, and the target group deregistration "occurs during" DEACTIVATING, the state
# after it (ECS Developer Guide, task lifecycle); only "after the targets are deregistered,
# they no longer receive traffic from the load balancer" (ELB API reference,
# DeregisterTargets). So a drain's 404 comes after ECS's stop time, and logged earlier only by
# clock error. Fargate tasks and ECS keep time from the Amazon Time Sync Service, on which
# "customers have depended ... to provide one millisecond clock accuracy" (AWS Compute blog,
# "It's About Time: Microsecond-Accurate Clocks on Amazon EC2 Instances", 2023); Fargate
# reports each task's own bound (``ClockDrift.ClockErrorBound``, task metadata v4; AWS
# Containers blog, "Run time sensitive workloads on ECS Fargate with clock accuracy
# tracking"). No AWS document bounds ECS's own event timestamps. 1 s is this module's default
# (0.5 s per clock), some 500 times the documented accuracy; a deployment sets its own bound
# (``CLOCK_ERROR_SECONDS``, ``Config.clock_error_s``), and the rules take it per decision
# (``rules.Case.before_drain_s``). A cookie-less client's 404 on another task logged more than
# the bound before the drain is its own hop (``stickiness``), not the drain's; one within it is
# the drain's, whatever really happened first.
BEFORE_DRAIN_S = 1.0

SUPERSEDED = "SUPERSEDED"
# The stop code of a task the service scheduler stopped (a rollout, a scale-in, a health check).
SCHEDULER_STOP = "ServiceSchedulerInitiated"
INFRA_REASON_WORDS = ("spot", "retire", "retirement", "maintenance", "host", "underlying")
HEALTH_REASON_WORDS = ("health check", "health-check", "healthcheck")
_ROLLBACK = re.compile(r"rolling back to deploymentId (\S+?)\.?$", re.IGNORECASE)

# ECS deployment strategies (DeploymentConfiguration.strategy). EXTERNAL: a CodeDeploy or
# external controller; "traffic-shifting" means the old tasks keep running while traffic moves.
ROLLING = "ROLLING"
BLUE_GREEN = "BLUE_GREEN"
LINEAR = "LINEAR"
CANARY = "CANARY"
EXTERNAL = "EXTERNAL"
TRAFFIC_SHIFTING = frozenset({BLUE_GREEN, LINEAR, CANARY, EXTERNAL})

# How a deployment's strategy became known (``DeploymentWindow.strategy_source``).
STRATEGY_FROM_ECS = "ecs-read"
STRATEGY_UNAVAILABLE = "unavailable"  # the ECS read failed: decide from events alone


@dataclass(frozen=True)
class TaskFacts:
    """Facts about one ECS task: what one event said, or everything the ledger has merged.

    ``started_by`` is the deployment that started the task (its lineage): ECS sets it on
    every event of a service's task, and the stopped reason's deployment id names the same
    one. ``task_definition`` is its revision. ``None`` = not said / not yet known. In merged
    facts ``stopped_reason`` holds the reason's marks (``core.reason_marks``) only.
    """

    task_id: str
    service: str | None = None
    started_by: str | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    task_definition: str | None = None

    @property
    def stop_began(self) -> float | None:
        """When the task stopped serving: draining start if seen, else the stop itself."""
        times = [t for t in (self.stopping_at, self.stopped_at) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True)
class HookStage:
    """One ``ECS Hook State Change`` seen for a service: a lifecycle stage at a time."""

    stage: str
    status: str
    at: float


@dataclass(frozen=True)
class DeploymentWindow:
    """One ECS deployment of a service and what is known about it.

    IN_PROGRESS until COMPLETED/FAILED (``ended_at`` None = open; SUPERSEDED when the next
    deployment of the service began first). ``rollback_to`` is set for a circuit-breaker or
    alarm rollback ("rolling back to deploymentId X"); the rollback is a deployment of its own.
    Strategy, target revision, bake time and step settings come from the one ECS read per
    deployment (``strategy_source``); ``hooks`` from ECS Hook State Change events.
    """

    service: str
    deployment_id: str
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None
    reason: str | None = None
    rollback_to: str | None = None
    strategy: str | None = None
    strategy_source: str | None = None
    task_definition: str | None = None
    bake_s: float | None = None
    step_percent: float | None = None
    step_bake_s: float | None = None
    hooks: tuple[HookStage, ...] = ()

    def contains(self, t: float, grace_s: float) -> bool:
        """True when ``t`` falls in [start, end + grace]; an open window extends to now."""
        if t < self.started_at - CLOCK_SKEW_S:
            return False
        return self.ended_at is None or t <= self.ended_at + grace_s

    @property
    def traffic_shifting(self) -> bool:
        return self.strategy in TRAFFIC_SHIFTING

    def stage_at(self, stage: str) -> float | None:
        """When ``stage`` began (earliest hook event naming it), if a hook reported it."""
        times = [h.at for h in self.hooks if h.stage == stage]
        return min(times) if times else None


@dataclass(frozen=True)
class DeploymentObserved:
    """An ECS deployment began (``ended`` False) or ended (COMPLETED/FAILED)."""

    service: str
    deployment_id: str
    at: float
    ended: bool
    outcome: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class HookObserved:
    """An ``ECS Hook State Change``: a service's deployment reached a lifecycle stage."""

    service: str
    stage: str
    status: str
    at: float
    service_deployment_arn: str | None = None


@dataclass(frozen=True)
class DeploymentSettings:
    """What the one ECS read per deployment tells (strategy, target revision, bake/steps)."""

    strategy: str | None
    task_definition: str | None = None
    bake_s: float | None = None
    step_percent: float | None = None
    step_bake_s: float | None = None
    source: str = STRATEGY_FROM_ECS


@dataclass(frozen=True)
class SessionOrigin:
    """Where and when a session was created (from ``session_created``)."""

    task_id: str
    created_at: float
    client_name: str | None = None  # clientInfo.name from session_created, when logged


@dataclass(frozen=True)
class NotFound:
    """One ``session_not_found`` occurrence: fingerprint, serving task, time.

    ``key`` is its identity: a re-delivered log line collapses onto it, a later 404 of the same
    session is a new occurrence with its own verdict (the session is still counted once per
    cause, see ``detectors.classify``).
    """

    fingerprint: str
    task_id: str
    at: float
    log_service: str | None = None

    @property
    def key(self) -> str:
        return f"{self.fingerprint}|{self.task_id}|{self.at:.3f}"


@dataclass(frozen=True)
class SessionCreated:
    fingerprint: str
    task_id: str
    at: float
    client_name: str | None = None  # clientInfo.name (sanitized by the server, bounded here)


@dataclass(frozen=True)
class SessionClosed:
    fingerprint: str
    task_id: str
    at: float
    reason: str | None = None


@dataclass(frozen=True)
class SessionSpan:
    """A session seen on a task, for at-risk counts: created/closed times where known."""

    fingerprint: str
    created_at: float | None
    closed_at: float | None


@dataclass(frozen=True)
class BadInput:
    """Something we could not use: counted as DetectorBadInput and logged with ``context``.

    ``context`` locates the input (event id, log stream, log event id) and never carries the
    raw payload, which could hold a raw session id.
    """

    reason: str
    context: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """The decided cause, the service it is counted for, and what it rests on."""

    cause: Cause
    service: str | None
    origin_task: str | None = None
    deployment_id: str | None = None
    basis: str = ""
    # When that deployment began: of two attributions of the same 404, the later-starting
    # deployment is the better informed one (``stopper`` only gains candidates with facts).
    deployment_started_at: float | None = None

    @property
    def final(self) -> bool:
        return self.cause is not Cause.PENDING


def close_superseded(windows: Iterable[DeploymentWindow]) -> list[DeploymentWindow]:
    """Close each window whose end never arrived at the next start of the same service.

    Without it one lost COMPLETED event would make every later scheduler stop a deployment
    loss and keep DeploymentsInProgress at 1 forever. Sorted by start, service, id.
    """
    ordered = sorted(windows, key=lambda w: (w.started_at, w.service, w.deployment_id))
    out = []
    for i, w in enumerate(ordered):
        if w.ended_at is None:
            later = [
                x.started_at
                for x in ordered[i + 1 :]
                if x.service == w.service and x.started_at > w.started_at
            ]
            if later:
                w = replace(w, ended_at=later[0], outcome=SUPERSEDED)
        out.append(w)
    return out


def rollback_target(reason: str | None) -> str | None:
    """The deployment id a rollback returns to ("... rolling back to deploymentId X.")."""
    match = _ROLLBACK.search((reason or "").strip())
    return match.group(1) if match else None


def reason_marks(reason: str | None) -> str | None:
    """The words of a stopped reason that ``stop_category`` reads, in a fixed order.

    The ledger stores these instead of the reason (up to 1 KiB) to keep each task's summary
    small; ``stop_category`` gives the same answer for the marks as for the full reason.
    """
    text = (reason or "").lower()
    found = [w for w in (*INFRA_REASON_WORDS, *HEALTH_REASON_WORDS) if w in text]
    return " ".join(found) or None
