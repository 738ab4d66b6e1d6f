"""Attribution by deployment lineage, for every strategy (pure core, timelines as AWS documents).

Each case is one of issue 9's timelines that the window-only rule got wrong: blue/green and
linear/canary traffic shifts while the source tasks still run, circuit-breaker rollbacks,
overlapping deployments, a scale-in right after COMPLETED, and ROLLING stickiness kept apart
from a traffic-shift loss.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from sessionwatch.contract import Cause
from sessionwatch.detectors import ecs_read
from sessionwatch.detectors.core import decide, rollback_target, stopper
from sessionwatch.detectors.facts import (
    BLUE_GREEN,
    CANARY,
    LINEAR,
    ROLLING,
    STRATEGY_FROM_ECS,
    STRATEGY_UNAVAILABLE,
    DeploymentWindow,
    HookStage,
    NotFound,
    SessionOrigin,
    TaskFacts,
)
from sessionwatch.detectors.ledger.records import LossLock
from sessionwatch.detectors.report_document import how_it_ended, losses_per_step
from world.ecs import STOP_SCHEDULER

GRACE = 120.0
T = 100_000.0
SVC = "svc"
SCHED = STOP_SCHEDULER
TASK_DEF = "arn:aws:ecs:us-east-1:111122223333:task-definition/mcp:"
OLD, A, R, B = "ecs-svc/old", "ecs-svc/A", "ecs-svc/R", "ecs-svc/B"
FP = "0123456789abcdef"


def dep(
    dep_id: str,
    start: float,
    end: float | None = None,
    outcome: str | None = None,
    strategy: str | None = ROLLING,
    reason: str | None = None,
) -> DeploymentWindow:
    return DeploymentWindow(
        SVC,
        dep_id,
        start,
        end,
        outcome,
        reason=reason,
        rollback_to=rollback_target(reason),
        strategy=strategy,
        strategy_source=STRATEGY_FROM_ECS if strategy else STRATEGY_UNAVAILABLE,
    )


def running(task_id: str, by: str, started: float) -> TaskFacts:
    return TaskFacts(task_id, SVC, by, started)


def drains_later(task_id: str, by: str, started: float) -> TaskFacts:
    """Alive at the 404, known for sure: its draining began later (so no verdict waits)."""
    return TaskFacts(task_id, SVC, by, started, T + 5000, None, SCHED, "Scaling activity")


def stopped(task_id: str, by: str, started: float, at: float, code: str = SCHED) -> TaskFacts:
    return TaskFacts(task_id, SVC, by, started, at, at + 30, code, "Scaling activity")


def judge(
    origin: TaskFacts,
    serving: TaskFacts,
    at: float,
    windows: list[DeploymentWindow],
    now=None,
    lost: LossLock | None = None,
):
    nf = NotFound(FP, serving.task_id, at)
    created = SessionOrigin(origin.task_id, (origin.started_at or T - 9000) + 1)
    when = at + 1 if now is None else now
    return decide(nf, created, origin, serving, windows, GRACE, when, lost=lost)


def shift_lock(on: str, at: float, by: str = B, retracted: bool = False) -> LossLock:
    """The session's ``deployment`` count lock: its 404 on task ``on`` at ``at``, by ``by``."""
    return LossLock(
        FP, Cause.DEPLOYMENT, on, at, SVC, "blue", by, T, retracted_at=at + 9 if retracted else None
    )


@pytest.mark.parametrize("strategy", [BLUE_GREEN, LINEAR, CANARY])
def test_traffic_shift_loss_while_the_source_task_still_runs(strategy: str) -> None:
    """Blue keeps RUNNING through bake time; a 404 on green inside the window is the
    deployment's, at once, though the origin is alive (the old rule said stickiness)."""
    b = dep(B, T, strategy=strategy)
    blue = running("blue", OLD, T - 5000)
    green = running("green", B, T + 30)
    v = judge(blue, green, T + 200, [b])
    assert (v.cause, v.deployment_id) == (Cause.DEPLOYMENT, B)
    assert strategy in v.basis


def test_rolling_404_on_another_live_task_stays_stickiness() -> None:
    """The same facts under ROLLING: a client that dropped the cookie (not a deployment)."""
    b = dep(B, T, strategy=ROLLING)
    v = judge(drains_later("old", OLD, T - 5000), running("new", B, T + 30), T + 200, [b])
    assert v.cause is Cause.STICKINESS


def test_unknown_strategy_waits_then_decides_as_rolling() -> None:
    b = DeploymentWindow(SVC, B, T)  # no ECS read yet, no hooks
    origin, serving = drains_later("old", OLD, T - 5000), running("new", B, T + 30)
    assert judge(origin, serving, T + 200, [b]).cause is Cause.PENDING
    assert judge(origin, serving, T + 200, [b], now=T + 200 + GRACE).cause is Cause.STICKINESS
    failed_read = dep(B, T, strategy=None)  # the ECS read failed: decided from events alone
    assert judge(origin, serving, T + 200, [failed_read]).cause is Cause.STICKINESS


def test_same_lineage_is_never_a_shift_by_itself() -> None:
    """A 404 on another task of the origin's lineage, no earlier shift 404 of the session:
    ``stickiness``, once the grace period has passed (such a 404 could still arrive)."""
    b = dep(B, T, strategy=BLUE_GREEN)
    origin, serving = drains_later("g1", B, T + 30), running("g2", B, T + 31)
    assert judge(origin, serving, T + 200, [b]).cause is Cause.PENDING
    v = judge(origin, serving, T + 200, [b], now=T + 200 + GRACE)
    assert v.cause is Cause.STICKINESS


@pytest.mark.parametrize("strategy", [BLUE_GREEN, LINEAR, CANARY])
def test_a_hop_after_the_session_s_shift_404_is_the_shift_s(strategy: str) -> None:
    """The lab's canary: the session's request drawn to green (404, its lock), the answer's
    cookie names green, the next request drawn to blue lands on another blue task (404): the
    same loss, D's, at once; and the same for a green session drawn back to blue first."""
    b = dep(B, T, strategy=strategy)
    blue, other = drains_later("blue", OLD, T - 5000), running("blue-2", OLD, T - 5000)
    v = judge(blue, other, T + 200.01, [b], lost=shift_lock("green", T + 200))
    assert (v.cause, v.deployment_id) == (Cause.DEPLOYMENT, B)
    assert strategy in v.basis and "cookie" in v.basis
    green, green_2 = drains_later("green", B, T + 30), running("green-2", B, T + 30)
    v = judge(green, green_2, T + 200.01, [b], lost=shift_lock("blue", T + 200))
    assert (v.cause, v.deployment_id) == (Cause.DEPLOYMENT, B)


def test_a_hop_the_shift_404_cannot_explain_stays_stickiness() -> None:
    """Not D's: the lock's 404 is later than this one (its answer cannot have set this
    request's cookie), was taken back, is this same 404, is a ROLLING deployment's, or this
    404 is outside D's window."""
    b = dep(B, T, T + 600, "COMPLETED", strategy=CANARY)
    blue, other = drains_later("blue", OLD, T - 5000), running("blue-2", OLD, T - 5000)
    settled = T + 200 + GRACE
    for lost, windows, at in (
        (shift_lock("green", T + 200.5), [b], T + 200),
        (shift_lock("green", T + 190, retracted=True), [b], T + 200),
        (shift_lock("blue-2", T + 200), [b], T + 200),
        (shift_lock("green", T + 190), [dep(B, T, strategy=ROLLING)], T + 200),
        (shift_lock("green", T + 590), [b], T + 600 + GRACE + 1),
    ):
        v = judge(blue, other, at, windows, now=max(settled, at + GRACE), lost=lost)
        assert v.cause is Cause.STICKINESS, (lost, windows, at)


def test_a_404_after_the_window_on_green_is_stickiness() -> None:
    b = dep(B, T, T + 600, "COMPLETED", strategy=BLUE_GREEN)
    blue = TaskFacts("blue", SVC, OLD, T - 5000, T + 9000, None, SCHED)
    v = judge(blue, running("green", B, T + 30), T + 600 + GRACE + 10, [b])
    assert v.cause is Cause.STICKINESS


def test_circuit_breaker_rollback_owns_its_losses() -> None:
    """A fails; R ("rolling back to deploymentId old") replaces A's tasks: R's losses, not A's;
    A's own losses (old tasks it stopped before failing) stay A's."""
    a = dep(
        A, T, T + 300, "FAILED", reason="ECS deployment circuit breaker: tasks failed to start."
    )
    r = dep(
        R, T + 300, reason=f"ECS deployment circuit breaker: rolling back to deploymentId {OLD}."
    )
    windows = [a, r]
    assert r.rollback_to == OLD
    a_task = running("a-task", A, T + 20)
    old_task = running("old-task", OLD, T - 5000)
    lost_to_a = judge(stopped("old1", OLD, T - 5000, T + 100), a_task, T + 110, windows)
    assert (lost_to_a.cause, lost_to_a.deployment_id) == (Cause.DEPLOYMENT, A)
    lost_to_r = judge(stopped("a1", A, T + 20, T + 350), old_task, T + 360, windows)
    assert (lost_to_r.cause, lost_to_r.deployment_id) == (Cause.DEPLOYMENT, R)
    assert how_it_ended(a, windows, GRACE).startswith("FAILED, rolled back by the circuit breaker")


def test_overlapping_deployments_each_get_their_own_losses() -> None:
    """B starts before A completed: stops before B began are A's, after it B's."""
    a = dep(A, T)  # never completed: superseded by B
    b = dep(B, T + 200, T + 500, "COMPLETED")
    windows = [a, b]
    serving = running("new", B, T + 210)
    first = judge(stopped("o1", OLD, T - 5000, T + 100), serving, T + 110, windows)
    second = judge(stopped("o2", OLD, T - 5000, T + 300), serving, T + 310, windows)
    a_task = judge(stopped("a1", A, T + 50, T + 320), serving, T + 330, windows)
    assert [first.deployment_id, second.deployment_id, a_task.deployment_id] == [A, B, B]


def test_a_stop_seconds_before_the_next_deployment_began_is_the_previous_one_s() -> None:
    """Back-to-back rollouts: B superseded by C at T + 200. A stop 3 s before C's start is B's
    (both times are ECS's own, so no clock skew between them), a stop 3 s after it C's."""
    c = "ecs-svc/C"
    windows = [dep(B, T), dep(c, T + 200, T + 400, "COMPLETED")]
    serving = running("new", c, T + 230)
    before = judge(stopped("o1", OLD, T - 5000, T + 197), serving, T + 250, windows)
    after = judge(stopped("o2", OLD, T - 5000, T + 203), serving, T + 250, windows)
    assert [before.deployment_id, after.deployment_id] == [B, c]


def test_scale_in_of_a_current_task_after_completed_is_scale_in() -> None:
    """Autoscaling stops a task B started, 15 s after B COMPLETED (inside B's grace): a
    deployment never replaces its own tasks."""
    b = dep(B, T, T + 300, "COMPLETED")
    mine = stopped("b1", B, T + 30, T + 315)
    v = judge(mine, running("b2", B, T + 31), T + 320, [b], now=T + 320 + GRACE)
    assert v.cause is Cause.SCALE_IN
    # An old task stopped in the same seconds is still B's loss.
    old = judge(stopped("o", OLD, T - 9000, T + 315), running("b2", B, T + 31), T + 320, [b])
    assert (old.cause, old.deployment_id) == (Cause.DEPLOYMENT, B)


def test_a_task_started_after_a_deployment_is_not_replaced_by_it() -> None:
    b = dep(B, T, T + 300, "COMPLETED")
    later = TaskFacts("x", SVC, None, T + 100, T + 200, T + 230, SCHED)
    assert stopper(later, [b], GRACE) is None


def test_losses_per_step_for_linear_from_the_hooked_shift() -> None:
    w = DeploymentWindow(
        SVC,
        B,
        T,
        strategy=LINEAR,
        strategy_source=STRATEGY_FROM_ECS,
        step_bake_s=60.0,
        hooks=(HookStage("PRODUCTION_TRAFFIC_SHIFT", "IN_PROGRESS", T + 100),),
    )
    assert losses_per_step(w, [T + 110, T + 150, T + 170, T + 290]) == [2, 1, 0, 1]
    assert losses_per_step(dep(B, T), [T + 1]) is None


def describe_services_response(strategy: str, controller: str = "ECS") -> dict:
    """A DescribeServices answer in the shape the ECS API reference documents."""
    config: dict = {
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "strategy": strategy,
        "bakeTimeInMinutes": 10,
    }
    if strategy == LINEAR:
        config["linearConfiguration"] = {"stepPercent": 25.0, "stepBakeTimeInMinutes": 2}
    if strategy == CANARY:
        config["canaryConfiguration"] = {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5}
    return {
        "services": [
            {
                "serviceArn": "arn:aws:ecs:us-east-1:111122223333:service/mcp-cluster/svc",
                "serviceName": SVC,
                "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/mcp-cluster",
                "status": "ACTIVE",
                "deploymentConfiguration": config,
                "deploymentController": {"type": controller},
                "deployments": [
                    {
                        "id": B,
                        "status": "PRIMARY",
                        "taskDefinition": TASK_DEF + "8",
                        "rolloutState": "IN_PROGRESS",
                    },
                    {
                        "id": OLD,
                        "status": "ACTIVE",
                        "taskDefinition": TASK_DEF + "7",
                    },
                ],
            }
        ],
        "failures": [],
    }


@pytest.mark.parametrize("strategy", [ROLLING, BLUE_GREEN, LINEAR, CANARY])
def test_the_one_ecs_read_gives_strategy_revision_bake_and_steps(strategy: str) -> None:
    import boto3

    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "describe_services",
            describe_services_response(strategy),
            {"cluster": "mcp-cluster", "services": [SVC]},
        )
        s = ecs_read.read(client, "mcp-cluster", SVC, B)
    assert (s.strategy, s.source, s.bake_s) == (strategy, STRATEGY_FROM_ECS, 600.0)
    assert s.task_definition and s.task_definition.endswith("mcp:8")
    expected_steps = {LINEAR: (25.0, 120.0), CANARY: (10.0, 300.0)}.get(strategy, (None, None))
    assert (s.step_percent, s.step_bake_s) == expected_steps


def test_a_codedeploy_controller_is_external_and_a_denied_read_degrades() -> None:
    import boto3

    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response("describe_services", describe_services_response(ROLLING, "CODE_DEPLOY"))
        stub.add_client_error("describe_services", "AccessDeniedException", http_status_code=400)
        assert ecs_read.read(client, "mcp-cluster", SVC, B).strategy == "EXTERNAL"
        denied = ecs_read.read(client, "mcp-cluster", SVC, B)
    assert (denied.strategy, denied.source) == (None, STRATEGY_UNAVAILABLE)
    assert ecs_read.read(None, "c", SVC, B).source == STRATEGY_UNAVAILABLE


SD_ARN = "arn:aws:ecs:us-east-1:111122223333:service-deployment/mcp-cluster/svc/"


def _ecs_client():
    import boto3

    return boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _brief(suffix: str, created: float) -> dict:
    """A ListServiceDeployments entry (ServiceDeploymentBrief) as the API reference shows it."""
    return {
        "serviceDeploymentArn": SD_ARN + suffix,
        "serviceArn": "arn:aws:ecs:us-east-1:111122223333:service/mcp-cluster/svc",
        "clusterArn": "arn:aws:ecs:us-east-1:111122223333:cluster/mcp-cluster",
        "createdAt": datetime.fromtimestamp(created, UTC),
        "startedAt": datetime.fromtimestamp(created, UTC),
        "status": "SUCCESSFUL",
        "targetServiceRevisionArn": "arn:aws:ecs:us-east-1:111122223333:service-revision/x/svc/9",
    }


def test_a_deployment_no_longer_listed_is_read_from_the_service_history() -> None:
    """The start event came late: DescribeServices lists only PRIMARY/ACTIVE deployments and
    the service's *current* configuration (now ROLLING). The deployment's own settings
    (BLUE_GREEN, bake 10 min) come from ListServiceDeployments around its start (the entry
    created closest to it) and DescribeServiceDeployments of that one."""
    gone = "ecs-svc/gone"
    own_config = describe_services_response(BLUE_GREEN)["services"][0]["deploymentConfiguration"]
    with Stubber(client := _ecs_client()) as stub:
        stub.add_response("describe_services", describe_services_response(ROLLING))
        stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": [_brief("far", T - 50), _brief("near", T + 3)]},
        )
        stub.add_response(
            "describe_service_deployments",
            {
                "serviceDeployments": [
                    {
                        "serviceDeploymentArn": SD_ARN + "near",
                        "status": "SUCCESSFUL",
                        "deploymentConfiguration": own_config,
                    }
                ],
                "failures": [],
            },
            {"serviceDeploymentArns": [SD_ARN + "near"]},
        )
        s = ecs_read.read(client, "mcp-cluster", SVC, gone, started_at=T)
        stub.assert_no_pending_responses()
    assert (s.strategy, s.source, s.bake_s, s.task_definition) == (
        BLUE_GREEN,
        STRATEGY_FROM_ECS,
        600.0,
        None,
    )


def test_a_listed_deployment_makes_one_call_and_a_failed_history_keeps_the_current() -> None:
    with Stubber(client := _ecs_client()) as stub:
        stub.add_response("describe_services", describe_services_response(CANARY))
        listed = ecs_read.read(client, "mcp-cluster", SVC, B, started_at=T)
        stub.assert_no_pending_responses()  # B is listed: no history read
        stub.add_response("describe_services", describe_services_response(CANARY))
        stub.add_client_error("list_service_deployments", "AccessDeniedException")
        denied = ecs_read.read(client, "mcp-cluster", SVC, "ecs-svc/gone", started_at=T)
        stub.add_response("describe_services", describe_services_response(CANARY))
        stub.add_response("list_service_deployments", {"serviceDeployments": [_brief("x", T + 90)]})
        unmatched = ecs_read.read(client, "mcp-cluster", SVC, "ecs-svc/gone", started_at=T)
        stub.assert_no_pending_responses()  # nothing created within 60 s: no describe
    assert listed.strategy == denied.strategy == unmatched.strategy == CANARY
    assert listed.task_definition and denied.task_definition is None


def test_closest_deployment_matches_by_creation_time_within_the_window() -> None:
    briefs = [_brief("a", T - 30), _brief("b", T + 10), {"createdAt": T}]
    assert ecs_read.closest_deployment(briefs, T) == SD_ARN + "b"
    assert ecs_read.closest_deployment(briefs, T + 500) is None
    assert ecs_read.closest_deployment([], T) is None
