"""Property test: a session's 404s that would be judged differently, delivered in any order,
duplicated, in any batching and at any time each within its grace period, always give the
verdict of the session's earliest 404, counted once.

The story: session S is created on task A; deployment D replaces A (draining at +60). S's
client then gets 404s that, taken alone, mean different things: on A itself before the drain
(expired), on live task B while A was still serving (stickiness), on C and B after the drain
(deployment). Without holding a verdict until no earlier 404 can arrive, delivering the +70
404 first would lock "deployment" and the +10 one would be ignored.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from detectors.classify import classify
from detectors.config import Config
from detectors.core import NotFound
from detectors.facts import DeploymentObserved, SessionCreated, TaskObserved
from detectors.ledger import Ledger, lost_key
from detectors.names import Cause
from tests.detectors.builders import CLUSTER, SERVICE, T0, fp
from tests.detectors.conftest import create_table

GRACE = 300.0
SESSION = fp("wanderer")
SCHED = "ServiceSchedulerInitiated"
# (serving task, time, the cause this 404 gets if it is the session's earliest)
OCCURRENCES = [
    ("task-a", T0 - 50, Cause.EXPIRED),
    ("task-b", T0 + 10, Cause.STICKINESS),
    ("task-c", T0 + 70, Cause.DEPLOYMENT),
    ("task-b", T0 + 100, Cause.DEPLOYMENT),
]
LATEST = max(t for _, t, _ in OCCURRENCES)


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[float, str, list[int]]]:
    """(now, "logs" | "reporter", occurrence indexes): a non-empty subset of the 404s, some
    twice, in any order and batching, delivered at non-decreasing times no earlier than the
    latest 404 happened and before the earliest one's grace period ends."""
    chosen = draw(st.lists(st.integers(0, len(OCCURRENCES) - 1), min_size=1, unique=True))
    extra = draw(st.lists(st.sampled_from(chosen), max_size=3))
    order = draw(st.permutations(chosen + extra))
    earliest = min(OCCURRENCES[i][1] for i in chosen)
    times = sorted(
        draw(
            st.lists(
                st.floats(LATEST, earliest + GRACE - 1, allow_nan=False),
                min_size=len(order),
                max_size=len(order),
            )
        )
    )
    steps: list[tuple[float, str, list[int]]] = []
    batch: list[int] = []
    for n, (i, now) in enumerate(zip(order, times, strict=True)):
        batch.append(i)
        if n + 1 < len(order) and draw(st.booleans()):
            continue  # the next 404 rides in the same subscription payload
        steps.append((now, "logs", batch))
        batch = []
        if draw(st.booleans()):
            steps.append((now, "reporter", []))
    return steps


@pytest.fixture(scope="module")
def db(aws: None) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


def seeded_ledger(db: Any) -> tuple[Ledger, Config]:
    table = create_table(db)
    cfg = Config(
        table_name=table,
        cluster_name=CLUSTER,
        service_names=frozenset({SERVICE}),
        grace_period_s=GRACE,
    )
    ledger = Ledger(db, table, cfg.ledger_ttl_days)
    ledger.record_deployment(DeploymentObserved(SERVICE, "d", T0, False))
    ledger.record_deployment(DeploymentObserved(SERVICE, "d", T0 + 120, True, "COMPLETED"))
    ledger.record_task(TaskObserved("task-a", SERVICE, "old", T0 - 900, T0 + 60, T0 + 90, SCHED))
    ledger.record_task(TaskObserved("task-b", SERVICE, "old", T0 - 900))
    ledger.record_task(TaskObserved("task-c", SERVICE, "d", T0 + 30))
    ledger.record_sessions([SessionCreated(SESSION, "task-a", T0 - 500)], [])
    return ledger, cfg


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(steps=deliveries())
# The case that used to depend on order: the deployment-time 404 first, the earlier one later.
@example(steps=[(T0 + 101, "logs", [2]), (T0 + 102, "logs", [1]), (T0 + 103, "reporter", [])])
def test_the_verdict_rests_on_the_earliest_404_whatever_the_delivery(db, steps) -> None:
    ledger, cfg = seeded_ledger(db)
    delivered: set[int] = set()
    counted: list[Cause] = []
    for now, kind, batch in steps:
        if kind == "logs":
            delivered |= set(batch)
            occurrences = [NotFound(SESSION, OCCURRENCES[i][0], OCCURRENCES[i][1]) for i in batch]
        else:
            occurrences = ledger.pending()
        decisions = classify(ledger, occurrences, cfg, now)
        counted += [d.verdict.cause for d in decisions if d.counted]
    # The reporter, once every grace period has passed (twice: nothing counts again).
    for now in (T0 + 10_000, T0 + 10_060):
        decisions = classify(ledger, ledger.pending(), cfg, now)
        counted += [d.verdict.cause for d in decisions if d.counted]

    expected = min((OCCURRENCES[i][1], OCCURRENCES[i][2]) for i in delivered)[1]
    assert counted == [expected]
    pk, sk = lost_key(SESSION)
    item = db.get_item(TableName=cfg.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
    assert item["cause"]["S"] == expected.value
    assert float(item["lost_at"]["N"]) == min(OCCURRENCES[i][1] for i in delivered)
    assert ledger.pending() == []
