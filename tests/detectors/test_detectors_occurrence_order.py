"""Property test: each 404 of a session gets the verdict it gets when judged alone, whatever
else arrived first, and SessionsLost counts the session once, to its earliest 404's cause.

The story: session S is created on task A; deployment D replaces A (draining at +60, stopped
at +90). S's client then gets 404s that mean different things: on A itself before the drain
(expired), on live task B while A was still serving (stickiness), on B and C after the drain
(deployment; the +59.5 one within the clocks' 1 s error before the drain, while the +57 one,
3 s before it, is a hop of the client's own: stickiness). The ECS facts arrive in any order
among the 404s, so a 404 may wait as ``pending`` until the reporter (or a re-delivery) sees them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sessionwatch.contract import DIMENSION_CAUSE, METRIC_SESSIONS_LOST, Cause
from sessionwatch.detectors.classify import Decision, classify, lost_points
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import NotFound, TaskFacts, Verdict
from sessionwatch.detectors.facts import DeploymentObserved, SessionCreated
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.ledger import InMemoryLedger, LedgerStore
from sessionwatch.detectors.reporter_run import run_reporter
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import CLUSTER, SERVICE, T0, fp, line, record_fact, subscription
from tests.detectors.conftest import create_table
from world.ecs import STOP_SCHEDULER
from world.harness import Harness, detector_harness

GRACE = 300.0
SESSION = fp("wanderer")
SCHED = STOP_SCHEDULER
# (serving task, time, the cause this 404 gets judged alone with every fact in hand)
OCCURRENCES = [
    ("task-a", T0 - 50, Cause.EXPIRED),
    ("task-b", T0 + 10, Cause.STICKINESS),
    ("task-b", T0 + 57, Cause.STICKINESS),
    ("task-b", T0 + 59.5, Cause.DEPLOYMENT),
    ("task-c", T0 + 70, Cause.DEPLOYMENT),
    ("task-b", T0 + 100, Cause.DEPLOYMENT),
]
FACTS: list[DeploymentObserved | TaskFacts] = [
    DeploymentObserved(SERVICE, "d", T0, False),
    TaskFacts("task-a", SERVICE, "old", T0 - 900, stopping_at=T0 + 60, stop_code=SCHED),
    # The stop alone (no draining time): 404s before it stay pending until the drain is known.
    TaskFacts("task-a", SERVICE, "old", T0 - 900, stopped_at=T0 + 90, stop_code=SCHED),
    DeploymentObserved(SERVICE, "d", T0 + 95, True, "COMPLETED"),
]
FIRST = min(t for _, t, _ in OCCURRENCES)
LATEST = max(t for _, t, _ in OCCURRENCES)
LATE = T0 + 10_000  # every grace period has passed
Step = tuple[float, str, list[int]]


def occurrence(i: int) -> NotFound:
    task, at, _ = OCCURRENCES[i]
    return NotFound(SESSION, task, at)


@st.composite
def deliveries(draw: st.DrawFn) -> list[Step]:
    """(now, "logs" | "fact" | "reporter", indexes): a non-empty subset of the 404s and every
    ECS fact, some twice, in any order; consecutive 404s in any batching; reporter runs mixed
    in; all at non-decreasing times after the latest 404 and within every 404's grace period."""
    chosen = draw(st.lists(st.integers(0, len(OCCURRENCES) - 1), min_size=1, unique=True))
    extra = draw(st.lists(st.sampled_from(chosen), max_size=3))
    facts = list(range(len(FACTS))) + draw(st.lists(st.integers(0, len(FACTS) - 1), max_size=2))
    order = draw(
        st.permutations([("nf", i) for i in chosen + extra] + [("fact", i) for i in facts])
    )
    times = sorted(
        draw(
            st.lists(
                st.floats(LATEST, FIRST + GRACE - 1, allow_nan=False),
                min_size=len(order),
                max_size=len(order),
            )
        )
    )
    steps: list[Step] = []
    batch: list[int] = []
    for n, ((kind, i), now) in enumerate(zip(order, times, strict=True)):
        if kind == "fact":
            steps.append((now, "fact", [i]))
        else:
            batch.append(i)
            if n + 1 < len(order) and order[n + 1][0] == "nf" and draw(st.booleans()):
                continue  # the next 404 rides in the same subscription payload
            steps.append((now, "logs", batch))
            batch = []
        if draw(st.booleans()):
            steps.append((now, "reporter", []))
    return steps


@pytest.fixture(scope="module")
def db(aws: None) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def dynamodb(db: Any) -> Callable[[], LedgerStore]:
    """Fresh DynamoDB ledgers (a table each) in ``db``'s moto backend."""

    def make() -> LedgerStore:
        table = create_table(db)
        return Ledger(db, table, Config(table_name=table, cluster_name=CLUSTER).ledger_ttl_days)

    return make


def seeded_ledger(
    make: Callable[[], LedgerStore], facts: list[DeploymentObserved | TaskFacts]
) -> tuple[LedgerStore, Config]:
    """The session's creation and the serving tasks; ``facts`` on top."""
    ledger = make()
    cfg = Config(
        table_name="in-memory",
        cluster_name=CLUSTER,
        service_names=frozenset({SERVICE}),
        grace_period_s=GRACE,
    )
    ledger.record_task(TaskFacts("task-b", SERVICE, "old", T0 - 900))
    ledger.record_task(TaskFacts("task-c", SERVICE, "d", T0 + 30))
    ledger.record_sessions([SessionCreated(SESSION, "task-a", T0 - 500)], [])
    for fact in facts:
        record_fact(ledger, fact)
    return ledger, cfg


Essence = tuple[Cause, str | None, str | None, str | None]


def essence(v: Verdict) -> Essence:
    return (v.cause, v.service, v.origin_task, v.deployment_id)


def judged_alone(make: Callable[[], LedgerStore]) -> list[Essence]:
    """Each 404 judged alone (its own batch, nothing else delivered), every fact in hand."""
    verdicts = []
    for i in range(len(OCCURRENCES)):
        ledger, cfg = seeded_ledger(make, FACTS)
        [d] = classify(ledger, [occurrence(i)], cfg, LATEST + 1)
        verdicts.append(essence(d.verdict))
    return verdicts


@pytest.fixture(scope="module")
def alone() -> list[Essence]:
    verdicts = judged_alone(InMemoryLedger)
    assert [v[0] for v in verdicts] == [c for _, _, c in OCCURRENCES]
    assert {v[3] for v in verdicts if v[0] is Cause.DEPLOYMENT} == {"d"}
    return verdicts


def deliver(ledger: LedgerStore, cfg: Config, alone: list[Essence], steps: list[Step]) -> None:
    """Play ``steps`` into ``ledger``; every delivered 404 decided as when judged alone, the
    session counted once (net) under its earliest 404's cause, the earliest 404 of each
    (session, cause) lock kept."""
    index = {(task, at): i for i, (task, at, _) in enumerate(OCCURRENCES)}
    delivered: set[int] = set()
    decisions: list[Decision] = []
    for now, kind, batch in steps:
        if kind == "fact":
            record_fact(ledger, FACTS[batch[0]])
        elif kind == "logs":
            delivered |= set(batch)
            decisions += classify(ledger, [occurrence(i) for i in batch], cfg, now)
        else:
            decisions += run_reporter(cfg, ledger, None, None, now).decisions
    # The reporter, once every grace period has passed (twice: nothing counts again).
    for now in (LATE, LATE + 60):
        decisions += run_reporter(cfg, ledger, None, None, now).decisions

    decided: dict[int, set[Essence]] = {}
    for d in decisions:
        if d.verdict.final:
            decided.setdefault(index[(d.occurrence.task_id, d.occurrence.at)], set()).add(
                essence(d.verdict)
            )
    # Every delivered 404 was decided, always the same way, and as when judged alone.
    assert decided == {i: {alone[i]} for i in delivered}
    # The session counted once, net, under its earliest delivered 404's cause: a later 404
    # counted first (another cause) is taken back (-1) when the earlier one arrives.
    pairs = {alone[i][0] for i in delivered}
    owner = alone[min(delivered, key=lambda i: OCCURRENCES[i][1])][0]
    net: Counter[str] = Counter()
    signs: Counter[tuple[str, float]] = Counter()
    for p in lost_points(decisions):
        cause = dict(p.dimensions)[DIMENSION_CAUSE]
        net[cause] += p.value
        signs[(cause, p.value)] += 1
    assert {c: n for c, n in net.items() if n} == {owner.value: 1}
    assert max(signs.values()) == 1  # each cause at most one +1 and one -1
    # The count locks, and the deployment's loss entry, keep the earliest 404 of each pair;
    # only the owner's lock is not taken back, so only it can be a deployment's loss.
    found = ledger.session_locks(SESSION)
    locks = {lock.cause.value: lock.at for lock in found}
    assert locks == {
        c.value: min(OCCURRENCES[i][1] for i in delivered if alone[i][0] is c) for c in pairs
    }
    assert [lock.cause for lock in found if lock.retracted_at is None] == [owner]
    deployment_times = [OCCURRENCES[i][1] for i in delivered if alone[i][0] is Cause.DEPLOYMENT]
    owned = sorted(deployment_times)[:1] if owner is Cause.DEPLOYMENT else []
    assert owned_losses(ledger.deployment_losses(SERVICE, "d"), "d") == owned
    assert ledger.pending() == []


# The order that once mattered: the deployment-time 404 counted first, the earlier one later.
ONCE_MATTERED: list[Step] = [(T0 + 101, "fact", [f]) for f in range(len(FACTS))] + [
    (T0 + 102, "logs", [3]),
    (T0 + 103, "logs", [1]),
    (T0 + 104, "reporter", []),
]
# Every 404, each fact twice, ECS facts last: every 404 waits as pending for the reporter.
ALL_PENDING: list[Step] = (
    [(LATEST + 1, "logs", [i]) for i in range(len(OCCURRENCES))]
    + [(LATEST + 2, "fact", [f]) for f in range(len(FACTS))] * 2
    + [(LATEST + 3, "reporter", [])]
)


# On the in-memory ledger (the contract suite shows it decides as the DynamoDB one does), so
# the property gets many examples for little time.
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=deliveries())
@example(steps=ONCE_MATTERED)
@example(steps=ALL_PENDING)
def test_each_404_is_judged_alone_and_the_session_counted_once_to_the_earliest(
    alone, steps
) -> None:
    deliver(*seeded_ledger(InMemoryLedger, []), alone, steps)


# The same property on the DynamoDB ledger: the fixed orders above and a few generated ones.
@settings(
    max_examples=4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(steps=deliveries())
@example(steps=ONCE_MATTERED)
@example(steps=ALL_PENDING)
def test_the_dynamodb_ledger_decides_the_same_orders_alike(db, alone, steps) -> None:
    deliver(*seeded_ledger(dynamodb(db), []), alone, steps)


def test_each_404_judged_alone_on_dynamodb_is_judged_as_in_memory(db, alone) -> None:
    assert judged_alone(dynamodb(db)) == alone


@pytest.fixture
def handler_env(db: Any) -> Iterator[tuple[LedgerStore, Harness]]:
    table = create_table(db)
    ledger, _ = seeded_ledger(lambda: Ledger(db, table, 14), FACTS)
    env = {
        "LEDGER_TABLE_NAME": table,
        "CLUSTER_NAME": CLUSTER,
        "SERVICE_NAMES": SERVICE,
        "GRACE_PERIOD_SECONDS": str(int(GRACE)),
    }
    with detector_harness(env) as h:
        yield ledger, h


def test_a_deployment_loss_is_counted_by_the_session_handler_a_second_later(
    handler_env: tuple[LedgerStore, Harness], caplog
) -> None:
    """The deployment alarm's data point leaves with the 404's own invocation: no reporter
    run, no grace period, when the facts (drain, stop code, deployment window) are in hand."""
    ledger, h = handler_env
    h.now = T0 + 71
    first = subscription([line("session_not_found", "task-c", T0 + 70, session=SESSION)])
    result = h.call("logs", first)
    assert (result["decided"], result["counted"]) == (1, 1)
    lost = [d for d in h.emf() if METRIC_SESSIONS_LOST in d]
    assert [(d[DIMENSION_CAUSE], d[METRIC_SESSIONS_LOST]) for d in lost] == [("deployment", 1)]
    assert ledger.pending() == [] and owned_losses(ledger.deployment_losses(SERVICE, "d"), "d") == [
        T0 + 70
    ]
    # The client's retry two seconds later: decided again, the same way, not counted again.
    h.now = T0 + 73
    retry = subscription([line("session_not_found", "task-b", T0 + 72, session=SESSION)])
    caplog.clear()
    assert h.call("logs", retry)["counted"] == 0
    assert not [d for d in h.emf() if METRIC_SESSIONS_LOST in d]
    logged = [r for r in caplog.records if r.getMessage() == "session loss decided"]
    assert [(r.cause, r.serving_task, r.counted) for r in logged] == [
        ("deployment", "task-b", False)
    ]
