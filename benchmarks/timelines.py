"""Seeded generator of realistic ECS timelines with ground truth, and a delivery model.

``generate(seed)`` builds one cluster's story: one or two services of 2-5 Fargate tasks, clients
opening MCP sessions on them (handshake-era clients, most keeping the ALB cookie, some never
returning it), deployments of every ECS strategy (ROLLING with waves set by
minimumHealthyPercent/maximumPercent, BLUE_GREEN with production traffic shift, bake time and
clean-up, LINEAR and CANARY in steps), circuit-breaker rollbacks, back-to-back deployments,
scale-in during and right after a deployment, Fargate Spot interruptions, container exits and
failed health checks, idle expiry and never-created sessions. It returns:

- the ECS events in the shapes AWS documents for EventBridge (``ECS Task State Change``,
  ``ECS Deployment State Change``, ``ECS Hook State Change``, ``ECS Service Action``);
- the server's JSON log lines (docs/architecture.md: ``task_started``, ``session_created``,
  ``session_closed``, ``session_not_found``, ``shutdown_started``), per task;
- the ground truth, from the story itself and never from the detectors' rules: for every lost
  session, what physically sent its request elsewhere (``_World.route``/``why_lost``): its task
  had begun draining or had stopped (the cause the story stopped it for: a rollout, a
  scale-in, a Spot interruption, a crash or failed health check), the ALB's weighted draw chose
  the other target group (the traffic-shifting deployment that set the weights), the client
  sent no cookie (``stickiness``), or the session had already expired on its task
  (``expired``, wherever the return lands and whatever happened to the task since); whichever
  ended the session first wins. For each deployment: the sessions lost to it and how it ended;
- what ``DescribeServices`` and ``DescribeServiceDeployments`` would answer for each service
  and deployment (AWS API shapes), for a driver to answer the detectors' ECS reads.

``deliver(timeline, seed)`` turns it into what Lambda would be invoked with and when:
EventBridge events seconds to minutes late (a few later than the grace period), reordered, some
twice; log lines batched per log stream into CloudWatch Logs subscription payloads, late and
sometimes re-delivered.

Modelling choices (stated, not hidden): the ALB routes a new connection uniformly over the
targets that receive traffic; a cookie client sticks to its target while that target is
registered and its target group is chosen; with weighted target groups and no target-group
stickiness the group is drawn per request by weight. A client that receives a 404
re-initializes at once on the task that answered (the 404 response set its new cookie).
Requests are not kept away from stops: some land seconds after a drain began, some seconds
before; a cookie-less client's session may expire (the SDK's idle timeout, 600 s here) and the
client return anywhere; a session may also expire while its task drains, and its server, which
runs until ECS sends SIGTERM after the deregistration delay ("Amazon ECS monitors the load
balancer, and waits for the load balancer to report" the target UNUSED, ECS Developer Guide,
connection draining), logs that close (the loss stays the drain's: it came first); one timeline
in ten has every ECS event delivered after the grace
period. The ALB's order (target group by weight, then the stickiness cookie within it) rests
on the ELB API reference: only ``TargetGroupStickinessConfig`` ("the time period during which
requests from a client should be routed to the same target group") keeps a client on one
group of a weighted forward action; without it the documentation is silent on the cookie
across groups, and the model takes the group draw first.
A rollback replaces the failed deployment's tasks and keeps the tasks of the revision it
rolls back to. EXTERNAL (CodeDeploy) deployments are not generated: ECS sends no deployment
state changes for them that the detectors could date.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sessionwatch import contract
from sessionwatch.contract import Cause
from sessionwatch.server.fingerprint import fingerprint
from world.ecs import (
    CRASH_REASON,
    SPOT_REASON,
    STOP_ESSENTIAL_EXIT,
    STOP_SCHEDULER,
    STOP_SPOT,
    ServiceRef,
    TaskRecord,
    health_check_reason,
    scheduler_reason,
    service_action_event,
)
from world.ecs import deployment_event as world_deployment_event
from world.ecs import hook_event as world_hook_event
from world.ecs import service_deployment_arn as world_service_deployment_arn
from world.ecs import task_event as world_task_event
from world.server_logs import FILTER_NAME, LOG_GROUP, log_stream, server_line
from world.server_logs import subscription_payload as world_subscription_payload

ACCOUNT = "111122223333"
REGION = "us-east-1"
CLUSTER = "mcp-cluster"
CLUSTER_ARN = ServiceRef(REGION, ACCOUNT, CLUSTER, "").cluster_arn
FAMILY = "mcp-server"
T_BASE = datetime(2026, 4, 26, 15, 0, 0, tzinfo=UTC).timestamp()
DEREGISTRATION_DELAY_S = 30.0
IDLE_TIMEOUT_S = 600.0
HEALTHY_AFTER_S = 45.0  # RUNNING -> passing ALB health checks
SKEW_S = 6.0  # "seconds" around a drain: the hard moments the clients are sent into
# Each task's log clock is off true time (ECS's clock) by up to this much, drawn per task. AWS
# documents about 1 ms for clocks kept by the Amazon Time Sync Service (AWS Compute blog, "It's
# About Time: Microsecond-Accurate Clocks on Amazon EC2 Instances", 2023), and Fargate reports a
# task's own ClockErrorBound; the error of ECS's event stamps is not documented. 10 ms leaves ten
# times the documented figure; ``--clock-error 1`` (the detectors' own default bound) is the
# stress run: errors some 500 times what AWS documents would be failures the real clocks do not
# have. A request closer to a drain than the clocks' error is told apart by no one.
CLOCK_ERROR_S = 0.01
REGISTER_AFTER_S = 10.0  # RUNNING -> the ALB sends it traffic
SCHED = STOP_SCHEDULER
TG_ARN = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/mcp-tg/73e2d6bc24d8a067"

ROLLING, BLUE_GREEN, LINEAR, CANARY = "ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"
STRATEGIES = (ROLLING, BLUE_GREEN, LINEAR, CANARY)
TRAFFIC_SHIFTING = (BLUE_GREEN, LINEAR, CANARY)

# How a deployment ended, in the ground truth.
COMPLETED, FAILED, SUPERSEDED = "COMPLETED", "FAILED", "SUPERSEDED"


# ---- The world ----


@dataclass
class Task:
    """One ECS task and what happened to it."""

    id: str
    service: str
    started_by: str
    revision: int
    start: float
    stopping: float | None = None  # deregistered from the ALB (draining) from here on
    stopped: float | None = None
    stop_code: str | None = None
    reason: str | None = None
    cause: Cause | None = None  # what a session lost with it is lost to
    charged_to: str | None = None  # the deployment charged, for Cause.DEPLOYMENT
    graceful: bool = True  # SIGTERM (shutdown logs) vs a crash
    spot: bool = False
    sigterm: float | None = None  # when the server began its shutdown
    clock_offset: float = 0.0  # the server's log clock minus true time (|x| <= CLOCK_ERROR_S)

    @property
    def arn(self) -> str:
        return f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{self.id}"

    def receiving(self, t: float) -> bool:
        """Registered with the ALB and not draining at ``t``."""
        if t < self.start + REGISTER_AFTER_S:
            return False
        end = self.stopping if self.stopping is not None else self.stopped
        return end is None or t < end


@dataclass
class Deployment:
    """One ECS service deployment and, in the truth, how it ended."""

    id: str
    service: str
    strategy: str
    start: float
    revision: int
    source_revision: int
    end: float | None = None
    outcome: str | None = None  # COMPLETED | FAILED | SUPERSEDED (truth)
    reason: str | None = None  # the IN_PROGRESS reason
    rollback_of: str | None = None  # for a rollback: the deployment that failed
    shifts: list[tuple[float, float]] = field(default_factory=list)  # (t, green weight 0..1)
    bake_s: float | None = None
    step_percent: float | None = None
    step_bake_s: float | None = None
    min_healthy: int = 100
    max_percent: int = 200
    hooks: bool = False
    stages: list[tuple[float, str]] = field(default_factory=list)

    def green_weight(self, t: float) -> float:
        w = 0.0
        for at, weight in self.shifts:
            if at <= t:
                w = weight
        return w


@dataclass(frozen=True)
class Loss:
    """One lost session (ground truth): the first 404 of fingerprint ``fp``."""

    fp: str
    service: str
    origin_task: str
    serving_task: str
    at: float
    cause: Cause
    deployment: str | None
    shape: str  # what happened, for the failure listing
    # When its task's server closed it for idle expiry (an expired session; or one that expired
    # while its task drained, lost to the drain): the close line's true time.
    closed_at: float | None = None


@dataclass
class ExpectedReport:
    service: str
    deployment_id: str
    strategy: str
    lost: int
    outcome: str
    rollback: bool


@dataclass
class Timeline:
    """One generated story: inputs in real-world order, the truth, the ECS read answers."""

    seed: int
    shapes: list[str]
    services: dict[str, dict[str, Any]]  # name -> DescribeServices entry (settings)
    deployments: dict[str, Deployment]
    tasks: dict[str, Task]
    ecs_events: list[tuple[float, dict[str, Any]]]
    log_lines: list[tuple[float, str, str]]  # (t, task id, JSON line)
    losses: list[Loss]
    end: float
    ecs_late_s: float | None = None  # every ECS event of this timeline arrives this late

    def expected_reports(self) -> dict[str, ExpectedReport]:
        out = {
            d.id: ExpectedReport(
                d.service, d.id, d.strategy, 0, d.outcome or "", d.rollback_of is not None
            )
            for d in self.deployments.values()
            if d.start >= T_BASE  # the deployment of the initial tasks has no window here
        }
        for loss in self.losses:
            if loss.cause is Cause.DEPLOYMENT and loss.deployment in out:
                out[loss.deployment].lost += 1
        return out

    def strategy_of(self, service: str) -> str:
        return str(self.services[service]["deploymentConfiguration"]["strategy"])

    def describe_services(self, at: float, names: list[str]) -> dict[str, Any]:
        """DescribeServices as ECS would answer at ``at`` (deployments started by then)."""
        out = []
        for name in names:
            if name not in self.services:
                continue
            svc = json.loads(json.dumps(self.services[name]))
            started = sorted(
                (d for d in self.deployments.values() if d.service == name and d.start <= at),
                key=lambda d: -d.start,
            )
            # PRIMARY (the newest) and ACTIVE ones (not yet ended); replaced ones are INACTIVE
            # and no longer listed, as ECS answers.
            svc["deployments"] = [
                _deployment_entry(d, at)
                for i, d in enumerate(started)
                if i == 0 or d.end is None or d.end > at
            ]
            out.append(svc)
        return {"services": out, "failures": []}

    def describe_service_deployments(self, at: float, arns: list[str]) -> dict[str, Any]:
        """DescribeServiceDeployments for the given serviceDeploymentArns."""
        found, failures = [], []
        for arn in arns:
            dep = next(
                (d for d in self.deployments.values() if service_deployment_arn(d) == arn), None
            )
            if dep is None or dep.start > at:
                failures.append({"arn": arn, "reason": "MISSING"})
            else:
                found.append(_service_deployment(self, dep, at))
        return {"serviceDeployments": found, "failures": failures}


def service_arn(service: str) -> str:
    return _ref(service).service_arn


def task_definition_arn(revision: int) -> str:
    return _ref("").task_definition_arn(revision)


def service_deployment_arn(d: Deployment) -> str:
    return world_service_deployment_arn(_ref(d.service), d.id)


def service_revision_arn(d: Deployment, revision: int) -> str:
    return _ref(d.service).service_revision_arn(revision)


def _deployment_entry(d: Deployment, at: float) -> dict[str, Any]:
    ended = d.end is not None and d.end <= at
    state = "IN_PROGRESS"
    if ended:
        state = "FAILED" if d.outcome == FAILED else "COMPLETED"
    return {
        "id": d.id,
        "status": "PRIMARY" if not ended or d.outcome == COMPLETED else "ACTIVE",
        "taskDefinition": task_definition_arn(d.revision),
        "desiredCount": 0,
        "runningCount": 0,
        "pendingCount": 0,
        "createdAt": d.start,
        "updatedAt": min(at, d.end) if d.end else at,
        "launchType": "FARGATE",
        "rolloutState": state,
        "rolloutStateReason": d.reason or "",
    }


def _deployment_configuration(d: Deployment | dict[str, Any]) -> dict[str, Any]:
    if isinstance(d, dict):
        return d
    cfg: dict[str, Any] = {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": d.max_percent,
        "minimumHealthyPercent": d.min_healthy,
        "strategy": d.strategy,
    }
    if d.strategy in TRAFFIC_SHIFTING:
        cfg["bakeTimeInMinutes"] = int((d.bake_s or 0) / 60)
    if d.strategy == LINEAR:
        cfg["linearConfiguration"] = {
            "stepPercent": d.step_percent,
            "stepBakeTimeInMinutes": int((d.step_bake_s or 0) / 60),
        }
    if d.strategy == CANARY:
        cfg["canaryConfiguration"] = {
            "canaryPercent": d.step_percent,
            "canaryBakeTimeInMinutes": int((d.step_bake_s or 0) / 60),
        }
    if d.hooks:
        cfg["lifecycleHooks"] = [
            {
                "hookTargetArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mcp-hook",
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/ecs-hooks",
                "lifecycleStages": ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"],
            }
        ]
    return cfg


def _service_deployment(tl: Timeline, d: Deployment, at: float) -> dict[str, Any]:
    ended = d.end is not None and d.end <= at
    status = "IN_PROGRESS"
    if ended:
        status = {COMPLETED: "SUCCESSFUL", FAILED: "ROLLBACK_SUCCESSFUL"}.get(
            d.outcome or "", "STOPPED"
        )
    stage = next((s for t, s in reversed(d.stages) if t <= at), "RECONCILE_SERVICE")
    out: dict[str, Any] = {
        "serviceDeploymentArn": service_deployment_arn(d),
        "serviceArn": service_arn(d.service),
        "clusterArn": CLUSTER_ARN,
        "createdAt": d.start,
        "startedAt": d.start,
        "updatedAt": min(at, d.end) if d.end else at,
        "sourceServiceRevisions": [
            {
                "arn": service_revision_arn(d, d.source_revision),
                "requestedTaskCount": 0,
                "runningTaskCount": 0,
                "pendingTaskCount": 0,
            }
        ],
        "targetServiceRevision": {
            "arn": service_revision_arn(d, d.revision),
            "requestedTaskCount": 0,
            "runningTaskCount": 0,
            "pendingTaskCount": 0,
        },
        "status": status,
        "statusReason": d.reason or "",
        "lifecycleStage": stage,
        "deploymentConfiguration": _deployment_configuration(d),
        "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 0, "threshold": 3},
    }
    if ended:
        out["finishedAt"] = d.end
    if d.rollback_of:
        out["rollback"] = {
            "reason": d.reason,
            "startedAt": d.start,
            "serviceRevisionArn": service_revision_arn(d, d.revision),
        }
    return out


# ---- Events and lines: the world's shapes (``world.ecs``, ``world.server_logs``) ----


def _ref(service: str) -> ServiceRef:
    return ServiceRef(REGION, ACCOUNT, CLUSTER, service, FAMILY)


def _exit_code(task: Task) -> int:
    # A crashed essential container exits 1; SIGTERM honoured 143; SIGKILL after the stop timeout
    # (or a lost host) 137.
    return 1 if task.stop_code == STOP_ESSENTIAL_EXIT else 143 if task.graceful else 137


def task_event(
    task: Task, t: float, last: str, desired: str, version: int, n: int
) -> dict[str, Any]:
    """ECS's view of ``task`` at ``t`` (``last``/``desired`` status) as EventBridge delivers it."""
    stopping = desired == "STOPPED"
    ended = last in ("DEPROVISIONING", "STOPPED") and task.stopped is not None
    record = TaskRecord(
        task_id=task.id,
        started_by=task.started_by,
        revision=str(task.revision),
        created_at=task.start - 30,
        started_at=task.start if last != "PENDING" else None,
        stopping_at=task.stopping if stopping else None,
        stopped_at=task.stopped if last == "STOPPED" else None,
        execution_stopped_at=task.stopped - 3 if ended and task.stopped is not None else None,
        stop_code=task.stop_code if stopping and task.stop_code else None,
        stopped_reason=task.reason if stopping else None,
        exit_code=_exit_code(task) if last == "STOPPED" else None,
        version=version - 1,  # task_event counts this change
        capacity_provider="FARGATE_SPOT" if task.spot else "FARGATE",
        availability_zone="abc"[int(task.id[-1], 16) % 3],
    )
    return world_task_event(_ref(task.service), record, last, desired, t).envelope(
        _ref(task.service), n
    )


def deployment_event(d: Deployment, state: str, t: float, reason: str, n: int) -> dict[str, Any]:
    ref = _ref(d.service)
    return world_deployment_event(ref, d.id, f"SERVICE_DEPLOYMENT_{state}", t, reason).envelope(
        ref, n
    )


def hook_event(d: Deployment, stage: str, status: str, t: float, n: int) -> dict[str, Any]:
    ref = _ref(d.service)
    return world_hook_event(ref, d.id, stage, status, t).envelope(ref, n)


def service_action(service: str, name: str, t: float, n: int) -> dict[str, Any]:
    ref = _ref(service)
    return service_action_event(ref, name, t).envelope(ref, n)


def log_line(event: str, task: Task, t: float, **fields: Any) -> str:
    """The line the server on ``task`` writes for ``event`` at true time ``t`` (the server's
    own logger), stamped by the task's own clock (``Task.clock_offset``)."""
    return server_line(event, task.id, t + task.clock_offset, **fields)


# ---- The simulation ----


class _World:
    """Builds one timeline: the tasks and deployments first, then the clients over them."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 -- reproducible synthetic load
        # The tasks' clock offsets: a draw of their own, so the story does not depend on them.
        self.clocks = random.Random(seed * 131 + 3)  # noqa: S311 -- reproducible synthetic load
        self.seed = seed
        self.tasks: dict[str, Task] = {}
        self.deployments: dict[str, Deployment] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.desired: dict[str, int] = {}
        self.primary: dict[str, Deployment] = {}
        self.revision: dict[str, int] = {}
        self.ecs: list[tuple[float, dict[str, Any]]] = []
        self.logs: list[tuple[float, str, str]] = []
        self.losses: list[Loss] = []
        self.shapes: list[str] = []
        self._n = 0
        self._task_version: dict[str, int] = {}
        self.open_sessions: dict[str, dict[str, float]] = {}

    # -- ids and emission --

    def _next(self) -> int:
        self._n += 1
        return self._n

    def dep_id(self) -> str:
        return f"ecs-svc/{self.rng.randrange(10**18, 10**19)}"

    def emit_task(self, task: Task, t: float, last: str, desired: str) -> None:
        v = self._task_version.get(task.id, 0) + 1
        self._task_version[task.id] = v
        self.ecs.append((t, task_event(task, t, last, desired, v, self._next())))

    def emit_deployment(self, d: Deployment, state: str, t: float, reason: str) -> None:
        self.ecs.append((t, deployment_event(d, state, t, reason, self._next())))

    # -- tasks --

    def start_task(self, service: str, dep: Deployment, t: float) -> Task:
        if dep.start > T_BASE - 60:  # ECS creates a deployment's tasks after the deployment
            t = max(t, dep.start + 31.0)
        task = Task(f"{self.rng.getrandbits(128):032x}", service, dep.id, dep.revision, t)
        task.spot = self.rng.random() < 0.3
        task.clock_offset = self.clocks.uniform(-CLOCK_ERROR_S, CLOCK_ERROR_S)
        self.tasks[task.id] = task
        if t > T_BASE - 60:
            self.emit_task(task, t - 20, "PENDING", "RUNNING")
        self.emit_task(task, t, "RUNNING", "RUNNING")
        self.logs.append(
            (
                t + 1,
                task.id,
                log_line(
                    contract.EVENT_TASK_STARTED,
                    task,
                    t + 1,
                    task_arn=task.arn,
                    cluster=CLUSTER,
                    family=FAMILY,
                    revision=str(task.revision),
                    availability_zone=None,
                ),
            )
        )
        return task

    def stop_task(
        self,
        task: Task,
        t: float,
        cause: Cause,
        *,
        code: str,
        reason: str,
        charged_to: str | None = None,
        graceful: bool = True,
        drain: bool = True,
    ) -> None:
        if task.stopping is not None or task.stopped is not None:
            return  # a task stops once: stories are written out of time order
        task.stop_code, task.reason, task.cause, task.charged_to = code, reason, cause, charged_to
        task.graceful = graceful
        if drain:
            task.stopping = t
            sigterm = t + (DEREGISTRATION_DELAY_S if code == SCHED else 0.0)
            task.stopped = sigterm + self.rng.uniform(2, 8)
            self.emit_task(task, t, "RUNNING", "STOPPED")
            self.emit_task(task, task.stopped - 2, "DEPROVISIONING", "STOPPED")
        else:
            task.stopped = t
            sigterm = t
        self.emit_task(task, task.stopped, "STOPPED", "STOPPED")
        task.sigterm = sigterm

    def alive(self, service: str, t: float) -> list[Task]:
        return [
            k
            for k in self.tasks.values()
            if k.service == service and k.start <= t and (k.stopping or k.stopped or 1e30) > t
        ]

    # -- services and deployments --

    def add_service(self, name: str, strategy: str) -> None:
        n = self.rng.randint(2, 5)
        self.desired[name] = n
        rev = self.rng.randint(3, 40)
        self.revision[name] = rev
        d0 = Deployment(self.dep_id(), name, strategy, T_BASE - 86_400, rev, rev - 1)
        d0.end, d0.outcome = T_BASE - 86_000, COMPLETED
        self.deployments[d0.id] = d0
        self.primary[name] = d0
        if strategy == ROLLING:
            d0.min_healthy, d0.max_percent = self.rng.choice([(100, 200), (50, 100), (50, 150)])
        else:
            d0.bake_s = self.rng.choice([60.0, 120.0, 300.0])
            d0.hooks = self.rng.random() < 0.5
            if strategy == LINEAR:
                d0.step_percent, d0.step_bake_s = self.rng.choice([25.0, 50.0]), 60.0
            if strategy == CANARY:
                d0.step_percent, d0.step_bake_s = self.rng.choice([10.0, 20.0]), 120.0
        self.services[name] = {
            "serviceArn": service_arn(name),
            "serviceName": name,
            "clusterArn": CLUSTER_ARN,
            "status": "ACTIVE",
            "desiredCount": n,
            "launchType": "FARGATE",
            "taskDefinition": task_definition_arn(rev),
            "deploymentController": {"type": "ECS"},
            "deploymentConfiguration": _deployment_configuration(d0),
            "loadBalancers": [
                {"targetGroupArn": TG_ARN, "containerName": "mcp-server", "containerPort": 8000}
            ],
        }
        for _ in range(n):
            self.start_task(name, d0, T_BASE - 3600 + self.rng.uniform(0, 60))

    def new_deployment(
        self, service: str, t: float, *, rollback_of: Deployment | None = None
    ) -> Deployment:
        base = self.primary[service]
        if rollback_of is None:
            self.revision[service] += 1
            rev = self.revision[service]
        else:
            rev = rollback_of.source_revision
        d = Deployment(
            self.dep_id(),
            service,
            base.strategy,
            t,
            rev,
            self.primary[service].revision,
            min_healthy=base.min_healthy,
            max_percent=base.max_percent,
            bake_s=base.bake_s,
            step_percent=base.step_percent,
            step_bake_s=base.step_bake_s,
            hooks=base.hooks,
        )
        if rollback_of is not None:
            d.rollback_of = rollback_of.id
            d.reason = (
                f"ECS deployment circuit breaker: rolling back to deploymentId "
                f"{self.primary_before_failed(rollback_of).id}."
            )
        else:
            d.reason = f"ECS deployment {d.id} in progress."
        self.deployments[d.id] = d
        self.emit_deployment(d, "IN_PROGRESS", t, d.reason)
        self.primary[service] = d
        return d

    def primary_before_failed(self, failed: Deployment) -> Deployment:
        earlier = [
            d
            for d in self.deployments.values()
            if d.service == failed.service and d.start < failed.start and d.outcome == COMPLETED
        ]
        return max(earlier, key=lambda d: d.start)

    def finish(self, d: Deployment, t: float, outcome: str, reason: str | None = None) -> None:
        d.end, d.outcome = t, outcome
        state = "COMPLETED" if outcome == COMPLETED else "FAILED"
        self.emit_deployment(d, state, t, reason or f"ECS deployment {d.id} completed.")
        if outcome == COMPLETED:
            self.ecs.append(
                (t + 1, service_action(d.service, "SERVICE_STEADY_STATE", t + 1, self._next()))
            )

    def replace(self, d: Deployment, old: Task, t: float) -> None:
        """The scheduler stops ``old`` for rollout ``d`` (the reason names old's own start)."""
        self.stop_task(
            old,
            t,
            Cause.DEPLOYMENT,
            code=SCHED,
            reason=scheduler_reason(old.started_by),
            charged_to=d.id,
        )

    def rolling(
        self, d: Deployment, t: float, *, until: float | None = None, old: list[Task] | None = None
    ) -> float:
        """A rolling update in waves; returns when it ended (or ``until``, if superseded)."""
        n = self.desired[d.service]
        min_running = math.ceil(n * d.min_healthy / 100)
        max_total = max(n, math.floor(n * d.max_percent / 100))
        olds = list(old) if old is not None else [k for k in self.alive(d.service, t)]
        olds = [k for k in olds if k.started_by != d.id]
        new: list[Task] = [k for k in self.alive(d.service, t) if k.started_by == d.id]
        t += self.rng.uniform(3, 10)
        limit = until if until is not None else math.inf
        while olds or len(new) < n:
            if t >= limit:
                return t
            k = min(n - len(new), max_total - (len(olds) + len(new)))
            for _ in range(max(0, k)):
                at = t + self.rng.uniform(5, 25)
                if at >= limit:
                    return t
                new.append(self.start_task(d.service, d, at))
            if k > 0:
                t += 25 + HEALTHY_AFTER_S
            j = min(len(olds), len(olds) + len(new) - min_running)
            if j <= 0 and k <= 0:
                j = 1  # keep moving (a service of very few tasks)
            for victim in olds[: max(0, j)]:
                at = t + self.rng.uniform(0, 3)
                if at >= limit - 1:
                    return t
                self.replace(d, victim, at)
                olds.remove(victim)
            if j > 0:
                t += DEREGISTRATION_DELAY_S + 10
        return t + self.rng.uniform(20, 60)

    def traffic_shift(self, d: Deployment, t: float) -> float:
        """BLUE_GREEN / LINEAR / CANARY: green up, shift (in steps), bake, clean up blue."""
        blue = [k for k in self.alive(d.service, t) if k.started_by != d.id]
        stages = d.stages
        stages.append((t, "PRE_SCALE_UP"))
        stages.append((t + 2, "SCALE_UP"))
        for _ in range(self.desired[d.service]):
            self.start_task(d.service, d, t + self.rng.uniform(5, 20))
        t += 20 + HEALTHY_AFTER_S
        stages += [(t, "POST_SCALE_UP"), (t + 5, "TEST_TRAFFIC_SHIFT")]
        t += 15
        stages.append((t, "POST_TEST_TRAFFIC_SHIFT"))
        t += 5
        if d.strategy == BLUE_GREEN:
            steps = [1.0]
            step_bake = 0.0
        elif d.strategy == LINEAR:
            pct = (d.step_percent or 25.0) / 100
            steps = [min(1.0, pct * i) for i in range(1, math.ceil(1 / pct) + 1)]
            step_bake = d.step_bake_s or 60.0
        else:
            steps = [(d.step_percent or 10.0) / 100, 1.0]
            step_bake = d.step_bake_s or 120.0
        for w in steps:
            stages.append((t, "PRODUCTION_TRAFFIC_SHIFT"))
            d.shifts.append((t + 1, w))
            t += step_bake if w < 1.0 else 3
        stages.append((t, "POST_PRODUCTION_TRAFFIC_SHIFT"))
        t += 2
        stages.append((t, "BAKE_TIME"))
        t += d.bake_s or 60.0
        stages.append((t, "CLEAN_UP"))
        for k in blue:
            if k.stopping is None and k.stopped is None:
                self.replace(d, k, t + self.rng.uniform(0, 2))
        t += DEREGISTRATION_DELAY_S + 15
        if d.hooks:
            for at, stage in stages:
                if stage in ("POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"):
                    self.ecs.append((at, hook_event(d, stage, "IN_PROGRESS", at, self._next())))
                    self.ecs.append(
                        (at + 2, hook_event(d, stage, "SUCCEEDED", at + 2, self._next()))
                    )
        return t

    # -- incidents --

    def incident(self, service: str, t: float, kind: str) -> None:
        alive = [k for k in self.alive(service, t) if k.receiving(t) and k.stopped is None]
        if not alive:
            return
        victim = self.rng.choice(alive)
        if kind == "spot":
            if not victim.spot:
                return
            self.stop_task(
                victim,
                t,
                Cause.INFRASTRUCTURE,
                code=STOP_SPOT,
                reason=SPOT_REASON,
            )
        elif kind == "crash":
            self.stop_task(
                victim,
                t,
                Cause.TASK_FAILURE,
                code=STOP_ESSENTIAL_EXIT,
                reason=CRASH_REASON,
                graceful=False,
                drain=False,
            )
        else:
            self.stop_task(
                victim,
                t,
                Cause.TASK_FAILURE,
                code=SCHED,
                reason=health_check_reason(TG_ARN),
            )
        self.shapes.append(kind)
        self.start_task(service, self.primary[service], t + self.rng.uniform(20, 40))

    def scale_in(self, service: str, t: float, of: Deployment, label: str) -> None:
        alive = [
            k
            for k in self.alive(service, t)
            if k.started_by == of.id and k.receiving(t) and k.stopped is None
        ]
        if len(alive) < 2:
            return
        victim = self.rng.choice(alive)
        self.desired[service] -= 1
        self.stop_task(
            victim,
            t,
            Cause.SCALE_IN,
            code=SCHED,
            reason=scheduler_reason(victim.started_by),
        )
        self.shapes.append(label)

    # -- stories per service --

    def story(self, service: str, t: float) -> float:
        strategy = self.primary[service].strategy
        kind = self.rng.random()
        if strategy == ROLLING and kind < 0.25:
            return self.rollback_story(service, t)
        if strategy == ROLLING and kind < 0.45:
            return self.back_to_back(service, t)
        d = self.new_deployment(service, t)
        label = strategy.lower()
        if strategy == ROLLING:
            label += f"(min={d.min_healthy},max={d.max_percent})"
        elif d.hooks:
            label += "+hooks"
        self.shapes.append(label)
        if strategy == ROLLING:
            if self.rng.random() < 0.2:  # scale-in during, of a task the rollout started
                end = self.rolling(d, t, until=t + 150)
                self.scale_in(service, end + 1, d, "scale-in-during")
                end = self.rolling(d, end + 2)
            else:
                end = self.rolling(d, t)
        else:
            end = self.traffic_shift(d, t)
        self.finish(d, end, COMPLETED)
        if self.rng.random() < 0.3:
            self.scale_in(service, end + 15, d, "scale-in-15s-after")
        return end

    def rollback_story(self, service: str, t: float) -> float:
        a = self.new_deployment(service, t)
        self.shapes.append("rollback")
        n = self.desired[service]
        olds = [k for k in self.alive(service, t) if k.started_by != a.id]
        min_running = math.ceil(n * a.min_healthy / 100)
        t += 5
        # A's first wave: stop what minimumHealthyPercent allows, start new tasks.
        room = max(0, len(olds) - min_running)
        for victim in olds[:room]:
            self.replace(a, victim, t + self.rng.uniform(0, 2))
        t += 5
        healthy = self.start_task(service, a, t)  # one new task passes and serves
        failures = 0
        tf = t
        while failures < 3:
            bad = self.start_task(service, a, tf + self.rng.uniform(1, 5))
            tf = bad.start + self.rng.uniform(40, 70)
            self.stop_task(
                bad,
                tf,
                Cause.TASK_FAILURE,
                code=SCHED,
                reason=health_check_reason(TG_ARN),
            )
            failures += 1
        t = tf + 10
        self.finish(a, t, FAILED, "ECS deployment circuit breaker: tasks failed to start.")
        r = self.new_deployment(service, t + 0.5, rollback_of=a)
        t += 5
        for _ in range(max(0, n - len(self.alive(service, t)) + 1)):
            self.start_task(service, r, t + self.rng.uniform(3, 10))
        t += 20 + HEALTHY_AFTER_S
        if healthy.stopping is None:
            self.replace(r, healthy, t)
        t += DEREGISTRATION_DELAY_S + 20
        self.finish(r, t, COMPLETED)
        return t

    def back_to_back(self, service: str, t: float) -> float:
        d1 = self.new_deployment(service, t)
        self.shapes.append("back-to-back")
        t2 = t + self.rng.uniform(60, 150)
        self.rolling(d1, t, until=t2)
        d1.end, d1.outcome = t2, SUPERSEDED
        d2 = self.new_deployment(service, t2)
        end = self.rolling(d2, t2)
        self.finish(d2, end, COMPLETED)
        return end

    # -- clients --

    def pools(
        self, service: str, t: float
    ) -> tuple[Deployment | None, list[tuple[float, list[Task]]]]:
        """The ALB's choice at ``t``: target groups with their weights, and the traffic-shifting
        deployment that set the weights (None: one group, every registered target)."""
        receiving = [k for k in self.tasks.values() if k.service == service and k.receiving(t)]
        shifting = [
            d
            for d in self.deployments.values()
            if d.service == service
            and d.strategy in TRAFFIC_SHIFTING
            and d.start <= t
            and (d.end is None or t < d.end)
        ]
        if not shifting:
            return None, [(1.0, receiving)]
        d = shifting[-1]
        w = d.green_weight(t)
        green = [k for k in receiving if k.started_by == d.id]
        blue = [k for k in receiving if k.started_by != d.id]
        if w <= 0 or not green:
            return d, [(1.0, blue)]
        if w >= 1 or not blue:
            return d, [(1.0, green)]
        return d, [(1 - w, blue), (w, green)]

    def route(
        self, service: str, t: float, origin: Task | None, cookie: bool
    ) -> tuple[Task | None, str]:
        """Where the ALB sends a request at ``t``, and why it did not reach ``origin``.

        The ALB first draws a target group by weight (no target-group stickiness), then, within
        it, honours the stickiness cookie if the client sent one and its target is registered
        and not draining; otherwise it picks a target. Returns (target, why): ``"origin"`` (it
        reached the origin), ``"origin-gone"`` (the origin was draining or stopped),
        ``"shift"`` (the weighted draw chose the group the origin is not in), ``"no-cookie"``
        (same group, but no cookie to find the origin), ``"new"`` (no origin yet).
        """
        _, pools = self.pools(service, t)
        pools = [(w, p) for w, p in pools if p]
        if not pools:
            return None, ""
        r, acc = self.rng.random(), 0.0
        chosen = pools[-1][1]
        for w, p in pools:
            acc += w
            if r < acc:
                chosen = p
                break
        if origin is None:
            return self.rng.choice(chosen), "new"
        if not origin.receiving(t):
            return self.rng.choice(chosen), "origin-gone"
        if origin not in chosen:
            return self.rng.choice(chosen), "shift"
        if cookie:
            return origin, "origin"
        pick = self.rng.choice(chosen)
        return pick, "origin" if pick is origin else "no-cookie"

    def why_lost(self, origin: Task, why: str, t: float) -> tuple[Cause, str | None, str]:
        """The ground truth of a request that did not reach its session's task, from the story:
        what the story did to the origin (stopped it, and for what), which deployment set the
        weights that moved the request, or that the client sent no cookie."""
        if why == "origin-gone":
            gone = origin.stopping if origin.stopping is not None else origin.stopped
            assert origin.cause is not None and gone is not None  # an origin served the session
            soon = "-within-6s" if t - gone < SKEW_S else ""
            return origin.cause, origin.charged_to, f"origin-stopped:{origin.stop_code}{soon}"
        dep, _ = self.pools(origin.service, t)
        if why == "shift":
            assert dep is not None
            # A session on the new revision drawn back to the old one (a partial shift) is lost
            # to the same deployment: its weights moved the request.
            back = "-from-new-revision" if origin.started_by == dep.id else ""
            return (
                Cause.DEPLOYMENT,
                dep.id,
                f"{dep.strategy.lower()}-shift-w{dep.green_weight(t)}{back}",
            )
        rolling = any(
            d.service == origin.service and d.start <= t and (d.end is None or t < d.end)
            for d in self.deployments.values()
        )
        gone = origin.stopping if origin.stopping is not None else origin.stopped
        # Seconds before its origin's drain: the client's own hop, but within the clocks'
        # disagreement of the stop (docs/architecture.md), so the facts cannot tell them apart.
        soon = "-6s-before-drain" if gone is not None and 0 <= gone - t < SKEW_S else ""
        return (
            Cause.STICKINESS,
            None,
            "cookie-less" + ("-during-deployment" if rolling else "") + soon,
        )

    def client(self, service: str, arrival: float, end: float) -> None:
        rng = self.rng
        cookie = rng.random() < 0.88
        lifetime = rng.uniform(120, 1500) if cookie else rng.uniform(30, 240)
        gap = rng.uniform(10, 60)
        t = arrival
        origin, _ = self.route(service, t, None, cookie)
        if origin is None:
            return
        raw = f"{self.seed}-{rng.getrandbits(96):024x}"
        created = t
        self.create(origin, raw, t)
        idle_done = False
        while t < min(arrival + lifetime, end):
            step = rng.expovariate(1 / gap)
            if not idle_done and rng.random() < 0.04:
                step = IDLE_TIMEOUT_S + rng.uniform(30, 900)  # the client went idle
                idle_done = True
            last = t
            t += max(1.0, step)
            gone = origin.stopping if origin.stopping is not None else origin.stopped
            if gone is not None and last < gone < t and rng.random() < 0.3:
                t = gone + rng.uniform(0.2, SKEW_S)  # a request seconds after the drain began
            if t >= end:
                return
            expiry = last + IDLE_TIMEOUT_S
            if t > expiry and (gone is None or expiry < gone):
                # The SDK expired the idle session on its task (the server logs the close); the
                # client's return is a 404 wherever it lands: lost to the expiry, not to what
                # happened to the task afterwards.
                self.log_idle_close(origin, expiry, raw, created)
                serving, _ = self.route(service, t, origin, cookie)
                if serving is None:
                    return
                shape = "idle-expired" + ("" if serving is origin else "-elsewhere")
                if gone is not None and gone < t:
                    shape += "-task-replaced-since"
                self.not_found(origin, serving, raw, t, Cause.EXPIRED, None, shape, expiry)
                raw, origin, created = self.reinit(serving, t + 0.5)
                continue
            closed_at = None
            if t > expiry and gone is not None and gone <= expiry < self.process_end(origin):
                # Idle past its expiry while its task drained: the server still runs until
                # SIGTERM (ECS sends it after the deregistration delay), so the SDK expires the
                # session and the server logs the close; the drain made it unreachable first,
                # so it is the drain's loss (why_lost), its close stamped seconds after the drain.
                self.log_idle_close(origin, expiry, raw, created)
                closed_at = expiry
            serving, why = self.route(service, t, origin, cookie)
            if serving is None:
                return
            if why == "origin":
                continue
            cause, dep, shape = self.why_lost(origin, why, t)
            if closed_at is not None:
                shape += "-idle-closed-while-draining"
            self.not_found(origin, serving, raw, t, cause, dep, shape, closed_at)
            if rng.random() < 0.2:  # the client retried once before re-initializing
                self.log(
                    serving,
                    t + 0.3,
                    contract.EVENT_SESSION_NOT_FOUND,
                    raw,
                    http_method="POST",
                    jsonrpc_code=-32600,
                    http_status=404,
                )
            raw, origin, created = self.reinit(serving, t + 0.6)
        if origin.receiving(t):
            self.log(
                origin,
                t,
                contract.EVENT_SESSION_CLOSED,
                raw,
                reason=contract.CLOSE_CLIENT_DELETE,
                age_s=int(t - created),
            )

    @staticmethod
    def process_end(task: Task) -> float:
        """When the server process on ``task`` stops logging: SIGTERM for a graceful stop (it
        then closes what is open, ``shutdown_logs``), the stop itself for a crash."""
        end = task.sigterm if task.graceful and task.sigterm is not None else task.stopped
        return math.inf if end is None else end

    def reinit(self, on: Task, t: float) -> tuple[str, Task, float]:
        raw = f"{self.seed}-{self.rng.getrandbits(96):024x}"
        self.create(on, raw, t)
        return raw, on, t

    def create(self, task: Task, raw: str, t: float) -> None:
        self.open_sessions.setdefault(task.id, {})[raw] = t
        self.log(task, t, contract.EVENT_SESSION_CREATED, raw, protocol_version="2025-11-25")

    def log(self, task: Task, t: float, event: str, raw: str, **fields: Any) -> None:
        if event != contract.EVENT_SESSION_CREATED and event != contract.EVENT_SESSION_NOT_FOUND:
            self.open_sessions.get(task.id, {}).pop(raw, None)
        self.logs.append((t, task.id, log_line(event, task, t, session=fingerprint(raw), **fields)))

    def log_idle_close(self, task: Task, expiry: float, raw: str, created: float) -> None:
        """The SDK expired an idle session on ``task``: the server's close line."""
        self.log(
            task,
            expiry,
            contract.EVENT_SESSION_CLOSED,
            raw,
            reason=contract.CLOSE_IDLE_TIMEOUT,
            age_s=int(expiry - created),
        )

    def not_found(
        self,
        origin: Task,
        serving: Task,
        raw: str,
        t: float,
        cause: Cause,
        dep: str | None,
        shape: str,
        closed_at: float | None = None,
    ) -> None:
        self.log(
            serving,
            t,
            contract.EVENT_SESSION_NOT_FOUND,
            raw,
            http_method="POST",
            jsonrpc_code=-32600,
            http_status=404,
        )
        self.losses.append(
            Loss(
                fingerprint(raw),
                origin.service,
                origin.id,
                serving.id,
                t,
                cause,
                dep,
                shape,
                closed_at,
            )
        )

    def shutdown_logs(self) -> None:
        """What each gracefully stopped task printed at SIGTERM: its open sessions closed."""
        for task in self.tasks.values():
            if task.stopped is None or not task.graceful:
                continue
            at = task.sigterm if task.sigterm is not None else task.stopped
            still = [
                raw
                for raw, created in self.open_sessions.get(task.id, {}).items()
                if created < at  # closes remove a session from open_sessions as they are logged
            ]
            fps = [fingerprint(r) for r in still]
            self.logs.append(
                (
                    at,
                    task.id,
                    log_line(
                        contract.EVENT_SHUTDOWN_STARTED,
                        task,
                        at,
                        signal="SIGTERM",
                        active_sessions=len(fps),
                        sessions=fps[:1000],
                    ),
                )
            )
            for raw in still:
                self.logs.append(
                    (
                        at + 0.1,
                        task.id,
                        log_line(
                            contract.EVENT_SESSION_CLOSED,
                            task,
                            at + 0.1,
                            session=fingerprint(raw),
                            reason=contract.CLOSE_SHUTDOWN,
                            age_s=int(at - self.open_sessions[task.id][raw]),
                        ),
                    )
                )

    def unknown_sessions(self, service: str, start: float, end: float) -> None:
        for _ in range(self.rng.randint(0, 2)):
            t = self.rng.uniform(start, end)
            serving, _ = self.route(service, t, None, False)
            if serving is None:
                continue
            raw = f"stale-{self.rng.getrandbits(64):016x}"
            self.log(
                serving,
                t,
                contract.EVENT_SESSION_NOT_FOUND,
                raw,
                http_method="POST",
                jsonrpc_code=-32600,
                http_status=404,
            )
            self.losses.append(
                Loss(
                    fingerprint(raw),
                    service,
                    "",
                    serving.id,
                    t,
                    Cause.UNKNOWN,
                    None,
                    "never-created",
                )
            )


def generate(seed: int, load: float = 1.0) -> Timeline:
    """One seeded timeline: same seed (and load), same timeline.

    ``load`` scales the rate of new clients (1.0: one every 20-45 s per service); CI samples
    use a lighter load to stay fast.
    """
    w = _World(seed)
    rng = w.rng
    n_services = 1 if rng.random() < 0.7 else 2
    names = [f"mcp-{i}" for i in range(n_services)]
    for name in names:
        w.add_service(name, rng.choice(STRATEGIES))
    end = T_BASE
    for name in names:
        t = T_BASE + rng.uniform(200, 400)
        for _ in range(rng.choice([1, 1, 2])):
            if rng.random() < 0.25:  # an incident outside any deployment
                w.incident(name, t - rng.uniform(100, 250), rng.choice(["spot", "crash", "health"]))
            t = w.story(name, t) + rng.uniform(120, 300)
        if rng.random() < 0.2:
            w.incident(name, t, rng.choice(["spot", "crash", "health"]))
            t += 120
        end = max(end, t)
    end += 180
    # Clients: about one new session every 10-20 s per service, from before the first rollout.
    # Incidents change the tasks only, so all tasks are known before any client is simulated.
    for name in names:
        t = T_BASE - 300
        rate = rng.uniform(1 / 45, 1 / 20) * load
        while t < end - 60:
            t += rng.expovariate(rate)
            w.client(name, t, end)
        w.unknown_sessions(name, T_BASE, end)
    w.shutdown_logs()
    w.ecs.sort(key=lambda e: e[0])
    w.logs.sort(key=lambda e: e[0])
    first: dict[str, Loss] = {}
    for loss in sorted(w.losses, key=lambda x: x.at):
        first.setdefault(loss.fp, loss)
    # One timeline in ten has all its ECS events later than the grace period (an EventBridge
    # backlog): a separate draw, so the rest of the story does not depend on it.
    late_rng = random.Random(seed * 31 + 7)  # noqa: S311 -- reproducible synthetic load
    ecs_late_s = late_rng.uniform(150, 300) if late_rng.random() < 0.1 else None
    if ecs_late_s is not None:
        w.shapes.append(f"ecs-late-{ecs_late_s:.0f}s")
    return Timeline(
        seed=seed,
        shapes=w.shapes,
        services={n: w.services[n] for n in names},
        deployments=w.deployments,
        tasks=w.tasks,
        ecs_events=w.ecs,
        log_lines=w.logs,
        losses=list(first.values()),
        end=end,
        ecs_late_s=ecs_late_s,
    )


# ---- Delivery ----


@dataclass(frozen=True)
class Delivery:
    """One Lambda invocation: when it runs, which handler, with what event."""

    at: float
    kind: str  # "ecs" | "logs"
    payload: dict[str, Any]


def subscription_payload(task: str, lines: list[tuple[float, str]], n: int) -> dict[str, Any]:
    """The Logs subscription payload for a batch of ``task``'s lines (its own log stream)."""
    events = [(int(t * 1000), m) for t, m in lines]
    return world_subscription_payload(
        LOG_GROUP, log_stream(task), FILTER_NAME, events, first_id=n * 10_000
    )


def deliver(tl: Timeline, seed: int, grace_s: float) -> list[Delivery]:
    """Invocations in the order Lambda would run them: late, reordered, some twice.

    ECS events: 85% arrive 0.5-8 s late, 12% 10-90 s, 3% later than the grace period; in a
    timeline with ``ecs_late_s`` every one arrives that late (plus 0-30 s). 4% are delivered a
    second time. Log lines: per log stream, batched over 0-5 s windows (at most 50
    lines), delivered 1-15 s later (2% 30-100 s); 3% of batches are delivered twice.
    """
    rng = random.Random(seed * 7919 + 17)  # noqa: S311 -- reproducible synthetic load
    out: list[Delivery] = []
    for t, event in tl.ecs_events:
        r = rng.random()
        delay = (
            rng.uniform(0.5, 8)
            if r < 0.85
            else rng.uniform(10, 90)
            if r < 0.97
            else rng.uniform(grace_s + 10, grace_s + 200)
        )
        if tl.ecs_late_s is not None:
            delay = tl.ecs_late_s + rng.uniform(0, 30)
        out.append(Delivery(t + delay, "ecs", event))
        if rng.random() < 0.04:
            out.append(Delivery(t + delay + rng.uniform(1, 120), "ecs", event))
    by_task: dict[str, list[tuple[float, str]]] = {}
    for t, task, line in tl.log_lines:
        by_task.setdefault(task, []).append((t, line))
    n = 0
    for task, lines in by_task.items():
        i = 0
        while i < len(lines):
            start = lines[i][0]
            window = rng.uniform(0, 5)
            batch: list[tuple[float, str]] = []
            while i < len(lines) and lines[i][0] <= start + window and len(batch) < 50:
                batch.append(lines[i])
                i += 1
            n += 1
            payload = subscription_payload(task, batch, n)
            delay = rng.uniform(1, 15) if rng.random() < 0.98 else rng.uniform(30, 100)
            at = batch[-1][0] + delay
            out.append(Delivery(at, "logs", payload))
            if rng.random() < 0.03:
                out.append(Delivery(at + rng.uniform(5, 200), "logs", payload))
    out.sort(key=lambda d: d.at)
    return out
