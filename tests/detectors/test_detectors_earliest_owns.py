"""A session is counted once, to its earliest 404, whatever the delivery order.

The shape the accuracy benchmark found (seed 600087): session S, created on task A, whose two
404s straddle A's drain. Its client hops without its cookie to the live task B 5 s before A
begins draining (``stickiness``: A still had the session), then retries 0.3 s after the drain
began (deployment d replaces A: ``deployment``). S was lost at the hop; the retry repeats a
lost session and must add no count and no entry to d's report. S2, on A until the drain, is
d's loss. Both 404s of S and A's drain (d's start and A's stop) arrive in every order, each
once or twice, with reporter runs between; then d completes and the reporter, once every
grace period passed, sends its report (twice: nothing changes).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from sessionwatch.contract import DIMENSION_CAUSE, Cause
from sessionwatch.detectors.classify import Decision, classify, lost_points, revisit_task
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.facts import DeploymentObserved, NotFound, SessionCreated, TaskFacts
from sessionwatch.detectors.ledger import DynamoDBLedger, InMemoryLedger, LedgerStore
from sessionwatch.detectors.reporter_run import run_reporter
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import CLUSTER, SERVICE, T0, fp, record_fact
from tests.detectors.conftest import create_table, report_clients
from world.ecs import STOP_SCHEDULER

GRACE = 120.0
DRAIN = T0 + 60
S, S2 = fp("hopper"), fp("stayer")
HOP = NotFound(S, "task-b", DRAIN - 5)  # cookie-less, A alive: stickiness
RETRY = NotFound(S, "task-b", DRAIN + 0.3)  # after A began draining: deployment
STAYER = NotFound(S2, "task-c", DRAIN + 1)  # its session was on A when it drained
DRAIN_FACTS = [
    DeploymentObserved(SERVICE, "d", T0, False),
    TaskFacts("task-a", SERVICE, "old", T0 - 900, stopping_at=DRAIN, stop_code=STOP_SCHEDULER),
]
COMPLETED = DeploymentObserved(SERVICE, "d", DRAIN + 30, True, "COMPLETED")
LATE = DRAIN + 10_000  # every grace period has passed
ITEMS = ("hop", "retry", "drain")
ORDERS = [
    pytest.param(order, twice, id="-".join(order) + ("-twice" if twice else ""))
    for order in itertools.permutations(ITEMS)
    for twice in (False, True)
]


@pytest.fixture(scope="module")
def clients(aws: None) -> dict[str, Any]:
    return report_clients("earliest-owns")


def ledgers(clients: dict[str, Any]) -> dict[str, Callable[[], LedgerStore]]:
    def dynamodb() -> LedgerStore:
        return DynamoDBLedger(clients["db"], create_table(clients["db"]), 14)

    return {"memory": InMemoryLedger, "dynamodb": dynamodb}


def seeded(make: Callable[[], LedgerStore], topic: str | None = None) -> tuple[LedgerStore, Config]:
    ledger = make()
    cfg = Config(
        table_name="t",
        cluster_name=CLUSTER,
        service_names=frozenset({SERVICE}),
        grace_period_s=GRACE,
        report_topic_arn=topic,
    )
    ledger.record_task(TaskFacts("task-a", SERVICE, "old", T0 - 900))
    ledger.record_task(TaskFacts("task-b", SERVICE, "old", T0 - 900))
    ledger.record_task(TaskFacts("task-c", SERVICE, "d", T0 + 30))
    ledger.record_sessions([SessionCreated(S, "task-a", T0 - 500)], [])
    ledger.record_sessions([SessionCreated(S2, "task-a", T0 - 400)], [])
    return ledger, cfg


def signed(decisions: list[Decision]) -> list[tuple[str, float]]:
    """The SessionsLost points the decisions emit, in order: (cause, +1 or -1)."""
    return [(dict(p.dimensions)[DIMENSION_CAUSE], p.value) for p in lost_points(decisions)]


def net(points: list[tuple[str, float]]) -> dict[str, float]:
    total: Counter[str] = Counter()
    for cause, value in points:
        total[cause] += value
    return {c: v for c, v in total.items() if v}


@pytest.mark.parametrize("ledger_kind", ["memory", "dynamodb"])
@pytest.mark.parametrize(("order", "twice"), ORDERS)
def test_a_session_whose_404s_straddle_its_origin_s_drain_is_counted_once_to_the_first(
    clients: dict[str, Any], ledger_kind: str, order: tuple[str, ...], twice: bool
) -> None:
    ledger, cfg = seeded(ledgers(clients)[ledger_kind], clients["topic"])
    decisions: list[Decision] = []
    now = DRAIN + 1
    for item in list(order) * (2 if twice else 1):
        now += 1
        if item == "drain":
            for fact in DRAIN_FACTS:
                record_fact(ledger, fact)
        else:
            occurrences = [HOP if item == "hop" else RETRY, STAYER]
            decisions += classify(ledger, occurrences, cfg, now)
        decisions += run_reporter(cfg, ledger, clients["sns"], clients["cw"], now).decisions
    record_fact(ledger, COMPLETED)
    first = run_reporter(cfg, ledger, clients["sns"], clients["cw"], LATE)
    again = run_reporter(cfg, ledger, clients["sns"], clients["cw"], LATE + 60)
    decisions += first.decisions + again.decisions

    # Each 404 got its own verdict...
    verdicts = {(d.occurrence, d.verdict.cause) for d in decisions if d.verdict.final}
    assert verdicts == {
        (HOP, Cause.STICKINESS),
        (RETRY, Cause.DEPLOYMENT),
        (STAYER, Cause.DEPLOYMENT),
    }
    # ...but S is counted once, under its earliest 404's cause; S2 under deployment.
    mine = [d for d in decisions if d.occurrence.fingerprint == S]
    points = signed(mine)
    assert net(points) == {"stickiness": 1}
    assert net(signed(decisions)) == {"stickiness": 1, "deployment": 1}
    # A +1 -1 pair under deployment only when the order forces it: the retry (and the drain
    # that decides it) delivered before the hop.
    retry_first = order.index("hop") > max(order.index("retry"), order.index("drain"))
    assert points == (
        [("deployment", 1), ("stickiness", 1), ("deployment", -1)]
        if retry_first
        else [("stickiness", 1)]
    )
    live = [lock.cause for lock in ledger.session_locks(S) if lock.retracted_at is None]
    assert live == [Cause.STICKINESS]
    # d's report: S2 alone, in the report sent and in the ledger's loss entries.
    assert owned_losses(ledger.deployment_losses(SERVICE, "d"), "d") == [STAYER.at]
    [report] = first.reports
    assert (report.deployment_id, report.sessions_lost) == ("d", 1)
    assert again.reports == [] and ledger.pending() == []


@pytest.mark.parametrize("ledger_kind", ["memory", "dynamodb"])
def test_a_sent_report_that_counted_the_retry_gets_a_follow_up_without_it(
    clients: dict[str, Any], ledger_kind: str
) -> None:
    """The retry reaches the detectors first and d's report is sent counting S; the hop is
    delivered late: S's deployment count is taken back (-1, once) and d's report gets a
    follow-up with S2 alone."""
    ledger, cfg = seeded(ledgers(clients)[ledger_kind], clients["topic"])
    for fact in [*DRAIN_FACTS, COMPLETED]:
        record_fact(ledger, fact)
    decisions = classify(ledger, [RETRY, STAYER], cfg, DRAIN + 2)
    sent = run_reporter(cfg, ledger, clients["sns"], clients["cw"], LATE)
    assert [(r.sessions_lost, r.followup) for r in sent.reports] == [(2, False)]
    decisions += classify(ledger, [HOP], cfg, LATE + 10)
    decisions += classify(ledger, [HOP, RETRY], cfg, LATE + 11)  # re-delivered: nothing more
    followup = run_reporter(cfg, ledger, clients["sns"], clients["cw"], LATE + 4000)
    assert [(r.sessions_lost, r.followup) for r in followup.reports] == [(1, True)]
    assert signed([d for d in decisions if d.occurrence.fingerprint == S]) == [
        ("deployment", 1),
        ("stickiness", 1),
        ("deployment", -1),
    ]


@pytest.mark.parametrize("ledger_kind", ["memory", "dynamodb"])
def test_a_hop_re_decided_by_a_late_stop_takes_the_retry_s_lock_back(
    clients: dict[str, Any], ledger_kind: str
) -> None:
    """Late facts: A crashed-and-drained facts arrive past the grace period, so the hop
    (after the drain this time) was counted ``stickiness``; a retry decided between the stop's
    store and its revisit found the hop's lock earlier and holds a taken-back ``deployment``
    lock. The revisit re-decides the hop ``deployment``: its claim moves that lock to the hop
    and counts it again (+1), the stickiness count is taken back (-1): S ends counted once,
    under deployment, and in d's losses once."""
    ledger, cfg = seeded(ledgers(clients)[ledger_kind])
    hop = NotFound(S, "task-b", DRAIN + 0.2)
    decisions = classify(ledger, [hop], cfg, DRAIN + GRACE + 10)  # A looks alive: stickiness
    assert [(d.verdict.cause, d.counted) for d in decisions] == [(Cause.STICKINESS, True)]
    for fact in DRAIN_FACTS:
        record_fact(ledger, fact)
    decisions += classify(ledger, [RETRY], cfg, DRAIN + GRACE + 11)
    assert [lock.retracted_at is None for lock in ledger.session_locks(S)] == [False, True]
    assert revisit_task(ledger, "task-a", cfg, DRAIN + GRACE + 12, decisions)
    assert net(signed(decisions)) == {"deployment": 1}
    assert len([p for p in signed(decisions) if p == ("deployment", 1)]) == 1
    live = [(lock.cause, lock.at) for lock in ledger.session_locks(S) if lock.retracted_at is None]
    assert live == [(Cause.DEPLOYMENT, hop.at)]
    assert owned_losses(ledger.deployment_losses(SERVICE, "d"), "d") == [hop.at]
    # A second revisit (a re-delivered stop) changes nothing.
    again: list[Decision] = []
    revisit_task(ledger, "task-a", cfg, DRAIN + GRACE + 13, again)
    assert signed(again) == []


def test_a_failed_read_after_the_claim_keeps_the_count_and_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lock is claimed once: when reading the session's locks fails right after, the
    decision still says ``counted`` (the handler emits it) and the error is raised for the
    retry; the 404 waits as pending."""
    ledger, cfg = seeded(InMemoryLedger)
    for fact in DRAIN_FACTS:
        record_fact(ledger, fact)

    def fails(self: InMemoryLedger, fingerprint: str) -> list[Any]:
        raise RuntimeError("throttled")

    monkeypatch.setattr(InMemoryLedger, "session_locks", fails)
    decisions: list[Decision] = []
    with pytest.raises(RuntimeError, match="throttled"):
        classify(ledger, [STAYER], cfg, DRAIN + 2, decisions)
    assert [(d.verdict.cause, d.counted) for d in decisions] == [(Cause.DEPLOYMENT, True)]
    assert ledger.pending() == [STAYER]
