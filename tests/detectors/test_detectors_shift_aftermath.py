"""A canary's second 404 of one session, on another blue task: the shift's, never ``stickiness``.

The fact order of the lab's ``canary`` scenario where the stickiness alarm fired on a
deployment (times relative to the deployment D's start, ``S`` = 0): blue tasks ``blue-o`` (the
session's origin) and ``blue-a`` run; D (CANARY, DescribeServices says so) starts green tasks and
shifts 25 % of production traffic. The client's request is drawn to green ``green-1`` (404: a
traffic-shift loss, counted ``deployment`` at once), and the 404's answer sets the client's
AWSALB cookie to ``green-1``. Its next request, 10 ms later, is drawn to the blue target group,
where no target matches the cookie, and lands on ``blue-a`` (404 again, same lineage as the
origin). The two lines come in two log streams. ECS's clean-up stop of the blue tasks arrives
3 s later (origin alive at both 404s), then the reporter runs. Before the fix the reporter
settled the second 404 as ``stickiness`` ("origin task alive at the 404") and SessionsLost
{Cause=stickiness} got 1: the stickiness alarm fired on a rollout.

Through the real handlers over the in-memory ledger (``memory_wired``), at chosen times.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3

from sessionwatch.contract import Cause
from sessionwatch.detectors.handlers import runtime
from tests.detectors.builders import SERVICE, T0, deployment, fp, line, subscription, task
from tests.detectors.test_detectors_late_facts import Run
from tests.detectors.test_detectors_lineage import describe_services_response
from world.aws import answer_calls
from world.ecs import STOP_SCHEDULER, scheduler_reason

OLD, D = "ecs-svc/old", "ecs-svc/canary"
GRACE = 120.0
S = T0 + 600.0  # D's IN_PROGRESS
SHIFT_404 = S + 3.0  # the request drawn to green
HOP_404 = SHIFT_404 + 0.01  # the next one, drawn to blue, on blue-a (its cookie names green-1)
CLEAN_UP = HOP_404 + 3.2  # blue-o and blue-a begin stopping


def _canary_reads(run: Run) -> None:
    """The strategy read answers CANARY for D, as ECS's DescribeServices does."""
    answer = describe_services_response("CANARY")
    service = answer["services"][0]
    service["serviceName"] = SERVICE
    service["deployments"][0]["id"] = D
    service["deployments"][1]["id"] = OLD
    ecs = boto3.client("ecs", region_name="us-east-1")
    run.h.ecs_client = answer_calls(ecs, "ecs", {"DescribeServices": lambda _: answer})


def _before_the_shift(run: Run, session: str) -> None:
    """Blue running, ``session`` created on blue-o, D started with two green tasks."""
    _canary_reads(run)
    for tid in ("blue-a", "blue-o"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0, started_by=OLD, started_at=T0 - 3600))
    run.at(
        T0 + 1, "logs", subscription([line("session_created", "blue-o", T0, session=fp(session))])
    )
    run.at(S, "ecs", deployment(D, "IN_PROGRESS", S))
    for tid in ("green-1", "green-2"):
        run.at(S + 1, "ecs", task(tid, "RUNNING", S + 1, started_by=D, started_at=S + 1))


def _not_found(task_id: str, at: float, session: str) -> dict[str, Any]:
    stream = f"ecs/mcp-server/{task_id}"  # each task ships its own log stream
    return subscription([line("session_not_found", task_id, at, session=fp(session))], stream)


def _clean_up(run: Run) -> None:
    """The blue tasks' scheduler stops (DEACTIVATING with stoppingAt), as ECS sends them."""
    stop = dict(stopping_at=CLEAN_UP, stop_code=STOP_SCHEDULER, reason=scheduler_reason(OLD))
    for tid in ("blue-o", "blue-a"):
        run.at(CLEAN_UP, "ecs", task(tid, "DEACTIVATING", CLEAN_UP, started_by=OLD, **stop))


def _minutes(run: Run, since: float, until: float) -> None:
    t = since
    while t <= until:
        run.at(t, "reporter", {})
        t += 60


def _verdicts(session: str) -> dict[Cause, str]:
    """The session's count locks that stand (not taken back), with their serving task."""
    locks = runtime.ledger().session_locks(fp(session))
    return {x.cause: x.serving_task for x in locks if x.retracted_at is None}


def test_the_lab_order_never_counts_the_second_404_as_stickiness(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    run = Run(memory_wired, caplog)
    _before_the_shift(run, "s")
    first = run.at(SHIFT_404 + 0.7, "logs", _not_found("green-1", SHIFT_404, "s"))
    assert first == Counter({Cause.DEPLOYMENT.value: 1})  # the shift loss, at once
    run.at(HOP_404 + 0.8, "logs", _not_found("blue-a", HOP_404, "s"))
    _clean_up(run)
    _minutes(run, CLEAN_UP + 0.5, HOP_404 + 3 * GRACE)
    assert run.lost[Cause.STICKINESS.value] == 0 and Cause.STICKINESS.value not in run.lost
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1})
    assert _verdicts("s") == {Cause.DEPLOYMENT: "green-1"}
    assert not run.revised


def test_either_order_of_the_two_log_streams_converges(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """The blue task's line delivered first: it waits for the facts of the grace period."""
    run = Run(memory_wired, caplog)
    _before_the_shift(run, "s")
    run.at(HOP_404 + 0.5, "logs", _not_found("blue-a", HOP_404, "s"))
    _clean_up(run)
    run.at(CLEAN_UP + 0.5, "reporter", {})  # origin seen alive at the 404: still no verdict
    run.at(SHIFT_404 + 30, "logs", _not_found("green-1", SHIFT_404, "s"))
    _minutes(run, SHIFT_404 + 60, HOP_404 + 3 * GRACE)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1})
    assert _verdicts("s") == {Cause.DEPLOYMENT: "green-1"}


def test_both_404s_decided_in_one_reporter_batch(memory_wired: dict[str, Any], caplog: Any) -> None:
    """D's IN_PROGRESS arrives after both 404s (within the grace period): both wait, and the
    reporter decides them in one batch, the hop from the shift's verdict in that same batch."""
    run = Run(memory_wired, caplog)
    _canary_reads(run)
    for tid in ("blue-a", "blue-o"):
        run.at(T0, "ecs", task(tid, "RUNNING", T0, started_by=OLD, started_at=T0 - 3600))
    run.at(T0 + 1, "logs", subscription([line("session_created", "blue-o", T0, session=fp("s"))]))
    for tid in ("green-1", "green-2"):
        run.at(S + 1, "ecs", task(tid, "RUNNING", S + 1, started_by=D, started_at=S + 1))
    run.at(HOP_404 + 1, "logs", _not_found("green-1", SHIFT_404, "s"))
    run.at(HOP_404 + 1, "logs", _not_found("blue-a", HOP_404, "s"))
    _clean_up(run)
    run.at(S + 90, "ecs", deployment(D, "IN_PROGRESS", S))  # late, within the grace period
    assert run.lost == Counter()
    _minutes(run, S + 100, HOP_404 + 3 * GRACE)
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1})
    assert _verdicts("s") == {Cause.DEPLOYMENT: "green-1"}


def test_a_cookie_less_hop_during_the_canary_stays_stickiness(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """The same blue-to-blue 404 without an earlier 404 of the session on D's tasks: a client
    that sent no cookie, drawn to its own target group (``stickiness``, once the grace period
    has passed: a shift 404 of it could still have been on its way)."""
    run = Run(memory_wired, caplog)
    _before_the_shift(run, "c")
    run.at(HOP_404 + 0.8, "logs", _not_found("blue-a", HOP_404, "c"))
    _clean_up(run)
    run.at(CLEAN_UP + 0.5, "reporter", {})
    assert run.lost == Counter()  # waits: the session's 404 on a green task could still come
    _minutes(run, CLEAN_UP + 60, HOP_404 + 3 * GRACE)
    assert run.lost == Counter({Cause.STICKINESS.value: 1})
    assert _verdicts("c") == {Cause.STICKINESS: "blue-a"}


def test_a_shift_line_later_than_the_grace_period_takes_the_hop_s_count_back(
    memory_wired: dict[str, Any], caplog: Any
) -> None:
    """What the wait cannot cover: green-1's line delivered after the grace period. The hop is
    settled ``stickiness`` first (counted); when the shift's 404 arrives and is counted, it is
    the session's earliest: the hop is its repeat, its stickiness count taken back (-1), so the
    metric's sum over a period holding both says what the final verdicts say."""
    run = Run(memory_wired, caplog)
    _before_the_shift(run, "s")
    run.at(HOP_404 + 0.8, "logs", _not_found("blue-a", HOP_404, "s"))
    _clean_up(run)
    _minutes(run, CLEAN_UP + 60, HOP_404 + GRACE + 60)
    assert run.lost == Counter({Cause.STICKINESS.value: 1})
    late = run.at(SHIFT_404 + GRACE + 100, "logs", _not_found("green-1", SHIFT_404, "s"))
    assert late == Counter({Cause.DEPLOYMENT.value: 1, Cause.STICKINESS.value: -1})
    # The shift's 404 is the session's earliest: it owns the session, the hop is its repeat.
    taken = [r for r in caplog.records if getattr(r, "repeats_taken_back", None)]
    assert [(r.session, r.cause, r.repeats_taken_back) for r in taken] == [  # type: ignore[attr-defined]
        (fp("s"), Cause.DEPLOYMENT.value, Cause.STICKINESS.value)
    ]
    assert _verdicts("s") == {Cause.DEPLOYMENT: "green-1"}
    _minutes(run, SHIFT_404 + GRACE + 160, HOP_404 + 4 * GRACE)  # nothing more, ever
    assert run.lost == Counter({Cause.DEPLOYMENT.value: 1, Cause.STICKINESS.value: 0})
