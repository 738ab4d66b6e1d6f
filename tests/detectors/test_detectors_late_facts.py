"""A stop fact delivered later than the grace period revises the final verdicts it contradicts.

The shape the accuracy benchmark found: task A crashes (``EssentialContainerExited``, no
``stoppingAt``: ECS sends only the STOPPED event) and that event is delivered 215 s late (grace
120 s). A's cookie clients come back and land on the live task B; once the grace period passed
their 404s are final ``stickiness`` (origin alive). When the STOPPED event arrives, the ECS
handler re-decides them: ``task_failure``, counted once per session, logged as revised with both
causes; a re-delivery of the event counts nothing more. The same pattern with a late scheduler
stop of a rolling deployment gives ``deployment`` and the deployment's loss entries.

What converges with on-time delivery (the same facts, the STOPPED event in time): the
(session, ``task_failure``) pairs, their counts and their locks' earliest 404. What does not:
the late path also keeps the ``stickiness`` counts it made before the fact arrived (a metric
already emitted is never withdrawn; the revision is logged instead).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sessionwatch.contract import (
    DIMENSION_CAUSE,
    METRIC_SESSIONS_LOST,
    REVISED_LOG_MESSAGE,
    Cause,
)
from sessionwatch.detectors.classify import lock_loss
from sessionwatch.detectors.core import Verdict
from sessionwatch.detectors.facts import NotFound, SessionCreated
from sessionwatch.detectors.handlers import runtime
from sessionwatch.detectors.ingest import RecordsFailed
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import SERVICE, T0, deployment, fp, line, subscription, task
from tests.detectors.conftest import create_table
from world.ecs import STOP_ESSENTIAL_EXIT, STOP_SCHEDULER, scheduler_reason
from world.harness import Harness, detector_harness

GRACE = 120.0
OLD, D1 = "ecs-svc/old", "ecs-svc/d1"
CRASH = T0 + 100.0
SESSIONS = ("s1", "s2")


@pytest.fixture
def wired(aws: None) -> Iterator[dict[str, Any]]:
    """The handlers over a fresh DynamoDB table at a simulated time (``world.harness``)."""
    db = boto3.client("dynamodb", region_name="us-east-1")
    table = create_table(db)
    env = {
        "LEDGER_TABLE_NAME": table,
        "CLUSTER_NAME": "mcp-cluster",
        "SERVICE_NAMES": SERVICE,
        "GRACE_PERIOD_SECONDS": str(int(GRACE)),
    }
    with detector_harness(env, now=T0) as h:
        yield {"db": db, "table": table, "h": h, "ledger": Ledger(db, table, 14)}


class Run:
    """Delivers inputs through the real handlers at chosen times; collects what they emit."""

    def __init__(self, env: dict[str, Any], caplog: Any) -> None:
        self.h: Harness = env["h"]
        self.caplog = caplog
        self.lost: Counter[str] = Counter()
        self.revised: list[tuple[str, str, str]] = []

    def at(self, t: float, kind: str, payload: dict[str, Any]) -> Counter[str]:
        """Deliver one input at time ``t``; the SessionsLost it emitted, per cause."""
        self.h.now = t
        self.h.drain()  # what an earlier, failed delivery printed
        self.caplog.clear()
        with self.caplog.at_level(logging.INFO):
            if kind == "ecs":
                assert self.h.call("ecs", payload)["bad_input"] == 0
            elif kind == "logs":
                assert self.h.call("logs", payload)["bad_input"] == 0
            else:
                self.h.call("reporter", {"id": f"sched-{t}"})
        now: Counter[str] = Counter()
        for doc in self.h.emf():
            if METRIC_SESSIONS_LOST in doc:
                now[doc[DIMENSION_CAUSE]] += doc[METRIC_SESSIONS_LOST]
        self.lost.update(now)
        for r in self.caplog.records:
            if r.getMessage() == REVISED_LOG_MESSAGE:
                self.revised.append((r.session, r.revised_from, r.cause))  # type: ignore[attr-defined]
        return now


def _setup(run: Run) -> None:
    """Tasks A and B of one lineage running; two sessions created on A."""
    for tid in ("task-a", "task-b"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0 - 3600, started_by=OLD))
    created = [
        line("session_created", "task-a", T0 - 600 + i, session=fp(s))
        for i, s in enumerate(SESSIONS)
    ]
    run.at(T0, "logs", subscription(created))


def _not_founds(run: Run, deliver_at: float) -> None:
    """A's cookie clients back 10 s and 20 s after the crash, on B."""
    lines = [
        line("session_not_found", "task-b", CRASH + 10 * (i + 1), session=fp(s))
        for i, s in enumerate(SESSIONS)
    ]
    run.at(deliver_at, "logs", subscription(lines))


def _crash(delivered: float) -> dict[str, Any]:
    return task(
        "task-a",
        "STOPPED",
        delivered,
        started_by=OLD,
        started_at=T0 - 3600,
        stopped_at=CRASH,
        stop_code=STOP_ESSENTIAL_EXIT,
        reason="Essential container in task exited",
    )


def _scheduler_stop(delivered: float, named: str) -> dict[str, Any]:
    """A's scheduler stop (draining from CRASH - 5), its reason naming deployment ``named``."""
    return task(
        "task-a",
        "STOPPED",
        delivered,
        started_by=OLD,
        started_at=T0 - 3600,
        stopping_at=CRASH - 5,
        stopped_at=CRASH,
        stop_code=STOP_SCHEDULER,
        reason=scheduler_reason(named),
    )


def _lock(env: dict[str, Any], s: str, cause: Cause) -> tuple[str, str] | None:
    got = [x for x in env["ledger"].session_locks(fp(s)) if x.cause is cause]
    return (got[0].serving_task, repr(got[0].at)) if got else None


def test_a_crash_stop_event_delivered_late_revises_stickiness_to_task_failure(
    wired, caplog
) -> None:
    run = Run(wired, caplog)
    _setup(run)
    _not_founds(run, CRASH + 25)  # in time; the origin's state is not known yet
    assert run.lost == Counter()
    run.at(CRASH + 20 + GRACE + 1, "reporter", {})  # grace passed: origin "alive"
    assert run.lost == Counter({Cause.STICKINESS.value: 2})
    late = _crash(CRASH + 215)
    # Counted under the new cause; the contradicted stickiness count is taken back.
    assert run.at(CRASH + 215, "ecs", late) == Counter(
        {Cause.TASK_FAILURE.value: 2, Cause.STICKINESS.value: -2}
    )
    assert sorted(run.revised) == sorted(
        (fp(s), Cause.STICKINESS.value, Cause.TASK_FAILURE.value) for s in SESSIONS
    )
    # Re-delivered (EventBridge at-least-once), and a later reporter run: nothing more.
    run.revised.clear()
    assert run.at(CRASH + 230, "ecs", late) == Counter()
    assert run.at(CRASH + 300, "reporter", {}) == Counter()
    assert run.revised == []
    assert run.lost == Counter({Cause.STICKINESS.value: 0, Cause.TASK_FAILURE.value: 2})
    for i, s in enumerate(SESSIONS):  # the new lock keeps the same (earliest) 404
        lock = _lock(wired, s, Cause.TASK_FAILURE)
        assert lock is not None and lock == _lock(wired, s, Cause.STICKINESS)
        assert lock[0] == "task-b" and float(lock[1]) == CRASH + 10 * (i + 1)


def test_the_same_facts_on_time_give_task_failure_directly_with_the_same_pairs(
    wired, caplog
) -> None:
    run = Run(wired, caplog)
    _setup(run)
    run.at(CRASH + 2, "ecs", _crash(CRASH + 2))
    _not_founds(run, CRASH + 25)
    assert run.lost == Counter({Cause.TASK_FAILURE.value: 2})  # at once, no grace wait
    run.at(CRASH + 20 + GRACE + 1, "reporter", {})
    run.at(CRASH + 215, "ecs", _crash(CRASH + 215))  # re-delivered late: nothing new
    assert run.lost == Counter({Cause.TASK_FAILURE.value: 2})
    assert run.revised == []
    for i, s in enumerate(SESSIONS):
        lock = _lock(wired, s, Cause.TASK_FAILURE)
        assert lock is not None and lock[0] == "task-b"
        assert float(lock[1]) == CRASH + 10 * (i + 1)  # the same lock as the late path's
        assert _lock(wired, s, Cause.STICKINESS) is None


def test_a_late_scheduler_stop_of_a_rolling_deployment_revises_to_deployment(wired, caplog) -> None:
    """The same pattern for a scheduler stop whose events came late: ``deployment``, and the
    deployment's loss entries (its report counts them) are written."""
    run = Run(wired, caplog)
    _setup(run)
    run.at(T0 + 50, "ecs", deployment(D1, "IN_PROGRESS", T0 + 50))
    run.at(T0 + 60, "ecs", task("task-c", "RUNNING", T0 + 60, started_by=D1, started_at=T0 + 60))
    _not_founds(run, CRASH + 25)
    run.at(CRASH + 20 + GRACE + 1, "reporter", {})
    assert run.lost == Counter({Cause.STICKINESS.value: 2})
    stop = _scheduler_stop(CRASH + 215, D1)
    assert run.at(CRASH + 215, "ecs", stop) == Counter(
        {Cause.DEPLOYMENT.value: 2, Cause.STICKINESS.value: -2}
    )
    assert {r[1:] for r in run.revised} == {(Cause.STICKINESS.value, Cause.DEPLOYMENT.value)}
    assert run.at(CRASH + 230, "ecs", stop) == Counter()
    losses = wired["ledger"].deployment_losses(SERVICE, D1)
    assert sorted(x.fingerprint for x in losses) == sorted(fp(s) for s in SESSIONS)


def test_revisiting_a_task_costs_one_query_and_one_read_wave(wired) -> None:
    """Bounded by the task's sessions, not the cluster: one Query of the task's partition,
    then one wave of BatchGetItem (a chunk per 100 lock keys), whatever else the table holds."""
    lg: Ledger = wired["ledger"]
    sessions = [SessionCreated(fp(f"n{i}"), "task-x", T0 + i) for i in range(20)]
    others = [SessionCreated(fp(f"o{i}"), "task-y", T0 + i) for i in range(50)]
    lg.record_sessions([*sessions, *others], [])
    for s in (*sessions[:3], *others):
        lock_loss(
            lg, NotFound(s.fingerprint, "task-z", T0 + 99), Verdict(Cause.STICKINESS, SERVICE), T0
        )
    calls: Counter[str] = Counter()
    wired["db"].meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    before = lg.read_round_trips
    found = lg.task_locks("task-x")
    assert sorted(x.fingerprint for x in found) == sorted(s.fingerprint for s in sessions[:3])
    assert {(x.serving_task, x.at) for x in found} == {("task-z", T0 + 99)}
    assert calls == Counter({"Query": 1, "BatchGetItem": 2})  # 20 x 7 keys: 2 chunks
    assert lg.read_round_trips - before == 2  # the Query, then one wave


def test_a_deployment_start_delivered_late_revises_its_window_s_verdicts(wired, caplog) -> None:
    """The deployment's IN_PROGRESS event arrives after the grace period (here even after its
    COMPLETED): A's scheduler stop was judged ``scale_in`` (no deployment known). When the start
    arrives, the service's tasks that ran in the window are decided again: ``deployment``,
    counted once per session, with the deployment's loss entries; a re-delivery adds nothing."""
    run = Run(wired, caplog)
    _setup(run)
    run.at(T0 + 60, "ecs", task("task-c", "RUNNING", T0 + 60, started_by=D1, started_at=T0 + 60))
    stop = _scheduler_stop(CRASH + 2, OLD)
    run.at(CRASH + 2, "ecs", stop)
    _not_founds(run, CRASH + 25)
    run.at(CRASH + 20 + GRACE + 1, "reporter", {})
    assert run.lost == Counter({Cause.SCALE_IN.value: 2})
    run.at(CRASH + 150, "ecs", deployment(D1, "COMPLETED", CRASH + 60))
    late_start = deployment(D1, "IN_PROGRESS", T0 + 50)
    assert run.at(CRASH + 269, "ecs", late_start) == Counter(
        {Cause.DEPLOYMENT.value: 2, Cause.SCALE_IN.value: -2}
    )
    assert {r[1:] for r in run.revised} == {(Cause.SCALE_IN.value, Cause.DEPLOYMENT.value)}
    assert run.at(CRASH + 280, "ecs", late_start) == Counter()
    losses = wired["ledger"].deployment_losses(SERVICE, D1)
    assert sorted(x.fingerprint for x in losses) == sorted(fp(s) for s in SESSIONS)


def test_a_failed_re_examination_is_owed_again_when_the_event_is_retried(wired, caplog) -> None:
    """The late STOPPED event is stored, then the re-examination of A's sessions fails (the
    locks' read throttled): the handler raises, so EventBridge retries the same event. The
    retry finds the stop stored but not marked re-examined, and revises both sessions once;
    a third delivery (after success) re-decides nothing."""
    run = Run(wired, caplog)
    _setup(run)
    _not_founds(run, CRASH + 25)
    run.at(CRASH + 20 + GRACE + 1, "reporter", {})
    assert run.lost == Counter({Cause.STICKINESS.value: 2})
    throttled = {"left": 1}

    def throttle(model: Any, **_: Any) -> None:
        if model.name == "BatchGetItem" and throttled["left"]:
            throttled["left"] -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
                "BatchGetItem",
            )

    runtime.ledger()._db.meta.events.register("before-call.dynamodb.BatchGetItem", throttle)
    late = _crash(CRASH + 215)
    with pytest.raises(RecordsFailed):
        run.at(CRASH + 215, "ecs", late)
    assert throttled["left"] == 0 and run.revised == []
    assert run.at(CRASH + 216, "ecs", late) == Counter(
        {Cause.TASK_FAILURE.value: 2, Cause.STICKINESS.value: -2}
    )
    assert len(run.revised) == 2
    assert run.at(CRASH + 230, "ecs", late) == Counter()
    assert run.lost == Counter({Cause.STICKINESS.value: 0, Cause.TASK_FAILURE.value: 2})


def test_a_next_deployment_s_start_delivered_late_takes_the_losses_it_caused(wired, caplog) -> None:
    """Back-to-back rollouts: D2 began at T0 + 90 (superseding D1), and stopped A at
    CRASH - 5. D2's IN_PROGRESS is delivered 70 s late, shorter than the grace period. A's 404s
    came before it and were charged to D1, the only deployment known. When D2's start arrives,
    A's 404s are decided again: the losses move to D2, counted once in all, and D1's report
    will not count them."""
    run = Run(wired, caplog)
    _setup(run)
    d2 = "ecs-svc/d2"
    run.at(T0 + 10, "ecs", deployment(D1, "IN_PROGRESS", T0 + 10))
    stop = _scheduler_stop(CRASH, OLD)
    run.at(CRASH + 1, "ecs", stop)
    _not_founds(run, CRASH + 25)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 2})
    assert owned_losses(wired["ledger"].deployment_losses(SERVICE, D1), D1) == [
        CRASH + 10,
        CRASH + 20,
    ]
    run.at(T0 + 160, "ecs", deployment(d2, "IN_PROGRESS", T0 + 90))
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 2})  # moved, not counted again
    assert owned_losses(wired["ledger"].deployment_losses(SERVICE, D1), D1) == []
    assert owned_losses(wired["ledger"].deployment_losses(SERVICE, d2), d2) == [
        CRASH + 10,
        CRASH + 20,
    ]
