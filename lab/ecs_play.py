"""What ECS (and the ALB) do in each scenario, step by step, on the lab's cluster.

Each play is a plain function over a ``Stage`` (the cluster, the event sink, the scenario's
settings) that moves real tasks and the real load balancer in the order ECS documents, emits the
ECS events AWS would send, and returns what it did (``Played``): which deployment replaced which
task (the ground truth the verdicts and report counts are checked against), and how a rollout
ended. Times that are minutes in AWS (bake times, health check thresholds) are divided by the
lab's time scale.

- ``rolling``: waves set by minimumHealthyPercent / maximumPercent. With 100/200 (the default)
  all replacements start first, then every old task is deregistered at once; with 50/100 half
  the old tasks are stopped first, their replacements started, and so on. Between waves ECS
  waits for the replacements to be healthy in the target group (ALB: 5 checks 30 s apart), and
  with deployment alarms set to roll back it stops at an alarm in ALARM: the deployment FAILED,
  a rollback deployment replaces the rollout's tasks with the previous revision, and the
  remaining old tasks are never replaced.
- ``blue_green`` (also canary / linear): ECS native traffic shifting between two target groups:
  green tasks scale up, production traffic shifts in steps (each step baked), the whole
  shift is baked (blue keeps RUNNING), then blue is cleaned up. ``ECS Hook State Change`` events
  are sent for the stages the service has hooks on.
- ``circuit_breaker``: the new revision's tasks never pass their health checks; the circuit
  breaker fails the deployment and a rollback deployment replaces the old tasks with new ones of
  the previous revision.
- ``scale_in`` / ``spot`` / ``crash``: one task stops outside any deployment (the scheduler
  scaling in, a Fargate Spot interruption, a container that dies), and ECS starts a replacement
  where the service is still at its desired count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lab.cluster import Cluster, LabTask
from lab.ecs_api import LabEcsApi
from sessionwatch.ops.audit_survival import starts_replacements_first, tasks_per_wave
from world.ecs import (
    CIRCUIT_BREAKER_FAILED,
    ROLLBACK_REASON,
    SPOT_REASON,
    STOP_SPOT,
    EcsEvent,
    ServiceRef,
    deployment_event,
    hook_event,
    new_deployment_id,
    steady_state_event,
)

IN_PROGRESS = "SERVICE_DEPLOYMENT_IN_PROGRESS"
STOP_REQUEST = "stop request"  # StopServiceDeployment, stopType ROLLBACK
COMPLETED = "SERVICE_DEPLOYMENT_COMPLETED"
FAILED = "SERVICE_DEPLOYMENT_FAILED"
# ALB's default target group health check: healthy after 5 checks 30 s apart; ECS counts a new
# task healthy (and moves to the next wave) only then.
ALB_HEALTHY_S = 5 * 30.0
# ECS native blue/green lifecycle stages, in order (the ones a deployment passes through).
BLUE_GREEN_STAGES = (
    "RECONCILE_SERVICE",
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
)


@dataclass
class Stage:
    """Everything a play moves or reads."""

    cluster: Cluster
    emit: Callable[[EcsEvent], None]
    say: Callable[[str], None]
    ref: ServiceRef
    first_deployment: str
    deregistration_delay: float
    stop_timeout: float
    time_scale: float
    # Whether the deployment alarm has been in ALARM since the given time (CloudWatch's
    # evaluations up to now, replayed): ECS watches the alarm for the whole deployment.
    alarm_in_alarm: Callable[[float], bool] = lambda since: False
    # Told once production traffic has shifted (the lab starts its late clients then).
    shifted: Callable[[], None] = lambda: None
    # The service's POST_PRODUCTION_TRAFFIC_SHIFT hook (SessionWatch's drain gate), invoked as
    # ECS invokes a Lambda hook: payload in, {"hookStatus", "callBackDelay", "hookDetails"} out.
    gate: Callable[[dict[str, Any]], Any] | None = None
    # ListServiceDeployments / StopServiceDeployment (moto has neither): the play registers its
    # deployments there and honours a stop (ROLLBACK) as ECS does.
    ecs_api: LabEcsApi | None = None

    def scaled(self, aws_seconds: float) -> float:
        return aws_seconds / self.time_scale

    def event(
        self,
        deployment_id: str,
        name: str,
        reason: str | None = None,
        configuration: dict[str, Any] | None = None,
    ) -> None:
        """A deployment state change; an IN_PROGRESS registers the deployment with the ECS API
        stand-in, with the ``deploymentConfiguration`` it runs with (what DescribeServices and
        DescribeServiceDeployments answer the detectors; ROLLING when not given)."""
        if self.ecs_api is not None:
            if name == IN_PROGRESS:
                self.ecs_api.register(self.ref.service, deployment_id, configuration)
            else:
                self.ecs_api.finish(deployment_id, "SUCCESSFUL" if name == COMPLETED else "STOPPED")
        self.emit(deployment_event(self.ref, deployment_id, name, time.time(), reason))

    def stop_requested(self, deployment_id: str) -> bool:
        return self.ecs_api is not None and self.ecs_api.stop_requested(deployment_id) is not None

    def stop_all(self, tasks: list[LabTask]) -> None:
        """Deregister and stop ``tasks`` side by side, each in ECS's order."""
        with ThreadPoolExecutor(max_workers=max(1, len(tasks))) as pool:
            list(
                pool.map(
                    lambda t: self.cluster.stop(t, self.deregistration_delay, self.stop_timeout),
                    tasks,
                )
            )


@dataclass
class Played:
    """What a play did: the ground truth for the verdict check and the report."""

    deployments: dict[str, str] = field(default_factory=dict)  # role -> deployment id
    replaced_by: dict[str, str] = field(default_factory=dict)  # task id -> deployment id
    rolled_back_by: str | None = None  # "alarm" or "circuit breaker"
    open_at_start: dict[str, int] = field(default_factory=dict)  # task id -> sessions open
    never_replaced: list[str] = field(default_factory=list)  # task ids a rollback spared
    gate_calls: int = 0  # how many times ECS invoked the drain gate
    gate_held_s: float | None = None  # from its first call to its SUCCEEDED

    @property
    def deployment_id(self) -> str | None:
        return self.deployments.get("rollout")


def _replace(stage: Stage, played: Played, old: list[LabTask], by: str, revision: str) -> None:
    """Start-first replacement (maximumPercent 200): new tasks up and healthy, then old stop."""
    stage.cluster.launch(len(old), by, revision)
    for task in old:
        played.replaced_by[task.task_id] = by
    stage.stop_all(old)


def rolling(
    stage: Stage,
    *,
    min_healthy_percent: int = 100,
    max_percent: int = 200,
    alarms: bool = False,
    stops: bool = False,
) -> Played:
    """A rolling deployment to revision 2, in waves; rolls back on the alarm when ``alarms``,
    on a StopServiceDeployment (ROLLBACK) when ``stops``."""
    played = Played()
    dep = new_deployment_id()
    played.deployments["rollout"] = dep
    old = stage.cluster.running()
    n = len(old)
    began = time.time()
    rolling_config = {
        "strategy": "ROLLING",
        "minimumHealthyPercent": min_healthy_percent,
        "maximumPercent": max_percent,
    }
    stage.event(dep, IN_PROGRESS, configuration=rolling_config)
    stage.say(
        f"deployment {dep} IN_PROGRESS: {n} task(s), minimumHealthyPercent "
        f"{min_healthy_percent}, maximumPercent {max_percent}"
    )
    batch = max(1, tasks_per_wave(n, min_healthy_percent, max_percent))
    if batch >= n and starts_replacements_first(n, max_percent, batch):
        _replace(stage, played, old, dep, "2")
        _complete(stage, dep)
        return played
    waves = [old[i : i + batch] for i in range(0, n, batch)]
    pause = stage.scaled(ALB_HEALTHY_S)
    for number, wave in enumerate(waves, 1):
        stage.say(f"wave {number}/{len(waves)}: stopping {len(wave)} old task(s) first")
        for task in wave:
            played.replaced_by[task.task_id] = dep
        stage.stop_all(wave)
        new = stage.cluster.launch(len(wave), dep, "2")
        stage.say(
            f"wave {number}: replacements registered; ECS waits {pause:.1f} s for them to be "
            f"healthy in the target group ({ALB_HEALTHY_S:g} s at {stage.time_scale:g}x)"
        )
        trigger = _trigger_during(stage, began, pause, dep, alarms, stops)
        if trigger is not None:
            rest = [t for w in waves[number:] for t in w]
            _roll_back(stage, played, dep, new, trigger)
            played.never_replaced = [t.task_id for t in rest]
            stage.say(
                f"rolled back by the {trigger}: {len(rest)} old task(s) of the next wave(s) "
                "never replaced"
            )
            return played
    _complete(stage, dep)
    return played


def _trigger_during(
    stage: Stage, since: float, seconds: float, dep: str, alarms: bool, stops: bool
) -> str | None:
    """Wait ``seconds`` (the replacements' health checks), or less if the deployment alarm
    fires (``alarms``) or a StopServiceDeployment arrives (``stops``): what stopped it."""

    def trigger() -> str | None:
        if stops and stage.stop_requested(dep):
            return STOP_REQUEST
        if alarms and stage.alarm_in_alarm(since):
            return "alarm"
        return None

    deadline = time.time() + seconds
    while time.time() < deadline:
        if (found := trigger()) is not None:
            return found
        time.sleep(0.1)
    return trigger()


def _roll_back(stage: Stage, played: Played, failed: str, new: list[LabTask], trigger: str) -> None:
    """ECS's rollback: ``failed`` FAILED, a rollback deployment back to the first revision."""
    played.rolled_back_by = trigger
    reason = {
        "alarm": "ECS deployment alarm: one or more deployment alarms are in ALARM state.",
        # The developer guide documents the stop's states (ROLLBACK_REQUESTED, then the
        # rollback), not the event's wording: the lab words it like the other triggers.
        STOP_REQUEST: "ECS deployment stop request: rollback requested.",
    }.get(trigger, CIRCUIT_BREAKER_FAILED)
    stage.event(failed, FAILED, reason)
    stage.say(f"deployment {failed} FAILED ({reason})")
    back = new_deployment_id()
    played.deployments["rollback"] = back
    stage.event(
        back, IN_PROGRESS, ROLLBACK_REASON.format(trigger=trigger, target=stage.first_deployment)
    )
    stage.say(f"rollback deployment {back} IN_PROGRESS (back to {stage.first_deployment})")
    live = [t for t in new if t.state == "running"]
    if live:
        _replace(stage, played, live, back, "1")
    _complete(stage, back)


def _complete(stage: Stage, dep: str) -> None:
    stage.event(dep, COMPLETED)
    stage.emit(steady_state_event(stage.ref, time.time()))
    stage.say(f"deployment {dep} COMPLETED; service steady")


def traffic_shift_configuration(
    steps: tuple[int, ...], step_bake_s: float, bake_s: float
) -> dict[str, Any]:
    """The ``deploymentConfiguration`` of a blue/green (one step of 100 %), canary (a first
    step, then the rest) or linear (equal steps) deployment, as the ECS API shapes it."""
    config: dict[str, Any] = {"bakeTimeInMinutes": round(bake_s / 60)}
    if tuple(steps) == (100,):
        return {**config, "strategy": "BLUE_GREEN"}
    first = steps[0]
    if len(steps) == 2 and steps[-1] == 100:
        canary = {"canaryPercent": first, "canaryBakeTimeInMinutes": round(step_bake_s / 60)}
        return {**config, "strategy": "CANARY", "canaryConfiguration": canary}
    linear = {"stepPercent": first, "stepBakeTimeInMinutes": round(step_bake_s / 60)}
    return {**config, "strategy": "LINEAR", "linearConfiguration": linear}


def blue_green(
    stage: Stage,
    *,
    steps: tuple[int, ...] = (100,),
    step_bake_s: float = 60.0,
    bake_s: float = 60.0,
    hooks: tuple[str, ...] = (),
    kind: str = "blue/green",
) -> Played:
    """ECS native blue/green (one step of 100 %), canary or linear (several steps)."""
    played = Played()
    dep = new_deployment_id()
    played.deployments["rollout"] = dep
    lb = stage.cluster.lb
    blue = stage.cluster.running()
    green_group = lb.groups[1]
    stage.event(
        dep, IN_PROGRESS, configuration=traffic_shift_configuration(steps, step_bake_s, bake_s)
    )
    stage.say(f"deployment {dep} IN_PROGRESS ({kind}, hooks on {', '.join(hooks) or 'none'})")

    def at_stage(name: str) -> None:
        if name in hooks:
            stage.emit(hook_event(stage.ref, dep, name, "IN_PROGRESS", time.time()))
            if name == "POST_PRODUCTION_TRAFFIC_SHIFT" and stage.gate is not None:
                _run_gate(stage, played, name)
            stage.emit(hook_event(stage.ref, dep, name, "SUCCEEDED", time.time()))

    for name in BLUE_GREEN_STAGES[:3]:
        at_stage(name)
    stage.cluster.launch(len(blue), dep, "2", group=green_group)
    for name in BLUE_GREEN_STAGES[3:6]:
        at_stage(name)
    for number, percent in enumerate(steps, 1):
        at_stage("PRODUCTION_TRAFFIC_SHIFT")
        lb.shift(percent)
        stage.say(f"production traffic shift step {number}: {percent}% to green (blue RUNNING)")
        if percent < 100:
            time.sleep(stage.scaled(step_bake_s))
    at_stage("POST_PRODUCTION_TRAFFIC_SHIFT")
    stage.shifted()
    at_stage("BAKE_TIME")
    stage.say(f"bake time {bake_s:g} s ({stage.scaled(bake_s):.1f} s here): blue keeps RUNNING")
    time.sleep(stage.scaled(bake_s))
    at_stage("CLEAN_UP")
    for task in blue:
        played.replaced_by[task.task_id] = dep
    stage.say(
        "clean-up: blue tasks deregistered and stopped"
        + (
            f"; clients whose AWSALBTG names blue are refused (503) until it expires "
            f"({lb.group_stickiness_s} s here)"
            if lb.group_stickiness
            else ""
        )
    )
    stage.stop_all(blue)
    _complete(stage, dep)
    return played


def circuit_breaker(stage: Stage, *, health_wait_s: float = 60.0) -> Played:
    """A revision whose tasks never pass their health checks: FAILED, then the rollback."""
    played = Played()
    dep = new_deployment_id()
    played.deployments["rollout"] = dep
    old = stage.cluster.running()
    stage.event(dep, IN_PROGRESS)
    stage.say(f"deployment {dep} IN_PROGRESS: revision 2 (broken)")
    broken = stage.cluster.launch_unhealthy(len(old), dep, "2")
    with ThreadPoolExecutor(max_workers=max(1, len(broken))) as pool:
        list(
            pool.map(
                lambda t: stage.cluster.fail_health_checks(t, stage.scaled(health_wait_s)), broken
            )
        )
    # The rollback replaces the tasks of the last deployment that completed (the old ones).
    _roll_back(stage, played, dep, old, "circuit breaker")
    return played


def one_task_stops(stage: Stage, victim: LabTask, how: str) -> Played:
    """Scale-in (no replacement) or a Spot interruption / crash (ECS starts a replacement)."""
    played = Played()
    cluster = stage.cluster
    if how == "scale_in":
        stage.say(f"service auto scaling: desired count -1; the scheduler stops {victim.short}")
        cluster.stop(victim, stage.deregistration_delay, stage.stop_timeout)
        return played
    if how == "spot":
        stage.say(f"Fargate Spot interruption warning for {victim.short}: ECS drains it")
        cluster.stop(victim, stage.deregistration_delay, stage.stop_timeout, STOP_SPOT, SPOT_REASON)
    else:
        cluster.crash(victim)
    stage.say("ECS starts a replacement task")
    cluster.launch(1, stage.first_deployment, "1")
    return played


def hook_payload(stage: Stage) -> dict[str, Any]:
    """What ECS hands a hook at every stage (developer guide, "Lifecycle hooks for Amazon ECS
    service deployments": serviceArn, targetServiceRevisionArn, test and production traffic
    weights by service revision) plus the hookDetails the hook returned last time."""
    ref = stage.ref
    revision = (
        f"arn:aws:ecs:{ref.region}:{ref.account}:service-revision/{ref.cluster}/{ref.service}/"
    )
    return {
        "serviceArn": f"arn:aws:ecs:{ref.region}:{ref.account}:service/{ref.cluster}/{ref.service}",
        "targetServiceRevisionArn": revision + "2",
        "testTrafficWeights": {},
        "productionTrafficWeights": {revision + "1": 0, revision + "2": 100},
        "hookDetails": {},
    }


def _run_gate(stage: Stage, played: Played, name: str) -> None:
    """Invoke the hook as ECS does: IN_PROGRESS is invoked again after its callBackDelay
    (default 30 s) with the hookDetails it returned; SUCCEEDED goes on. FAILED, an invalid
    status or an error would roll the deployment back (developer guide, "Lambda hooks for
    Amazon ECS service deployments"): the lab stops there, as that would be a SessionWatch bug
    (the gate answers SUCCEEDED when it fails)."""
    assert stage.gate is not None
    payload = hook_payload(stage)
    first = time.time()
    while True:
        answer = stage.gate(payload)
        played.gate_calls += 1
        status = answer.get("hookStatus") if isinstance(answer, dict) else None
        if status != "IN_PROGRESS":
            break
        # The delay is in the gate's own seconds (its environment is scaled like the lab).
        delay = float(answer.get("callBackDelay") or stage.scaled(30.0))
        payload["hookDetails"] = answer.get("hookDetails") or {}
        time.sleep(delay)
    played.gate_held_s = time.time() - first
    stage.say(
        f"{name} hook (SessionWatch drain gate) answered {status} after "
        f"{played.gate_calls} call(s), {played.gate_held_s:.1f} s"
    )
    if status != "SUCCEEDED":
        raise RuntimeError(f"the drain gate answered {status!r}: ECS would roll back")
