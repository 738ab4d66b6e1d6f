"""Property test: each 404 of a session gets the verdict it gets when judged alone, whatever
else arrived first, and SessionsLost counts each (session, cause) exactly once.

The story: session S is created on task A; deployment D replaces A (draining at +60, stopped
at +90). S's client then gets 404s that mean different things: on A itself before the drain
(expired), on live task B while A was still serving (stickiness), on B and C after the drain
(deployment; the +59.5 one within the clocks' 1 s error before the drain, while the +57 one,
3 s before it, is a hop of the client's own: stickiness). The ECS facts arrive in any order
among the 404s, so a 404 may wait as ``pending`` until the reporter (or a re-delivery) sees them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sessionwatch.contract import DIMENSION_CAUSE, METRIC_SESSIONS_LOST, Cause
from sessionwatch.detectors.classify import Decision, classify
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import NotFound, TaskFacts, Verdict
from sessionwatch.detectors.facts import DeploymentObserved, SessionCreated
from sessionwatch.detectors.handlers import runtime, session_events
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.reporter_run import run_reporter
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import CLUSTER, SERVICE, T0, fp, line, subscription
from tests.detectors.conftest import create_table
from tests.detectors.test_detectors_scenario import emf_docs
from world.ecs import STOP_SCHEDULER

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


def seeded_ledger(db: Any, facts: list[DeploymentObserved | TaskFacts]) -> tuple[Ledger, Config]:
    """The session's creation and the serving tasks; ``facts`` on top."""
    table = create_table(db)
    cfg = Config(
        table_name=table,
        cluster_name=CLUSTER,
        service_names=frozenset({SERVICE}),
        grace_period_s=GRACE,
    )
    ledger = Ledger(db, table, cfg.ledger_ttl_days)
    ledger.record_task(TaskFacts("task-b", SERVICE, "old", T0 - 900))
    ledger.record_task(TaskFacts("task-c", SERVICE, "d", T0 + 30))
    ledger.record_sessions([SessionCreated(SESSION, "task-a", T0 - 500)], [])
    for fact in facts:
        record(ledger, fact)
    return ledger, cfg


def record(ledger: Ledger, fact: DeploymentObserved | TaskFacts) -> None:
    if isinstance(fact, DeploymentObserved):
        ledger.record_deployment(fact)
    else:
        ledger.record_task(fact)


def essence(v: Verdict) -> tuple[Cause, str | None, str | None, str | None]:
    return (v.cause, v.service, v.origin_task, v.deployment_id)


@pytest.fixture(scope="module")
def alone(db: Any) -> list[tuple[Cause, str | None, str | None, str | None]]:
    """Each 404 judged alone (its own batch, nothing else delivered), every fact in hand."""
    verdicts = []
    for i in range(len(OCCURRENCES)):
        ledger, cfg = seeded_ledger(db, FACTS)
        [d] = classify(ledger, [occurrence(i)], cfg, LATEST + 1)
        verdicts.append(essence(d.verdict))
    assert [v[0] for v in verdicts] == [c for _, _, c in OCCURRENCES]
    assert {v[3] for v in verdicts if v[0] is Cause.DEPLOYMENT} == {"d"}
    return verdicts


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(steps=deliveries())
# The order that once mattered: the deployment-time 404 counted first, the earlier one later.
@example(
    steps=[(T0 + 101, "fact", [f]) for f in range(len(FACTS))]
    + [(T0 + 102, "logs", [3]), (T0 + 103, "logs", [1]), (T0 + 104, "reporter", [])]
)
def test_each_404_is_judged_alone_and_each_session_cause_counted_once(db, alone, steps) -> None:
    ledger, cfg = seeded_ledger(db, [])
    index = {(task, at): i for i, (task, at, _) in enumerate(OCCURRENCES)}
    delivered: set[int] = set()
    decisions: list[Decision] = []
    for now, kind, batch in steps:
        if kind == "fact":
            record(ledger, FACTS[batch[0]])
        elif kind == "logs":
            delivered |= set(batch)
            decisions += classify(ledger, [occurrence(i) for i in batch], cfg, now)
        else:
            decisions += run_reporter(cfg, ledger, None, None, now).decisions
    # The reporter, once every grace period has passed (twice: nothing counts again).
    for now in (LATE, LATE + 60):
        decisions += run_reporter(cfg, ledger, None, None, now).decisions

    decided: dict[int, set[tuple[Cause, str | None, str | None, str | None]]] = {}
    for d in decisions:
        if d.verdict.final:
            decided.setdefault(index[(d.occurrence.task_id, d.occurrence.at)], set()).add(
                essence(d.verdict)
            )
    # Every delivered 404 was decided, always the same way, and as when judged alone.
    assert decided == {i: {alone[i]} for i in delivered}
    # Each (session, cause) pair counted exactly once.
    pairs = {alone[i][0] for i in delivered}
    counted = Counter(d.verdict.cause for d in decisions if d.counted)
    assert counted == Counter(pairs)
    # The count locks, and the deployment's loss entry, keep the earliest 404 of each pair.
    locks = {lock.cause.value: lock.at for lock in ledger.session_locks(SESSION)}
    assert locks == {
        c.value: min(OCCURRENCES[i][1] for i in delivered if alone[i][0] is c) for c in pairs
    }
    deployment_times = [OCCURRENCES[i][1] for i in delivered if alone[i][0] is Cause.DEPLOYMENT]
    assert owned_losses(ledger.deployment_losses(SERVICE, "d"), "d") == sorted(deployment_times)[:1]
    assert ledger.pending() == []


@pytest.fixture
def handler_env(db: Any, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    ledger, cfg = seeded_ledger(db, FACTS)
    for k, v in {
        "LEDGER_TABLE_NAME": cfg.table_name,
        "CLUSTER_NAME": CLUSTER,
        "SERVICE_NAMES": SERVICE,
        "GRACE_PERIOD_SECONDS": str(int(GRACE)),
    }.items():
        monkeypatch.setenv(k, v)
    runtime.reset()
    yield ledger
    runtime.reset()


def test_a_deployment_loss_is_counted_by_the_session_handler_a_second_later(
    handler_env: Ledger, monkeypatch, capsys, caplog, lambda_context
) -> None:
    """The deployment alarm's data point leaves with the 404's own invocation: no reporter
    run, no grace period, when the facts (drain, stop code, deployment window) are in hand."""
    now = {"t": T0 + 71}
    monkeypatch.setattr(runtime, "clock", lambda: now["t"])
    capsys.readouterr()
    first = subscription([line("session_not_found", "task-c", T0 + 70, session=SESSION)])
    result = session_events.handler(first, lambda_context)
    assert (result["decided"], result["counted"]) == (1, 1)
    lost = [d for d in emf_docs(capsys.readouterr().out) if METRIC_SESSIONS_LOST in d]
    assert [(d[DIMENSION_CAUSE], d[METRIC_SESSIONS_LOST]) for d in lost] == [("deployment", 1)]
    assert handler_env.pending() == [] and owned_losses(
        handler_env.deployment_losses(SERVICE, "d"), "d"
    ) == [T0 + 70]
    # The client's retry two seconds later: decided again, the same way, not counted again.
    now["t"] = T0 + 73
    retry = subscription([line("session_not_found", "task-b", T0 + 72, session=SESSION)])
    caplog.clear()
    assert session_events.handler(retry, lambda_context)["counted"] == 0
    assert not [d for d in emf_docs(capsys.readouterr().out) if METRIC_SESSIONS_LOST in d]
    logged = [r for r in caplog.records if r.getMessage() == "session loss decided"]
    assert [(r.cause, r.serving_task, r.counted) for r in logged] == [
        ("deployment", "task-b", False)
    ]
