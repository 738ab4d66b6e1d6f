"""A session is lost once, to what ended it; a late rollout fact leaves no wrong alarm.

Both through the real handlers over the in-memory ledger (``memory_wired``), at chosen times.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sessionwatch.contract import Cause
from sessionwatch.detectors.config import load_config
from sessionwatch.detectors.reporter_run import build_report
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import SERVICE, T0, deployment, fp, line, subscription, task
from tests.detectors.test_detectors_late_facts import Run
from world.ecs import STOP_SCHEDULER

OLD, D1 = "ecs-svc/old", "ecs-svc/d1"
SCHED = STOP_SCHEDULER
GRACE = 120.0


def _rollout(run: Run, start: float, delay: float = 0.0) -> None:
    """D1 replaces task-a by task-c: IN_PROGRESS at ``start``, task-c RUNNING 10 s later,
    task-a draining 50 s and stopped 80 s later, COMPLETED at 100 s; every ECS event delivered
    ``delay`` seconds after it happened (in order)."""
    stop = dict(
        stopping_at=start + 50,
        stop_code=SCHED,
        reason=f"Scaling activity initiated by (deployment {OLD})",
    )
    events = [
        (start, deployment(D1, "IN_PROGRESS", start)),
        (start + 10, task("task-c", "RUNNING", start + 10, started_by=D1, started_at=start + 10)),
        (start + 50, task("task-a", "DEACTIVATING", start + 50, started_by=OLD, **stop)),
        (
            start + 80,
            task("task-a", "STOPPED", start + 80, started_by=OLD, stopped_at=start + 80, **stop),
        ),
        (start + 100, deployment(D1, "COMPLETED", start + 100)),
    ]
    for t, ev in events:
        run.at(t + delay, "ecs", ev)


def _minutes(run: Run, since: float, until: float) -> None:
    t = since
    while t <= until:
        run.at(t, "reporter", {})
        t += 60


def test_a_session_closed_before_its_task_stopped_is_not_the_deployment_s_loss(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """``idle`` expires on task-a (the server logs session_closed idle_timeout); ten minutes
    later D1 replaces task-a; the client comes back after the rollout and gets a 404 on the new
    task: ``expired``, not in D1's report nor its alarm. ``live``, still open on task-a when it
    stopped, is D1's loss."""
    run = Run(memory_wired, caplog)
    for tid in ("task-a", "task-b"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0, started_by=OLD, started_at=T0 - 7200))
    lines = [
        line("session_created", "task-a", T0 - 3000, session=fp("idle")),
        line("session_created", "task-a", T0 - 100, session=fp("live")),
        line(
            "session_closed", "task-a", T0 - 600 + 1800, session=fp("idle"), reason="idle_timeout"
        ),
    ]
    run.at(T0 + 1200, "logs", subscription(lines))
    _rollout(run, T0 + 1800)  # ten minutes after the expiry
    back = T0 + 2400
    run.at(
        back,
        "logs",
        subscription(
            [
                line("session_not_found", "task-c", back, session=fp("idle")),
                line("session_not_found", "task-c", back + 1, session=fp("live")),
            ]
        ),
    )
    _minutes(run, back + 60, back + GRACE + 120)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1, Cause.EXPIRED.value: 1})
    ledger = memory_wired["ledger"]
    [window] = ledger.windows_of(SERVICE, T0, back)
    report = build_report(load_config(), ledger, window, [window], ledger.task_sessions, [], back)
    assert report.sessions_lost == 1 and report.tasks_replaced == ["task-a"]
    assert owned_losses(ledger.deployment_losses(SERVICE, D1), D1) == [back + 1]


def test_a_client_delete_then_a_deployment_is_expired_on_any_task(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """A DELETE'd session whose client reuses the id after its task was replaced; a session
    closed by the task's own shutdown stays the deployment's."""
    run = Run(memory_wired, caplog)
    for tid in ("task-a", "task-b"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0, started_by=OLD, started_at=T0 - 7200))
    lines = [
        line("session_created", "task-a", T0 - 300, session=fp("deleted")),
        line("session_created", "task-a", T0 - 300, session=fp("shut")),
        line("session_closed", "task-a", T0 - 200, session=fp("deleted"), reason="client_delete"),
    ]
    run.at(T0, "logs", subscription(lines))
    _rollout(run, T0 + 100)
    shutdown = line("session_closed", "task-a", T0 + 151, session=fp("shut"), reason="shutdown")
    run.at(T0 + 152, "logs", subscription([shutdown]))
    nf = [
        line("session_not_found", "task-c", T0 + 300, session=fp("deleted")),
        line("session_not_found", "task-b", T0 + 301, session=fp("shut")),
    ]
    run.at(T0 + 302, "logs", subscription(nf))
    _minutes(run, T0 + 360, T0 + 600)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1, Cause.EXPIRED.value: 1})


def test_a_rolling_deployment_whose_ecs_events_arrive_3_minutes_late_raises_no_stickiness(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """Every ECS event of the rollout arrives 180 s late (beyond the 120 s grace period). The
    server's own lines say task-c started after task-a and just before the 404s, so the 404s
    wait for ECS facts instead of being called ``stickiness``; when the stop arrives they are
    the deployment's. SessionsLost{Cause=stickiness} never moves."""
    run = Run(memory_wired, caplog)
    for tid in ("task-a", "task-b"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0, started_by=OLD, started_at=T0 - 7200))
    created = [
        line("session_created", "task-a", T0 - 600 + i, session=fp(f"s{i}")) for i in range(3)
    ]
    run.at(T0, "logs", subscription(created))
    start = T0 + 100
    run.at(start + 12, "logs", subscription([line("task_started", "task-c", start + 11)]))
    lost_at = start + 55
    nf = [line("session_not_found", "task-c", lost_at + i, session=fp(f"s{i}")) for i in range(3)]
    run.at(lost_at + 3, "logs", subscription(nf))
    _minutes(run, lost_at + 60, lost_at + 175)  # past the grace period, ECS still silent
    assert run.lost == Counter()  # waiting, not stickiness
    _rollout(run, start, delay=180)
    _minutes(run, start + 300, start + 700)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 3})
    assert run.revised == []


def test_a_stickiness_count_revised_by_a_later_fact_is_taken_back(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """Beyond the wait (ECS 15 minutes late), the 404 is counted ``stickiness``; when the stop
    arrives it is ``deployment``, and the stickiness count is taken back (-1), so the metric's
    sum says one deployment loss and no stickiness."""
    run = Run(memory_wired, caplog)
    for tid in ("task-a", "task-b"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0, started_by=OLD, started_at=T0 - 7200))
    run.at(T0, "logs", subscription([line("session_created", "task-a", T0 - 600, session=fp("s"))]))
    start = T0 + 100
    run.at(start + 12, "logs", subscription([line("task_started", "task-c", start + 11)]))
    run.at(
        start + 60,
        "logs",
        subscription([line("session_not_found", "task-c", start + 55, session=fp("s"))]),
    )
    _minutes(run, start + 120, start + 55 + 600 + 60)
    assert run.lost == Counter({Cause.STICKINESS.value: 1})
    _rollout(run, start, delay=900)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1, Cause.STICKINESS.value: 0})
    assert {r[1:] for r in run.revised} == {(Cause.STICKINESS.value, Cause.DEPLOYMENT.value)}
