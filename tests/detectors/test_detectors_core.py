"""The pure correlation core: each rule of docs/architecture.md §5, and when it stays pending."""

from __future__ import annotations

import pytest

from sessionwatch.contract import Cause
from sessionwatch.detectors.core import (
    DeploymentWindow,
    NotFound,
    SessionOrigin,
    TaskFacts,
    decide,
    merge_windows,
    stop_category,
)
from world.ecs import STOP_ESSENTIAL_EXIT, STOP_SCHEDULER, STOP_SPOT

GRACE = 120.0
T = 10_000.0
SVC = "svc"
WINDOW = DeploymentWindow(SVC, "ecs-svc/new", T - 100, T + 100, "COMPLETED")


def nf(task: str = "t-serving", at: float = T) -> NotFound:
    return NotFound("0123456789abcdef", task, at, "mcp-server")


def stopped(code: str | None, *, at: float = T - 30, reason: str | None = None) -> TaskFacts:
    return TaskFacts("t-origin", SVC, "ecs-svc/old", T - 5000, at, at + 20, code, reason)


# The serving task: an old task of the origin's own lineage unless a test says otherwise.
SERVING = TaskFacts("t-serving", SVC, "ecs-svc/old", T - 5000)


def verdict(
    origin_task: TaskFacts | None,
    *,
    now: float = T + 1,
    windows=(WINDOW,),
    n=None,
    serving: TaskFacts | None = SERVING,
):
    return decide(
        n or nf(), SessionOrigin("t-origin", T - 1000), origin_task, serving, windows, GRACE, now
    )


def test_deployment_when_origin_stopped_by_scheduler_inside_window() -> None:
    v = verdict(stopped(STOP_SCHEDULER))
    assert (v.cause, v.deployment_id, v.service) == (Cause.DEPLOYMENT, "ecs-svc/new", SVC)


def test_deployment_window_extends_by_grace_and_open_window_counts() -> None:
    late = stopped(STOP_SCHEDULER, at=T + 100 + GRACE - 1)
    n = nf(at=T + 100 + GRACE + 5)
    assert verdict(late, n=n, now=n.at + 1).cause is Cause.DEPLOYMENT
    open_window = DeploymentWindow(SVC, "ecs-svc/new", T - 100)
    assert verdict(stopped(STOP_SCHEDULER), windows=(open_window,)).cause is Cause.DEPLOYMENT


def test_window_of_another_service_does_not_count() -> None:
    other = DeploymentWindow("other", "ecs-svc/x", T - 100, T + 100)
    v = verdict(stopped(STOP_SCHEDULER), windows=(other,), now=T + GRACE + 1)
    assert v.cause is Cause.SCALE_IN


def test_scale_in_waits_for_grace_then_decides() -> None:
    origin = stopped(STOP_SCHEDULER)
    assert verdict(origin, windows=(), now=T + 1).cause is Cause.PENDING
    assert verdict(origin, windows=(), now=T + GRACE).cause is Cause.SCALE_IN


@pytest.mark.parametrize(
    ("code", "reason", "cause"),
    [
        (STOP_ESSENTIAL_EXIT, "Essential container in task exited", Cause.TASK_FAILURE),
        ("TaskFailedToStart", None, Cause.TASK_FAILURE),
        (
            STOP_SCHEDULER,
            "Task failed ELB health checks in (target-group x)",
            Cause.TASK_FAILURE,
        ),
        (STOP_SPOT, "Your Spot Task was interrupted.", Cause.INFRASTRUCTURE),
        ("TerminationNotice", None, Cause.INFRASTRUCTURE),
        ("UserInitiated", "Task is being retired: scheduled maintenance", Cause.INFRASTRUCTURE),
    ],
)
def test_stop_codes_map_to_causes_even_inside_a_deployment(code, reason, cause) -> None:
    assert verdict(stopped(code, reason=reason)).cause is cause


def test_stickiness_when_origin_alive_needs_grace_unless_draining_later_is_known() -> None:
    running = TaskFacts("t-origin", SVC, "ecs-svc/old", T - 5000)
    assert verdict(running).cause is Cause.PENDING
    assert verdict(running, now=T + GRACE).cause is Cause.STICKINESS
    assert verdict(None, now=T + GRACE).cause is Cause.STICKINESS
    drains_later = TaskFacts("t-origin", SVC, None, None, T + 500, None, STOP_SCHEDULER)
    assert verdict(drains_later).cause is Cause.STICKINESS
    # Only the final stop (after the 404) is known: its draining may have begun earlier.
    stops_later = TaskFacts("t-origin", SVC, None, None, None, T + 50, STOP_SCHEDULER)
    assert verdict(stops_later).cause is Cause.PENDING


def test_a_404_before_its_origins_drain_is_the_drains_only_within_the_clocks_bound() -> None:
    """A cookie-less client's hop 0.2 s before its origin began draining (the accuracy
    benchmark's seed 100090 at --clock-error 0): with the default bound (1 s) its stamp cannot
    be told from the drain's own 404s; with the clocks' bound the deployment sets
    (``CLOCK_ERROR_SECONDS``, here perfect clocks) it is the client's own hop. A stamp no
    earlier than ECS's stop time stays the drain's whatever the bound."""
    origin = stopped(STOP_SCHEDULER)  # draining from T - 30
    created = SessionOrigin("t-origin", T - 1000)

    def cause(at: float, bound: float | None, task: TaskFacts = origin) -> Cause:
        extra = () if bound is None else (None, bound)
        return decide(nf(at=at), created, task, SERVING, (WINDOW,), GRACE, at + 1, *extra).cause

    hop = T - 30.2
    assert cause(hop, None) is Cause.DEPLOYMENT  # the 1 s default: the known gap
    assert cause(hop, 0.0) is Cause.STICKINESS
    assert cause(hop, 0.1) is Cause.STICKINESS
    assert cause(hop, 0.3) is Cause.DEPLOYMENT
    assert cause(T - 30, 0.0) is Cause.DEPLOYMENT  # same millisecond as the stop: the drain's
    # Draining 0.5 s after the 404 (its start known): alive at the 404 for perfect clocks, not
    # for the default bound; only a later draining start, not a missing one, decides at once.
    later = TaskFacts("t-origin", SVC, "ecs-svc/old", T - 5000, hop + 0.5, hop + 40, STOP_SCHEDULER)
    assert cause(hop, 0.0, later) is Cause.STICKINESS
    assert cause(hop, None, later) is Cause.DEPLOYMENT


def test_a_stop_without_its_code_waits_then_counts_as_a_scheduler_stop() -> None:
    no_code = stopped(None)
    assert verdict(no_code).cause is Cause.PENDING
    assert verdict(no_code, now=T + GRACE).cause is Cause.DEPLOYMENT


def test_expired_when_created_on_the_serving_task() -> None:
    origin = SessionOrigin("t-origin", T - 10)
    serving = TaskFacts("t-origin", SVC)
    v = decide(nf("t-origin"), origin, None, serving, (), GRACE, T)
    assert (v.cause, v.service) == (Cause.EXPIRED, SVC)
    # The serving task's ECS service not known yet: it names the metric, so wait for it ...
    assert decide(nf("t-origin"), origin, None, None, (), GRACE, T).cause is Cause.PENDING
    # ... until the grace period has passed; then the log line's service stands in.
    v = decide(nf("t-origin"), origin, None, None, (), GRACE, T + GRACE)
    assert (v.cause, v.service) == (Cause.EXPIRED, "mcp-server")


def test_unknown_only_after_grace() -> None:
    assert decide(nf(), None, None, None, (), GRACE, T + 1).cause is Cause.PENDING
    v = decide(nf(), None, None, None, (), GRACE, T + GRACE)
    assert (v.cause, v.service) == (Cause.UNKNOWN, "mcp-server")


def test_unknown_is_counted_for_the_serving_tasks_ecs_service() -> None:
    serving = TaskFacts("t-serving", "ecs-name")
    assert decide(nf(), None, None, serving, (), GRACE, T + GRACE).service == "ecs-name"


def test_merge_windows_is_order_and_duplicate_free() -> None:
    starts = [(SVC, "d1", 5.0), (SVC, "d1", 3.0), (SVC, "d2", 50.0)]
    ends = [
        (SVC, "d1", 20.0, "COMPLETED"),
        (SVC, "d1", 20.0, "COMPLETED"),
        (SVC, "d3", 9.0, "FAILED"),
    ]
    a = merge_windows(starts, ends)
    b = merge_windows(list(reversed(starts)), list(reversed(ends)))
    assert (
        a
        == b
        == [
            DeploymentWindow(SVC, "d1", 3.0, 20.0, "COMPLETED"),
            DeploymentWindow(SVC, "d2", 50.0, None, None),
        ]
    )


def test_an_open_window_is_closed_by_the_next_deployment_of_its_service() -> None:
    starts = [(SVC, "d1", 10.0), (SVC, "d2", 90.0), ("other", "d9", 50.0)]
    windows = merge_windows(starts, [(SVC, "d2", 120.0, "COMPLETED")])
    assert windows == [
        DeploymentWindow(SVC, "d1", 10.0, 90.0, "SUPERSEDED"),
        DeploymentWindow("other", "d9", 50.0, None, None),
        DeploymentWindow(SVC, "d2", 90.0, 120.0, "COMPLETED"),
    ]


def test_stop_category_scheduler_is_none() -> None:
    assert stop_category(stopped(STOP_SCHEDULER, reason="Scaling activity")) is None


def test_each_404_of_a_session_gets_its_own_cause_the_moment_its_facts_are_known() -> None:
    """No waiting for the session's other 404s: each one is judged alone, a second after."""
    origin = stopped(STOP_SCHEDULER, at=T)  # drains at T, inside WINDOW
    verdicts = [
        decide(
            n,
            SessionOrigin("t-origin", T - 1000),
            origin,
            TaskFacts(n.task_id, SVC, "ecs-svc/old", T - 5000),
            (WINDOW,),
            GRACE,
            n.at + 1,
        ).cause
        for n in (nf("t-origin", T - 50), nf(at=T - 50), nf(at=T + 10))
    ]
    assert verdicts == [Cause.EXPIRED, Cause.STICKINESS, Cause.DEPLOYMENT]
