"""No ledger item grows with the cluster or its history, under DynamoDB's real 400 KB limit.

moto's own item limit (405,000 B, computed its own way, not atomic) is not DynamoDB's, so the
limit is modelled by ``benchmarks.dynamodb_model`` (item size by AWS's rules, a botocore hook
that refuses items over 409,600 B like DynamoDB). The fill goes through the ledger's own
writes, as the handlers make them.
"""

from __future__ import annotations

import os
import time

from benchmarks.dynamodb_model import MAX_ITEM_BYTES, install_item_limit, item_size
from sessionwatch.contract import Cause
from sessionwatch.detectors.classify import classify
from sessionwatch.detectors.facts import (
    DeploymentObserved,
    NotFound,
    SessionCreated,
    TaskFacts,
)
from sessionwatch.detectors.ledger import DEPLOYMENT_QUERY_LIMIT
from sessionwatch.detectors.ledger.dynamodb_items import (
    DEP_INDEX_PREFIX,
    deployment_index_key,
    deployment_key,
    service_pk,
    task_key,
)
from tests.detectors.builders import SERVICE, T0, fp
from tests.detectors.conftest import LedgerEnv
from world.ecs import STOP_SCHEDULER

SCHED = STOP_SCHEDULER
REASON = "Scaling activity initiated by (deployment ecs-svc/%d)"
# One entity's item: a task's facts from all its events, a deployment's with its ECS read.
MAX_ENTITY_BYTES = 2048
# The fill size: moto in process takes ~25 ms per task here, so CI fills 300 tasks and 30
# deployments; SESSIONWATCH_LEDGER_FILL=10000 runs the 10,000-task fill.
FILL = int(os.environ.get("SESSIONWATCH_LEDGER_FILL", "300"))


def _scan_sizes(env: LedgerEnv) -> list[tuple[int, str, str]]:
    sizes = []
    kwargs: dict[str, object] = {}
    while True:
        resp = env.client.scan(TableName=env.table, **kwargs)
        sizes += [(item_size(i), i["pk"]["S"], i["sk"]["S"]) for i in resp["Items"]]
        if "LastEvaluatedKey" not in resp:
            return sizes
        kwargs = {"ExclusiveStartKey": resp["LastEvaluatedKey"]}


def test_10000_tasks_and_1000_deployments_leave_every_item_small(ledger_env: LedgerEnv) -> None:
    """10,000 tasks and 1,000 deployments of 10 services through the ledger's writes: the
    largest item is one entity's, whatever the history (the old layout's summary shards
    overflowed DynamoDB's limit at about 17,750 tasks). Each task gets its STOPPED event,
    which carries every field a task has (start, drain, stop, code, reason, revision)."""
    lg = ledger_env.ledger
    started = time.perf_counter()
    for d in range(FILL // 10):
        svc, t = f"svc-{d % 10}", T0 + d * 60
        lg.record_deployment(DeploymentObserved(svc, f"ecs-svc/{d}", t, False, reason="x"))
        lg.record_deployment(DeploymentObserved(svc, f"ecs-svc/{d}", t + 50, True, "COMPLETED"))
    for i in range(FILL):
        svc, t, by = f"svc-{i % 10}", T0 + i * 6, f"ecs-svc/{i // 10}"
        lg.record_task(
            TaskFacts(f"task{i}", svc, by, t, t + 600, t + 630, SCHED, REASON % i, f"td:{i // 10}")
        )
    fill_s = time.perf_counter() - started
    sizes = _scan_sizes(ledger_env)
    largest = max(sizes)
    last = FILL // 10 - 1
    assert largest[0] < MAX_ENTITY_BYTES, largest
    by_kind = {
        "task": item_size(_get(ledger_env, task_key(f"task{FILL - 1}"))),
        "deployment": item_size(_get(ledger_env, deployment_key("svc-9", f"ecs-svc/{last}"))),
        "index": item_size(
            _get(ledger_env, deployment_index_key("svc-9", f"ecs-svc/{last}", T0 + last * 60))
        ),
    }
    assert all(0 < v < 1024 for v in by_kind.values()), by_kind
    assert len(sizes) >= 2 * FILL  # the ledger grew by items, not by item size
    print(f"fill {fill_s:.1f} s, {len(sizes)} items, largest {largest}, {by_kind}")


def test_every_event_of_a_task_and_a_deployment_fits_under_the_real_limit(
    ledger_env: LedgerEnv,
) -> None:
    """With DynamoDB's 409,600 B limit enforced (and item sizes by AWS's rules), a task's
    every event, duplicated, and a deployment's every event and ECS read stay one small item."""
    lg = ledger_env.ledger
    uninstall = install_item_limit(ledger_env.client)
    try:
        for _ in range(3):  # at-least-once delivery
            lg.record_deployment(DeploymentObserved("svc-0", "ecs-svc/1", T0, False, reason="x"))
            lg.record_deployment(DeploymentObserved("svc-0", "ecs-svc/1", T0 + 50, True, "FAILED"))
            for obs in (
                TaskFacts("t", "svc-0", "ecs-svc/1", T0, task_definition="td:1"),
                TaskFacts("t", "svc-0", "ecs-svc/1", T0, T0 + 60, None, SCHED, REASON % 1),
                TaskFacts("t", "svc-0", "ecs-svc/1", T0, T0 + 60, T0 + 90, SCHED, REASON % 1),
            ):
                lg.record_task(obs)
    finally:
        uninstall()
    assert max(_scan_sizes(ledger_env))[0] < MAX_ITEM_BYTES / 400


def _get(env: LedgerEnv, key: tuple[str, str]) -> dict:
    pk, sk = key
    return env.client.get_item(TableName=env.table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]


def test_a_decision_reads_the_same_items_however_long_the_history(ledger_env: LedgerEnv) -> None:
    """Four pages' worth of deployments of one service before the loss (100: the calls are
    the same for any history past one page): the decision still reads a bounded page of the
    service's index (newest first, small Limit) and decides by lineage."""
    lg = ledger_env.ledger
    history = 4 * DEPLOYMENT_QUERY_LIMIT
    for d in range(history):
        t = T0 + d * 600
        lg.record_deployment(DeploymentObserved(SERVICE, f"ecs-svc/{d}", t, False))
        lg.record_deployment(
            DeploymentObserved(SERVICE, f"ecs-svc/{d}", t + 300, True, "COMPLETED")
        )
    last = T0 + (history - 1) * 600
    newest, before = f"ecs-svc/{history - 1}", f"ecs-svc/{history - 2}"
    lg.record_task(TaskFacts("old", SERVICE, before, last - 500, last + 30, None, SCHED))
    lg.record_task(TaskFacts("new", SERVICE, newest, last + 20))
    lg.record_sessions([SessionCreated(fp("s"), "old", last - 100)], [])
    calls = _count(ledger_env)
    [d] = classify(lg, [NotFound(fp("s"), "new", last + 40)], ledger_env.cfg, last + 41)
    assert (d.verdict.cause, d.verdict.deployment_id) == (Cause.DEPLOYMENT, newest)
    # Queries: the index page, and the session's locks (its count lock is new: is there an
    # earlier 404 of the session that owns it?), whatever the history.
    assert calls == {"BatchGetItem": 2, "Query": 2, "UpdateItem": 3, "BatchWriteItem": 1}
    index_items = ledger_env.client.query(
        TableName=ledger_env.table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :d)",
        ExpressionAttributeValues={":p": {"S": service_pk(SERVICE)}, ":d": {"S": DEP_INDEX_PREFIX}},
        Select="COUNT",
    )["Count"]
    assert index_items == history


def _count(env: LedgerEnv) -> dict[str, int]:
    calls: dict[str, int] = {}

    def hook(model, **_):
        calls[model.name] = calls.get(model.name, 0) + 1

    env.client.meta.events.register("before-call.dynamodb.*", hook)
    return calls
