"""A verdict revised by later facts: its count is taken back once, and a late close revises.

Both ledgers (DynamoDB over moto, in-memory), through ``classify`` and the ingest functions the
handlers call. The metric's sum per cause (``lost_points`` of every decision) must end at the
final verdicts: +1 under the last cause, 0 under every cause it passed through.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from sessionwatch.contract import Cause
from sessionwatch.detectors.classify import Decision, classify, lost_points
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.facts import (
    DeploymentObserved,
    NotFound,
    SessionClosed,
    SessionCreated,
    TaskFacts,
)
from sessionwatch.detectors.ingest import ingest_ecs_events, ingest_log_payload
from sessionwatch.detectors.ledger import DynamoDBLedger, InMemoryLedger, LedgerStore
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import CLUSTER, SERVICE, T0, deployment, fp, line, subscription, task
from tests.detectors.conftest import create_table
from world.ecs import STOP_ESSENTIAL_EXIT, STOP_SCHEDULER

OLD, D1 = "ecs-svc/old", "ecs-svc/d1"


@pytest.fixture(params=["memory", "dynamodb"])
def ledger(request: pytest.FixtureRequest) -> Iterator[LedgerStore]:
    if request.param == "memory":
        yield InMemoryLedger()
        return
    request.getfixturevalue("aws")
    client = boto3.client("dynamodb", region_name="us-east-1")
    yield DynamoDBLedger(client, create_table(client), 14)


@pytest.fixture
def cfg() -> Config:
    return Config(table_name="t", cluster_name=CLUSTER, service_names=frozenset({SERVICE}))


def metric(decisions: list[Decision]) -> Counter[str]:
    """SessionsLost summed per cause over the emitted points (zeros kept)."""
    total: Counter[str] = Counter()
    for p in lost_points(decisions):
        total[dict(p.dimensions)["Cause"]] += int(p.value)
    return total


def test_a_lock_revised_twice_is_taken_back_once(ledger: LedgerStore, cfg: Config) -> None:
    """One 404, three verdicts as facts arrive later than the grace period: ``deployment`` (a
    scheduler stop in D1's window, no stop code seen), then ``task_failure`` (the stop code
    arrives: the essential container exited), then ``expired`` (the session's idle-expiry close
    arrives: it ended before its task stopped). Each revision takes back the verdict before it,
    once: the sum is 1 under ``expired`` and 0 under the two others (the second revision used
    to take ``deployment`` back a second time and leave ``task_failure`` counted)."""
    ledger.record_deployment(DeploymentObserved(SERVICE, D1, T0, False))
    ledger.record_task(TaskFacts("old", SERVICE, OLD, T0 - 900, T0 + 60))
    ledger.record_task(TaskFacts("new", SERVICE, D1, T0 + 30))
    ledger.record_sessions([SessionCreated(fp("x"), "old", T0 - 500)], [])
    nf = NotFound(fp("x"), "new", T0 + 70)
    late = T0 + 70 + cfg.grace_period_s + 1
    decisions = classify(ledger, [nf], cfg, late)
    assert [(d.verdict.cause, d.counted) for d in decisions] == [(Cause.DEPLOYMENT, True)]
    ledger.record_task(TaskFacts("old", SERVICE, OLD, stop_code=STOP_ESSENTIAL_EXIT))
    decisions += classify(ledger, [nf], cfg, late + 300)
    ledger.record_sessions([], [SessionClosed(fp("x"), "old", T0 + 40, "idle_timeout")])
    decisions += classify(ledger, [nf], cfg, late + 600)
    assert metric(decisions) == Counter({"expired": 1, "deployment": 0, "task_failure": 0})
    assert [(d.verdict.cause, d.revised_from) for d in decisions] == [
        (Cause.DEPLOYMENT, None),
        (Cause.TASK_FAILURE, Cause.DEPLOYMENT),
        (Cause.EXPIRED, Cause.TASK_FAILURE),
    ]
    # Delivered again: nothing more counted, nothing taken back twice.
    again = classify(ledger, [nf], cfg, late + 900)
    assert metric(again) == Counter()
    assert owned_losses(ledger.deployment_losses(SERVICE, D1), D1) == []


# The story of a session that expired before its task was replaced: created on task-a, closed
# by idle expiry at T0 + 100; D1 replaces task-a (draining at T0 + 1850); the client comes back
# at T0 + 2400 and gets a 404 on D1's task-c.
BACK = T0 + 2400
SCHED: dict[str, Any] = dict(
    stopping_at=T0 + 1850,
    stop_code=STOP_SCHEDULER,
    reason=f"Scaling activity initiated by (deployment {OLD})",
)
ROLLOUT = [
    task("task-a", "RUNNING", T0 - 7200, started_by=OLD, started_at=T0 - 7200),
    task("task-b", "RUNNING", T0 - 7200, started_by=OLD, started_at=T0 - 7200),
    deployment(D1, "IN_PROGRESS", T0 + 1800),
    task("task-c", "RUNNING", T0 + 1810, started_by=D1, started_at=T0 + 1810),
    task("task-a", "DEACTIVATING", T0 + 1850, started_by=OLD, started_at=T0 - 7200, **SCHED),
    task(
        "task-a",
        "STOPPED",
        T0 + 1880,
        started_by=OLD,
        started_at=T0 - 7200,
        stopped_at=T0 + 1880,
        **SCHED,
    ),
    deployment(D1, "COMPLETED", T0 + 1900),
]


def _inputs() -> dict[str, Callable[[Config, LedgerStore, float, list[Decision]], Any]]:
    def logs(lines: list[str], stream: str) -> Callable[..., Any]:
        payload = subscription(lines, stream=stream)
        return lambda cfg, lg, now, out: ingest_log_payload(payload, cfg, lg, now).decisions

    return {
        "created": logs(
            [line("session_created", "task-a", T0 - 3000, session=fp("idle"))], "ecs/a"
        ),
        "ecs": lambda cfg, lg, now, out: ingest_ecs_events(ROLLOUT, cfg, lg, now=now).decisions,
        "closed": logs(
            [line("session_closed", "task-a", T0 + 100, session=fp("idle"), reason="idle_timeout")],
            "ecs/a",
        ),
        "not_found": logs([line("session_not_found", "task-c", BACK, session=fp("idle"))], "ecs/c"),
    }


@pytest.mark.parametrize("order", list(itertools.permutations(_inputs())))
def test_a_close_delivered_after_its_404_was_decided_makes_it_expired_in_any_order(
    ledger: LedgerStore, cfg: Config, order: tuple[str, ...]
) -> None:
    """Whatever the order the four inputs arrive in (10 s apart, from the 404 on), the session
    ends ``expired``: where the 404 was first decided ``deployment`` (its close not yet
    delivered), the close decides it again and takes the deployment's count back, so the
    metric sums to 1 ``expired`` and 0 ``deployment`` and D1's report does not count it."""
    inputs = _inputs()
    decisions: list[Decision] = []
    for i, name in enumerate(order):
        decisions += inputs[name](cfg, ledger, BACK + 10 * i, decisions)
    settled = BACK + cfg.grace_period_s + 60
    decisions += classify(ledger, ledger.pending(), cfg, settled)  # the reporter's pass
    total = metric(decisions)
    assert total["expired"] == 1 and total["deployment"] == 0, (order, total)
    assert set(+total) == {"expired"}, total
    assert owned_losses(ledger.deployment_losses(SERVICE, D1), D1) == []
    if order.index("not_found") < order.index("closed") and {"created", "ecs"} <= set(
        order[: order.index("not_found")]
    ):
        # Decided before its close arrived: counted under deployment first, then taken back.
        assert [d.taken_back for d in decisions if d.taken_back] == [(Cause.DEPLOYMENT,)]


def test_a_sent_report_gets_a_follow_up_when_a_late_close_takes_its_loss_back(
    ledger: LedgerStore, cfg: Config
) -> None:
    """The 404 is decided ``deployment`` and D1's report goes out counting it; the close then
    arrives: the loss leaves D1's count and the report is flagged for a follow-up (which says
    one loss fewer), once."""
    inputs = _inputs()
    decisions: list[Decision] = []
    for i, name in enumerate(("created", "ecs", "not_found")):
        decisions += inputs[name](cfg, ledger, BACK + 10 * i, decisions)
    assert owned_losses(ledger.deployment_losses(SERVICE, D1), D1) == [BACK]
    sent = BACK + cfg.grace_period_s
    assert ledger.claim_report(SERVICE, D1, sent, 300)
    ledger.mark_sent(SERVICE, D1, sent, "COMPLETED")
    assert not ledger.deployments([(SERVICE, D1)])[(SERVICE, D1)].report.wants_followup
    decisions += inputs["closed"](cfg, ledger, sent + 30, decisions)
    record = ledger.deployments([(SERVICE, D1)])[(SERVICE, D1)]
    assert record.report.wants_followup
    assert owned_losses(ledger.deployment_losses(SERVICE, D1), D1) == []
    assert metric(decisions) == Counter({"expired": 1, "deployment": 0})
