"""The DynamoDB ledger's own costs against moto: calls per batch, read waves. The semantics
both ledgers share are in test_detectors_ledger_contract.py."""

from __future__ import annotations

from collections import Counter

from sessionwatch.contract import Cause
from sessionwatch.detectors.classify import classify
from sessionwatch.detectors.core import NotFound, TaskFacts, reason_marks, stop_category
from sessionwatch.detectors.facts import DeploymentObserved, SessionCreated
from tests.detectors.builders import SERVICE, T0, fp
from tests.detectors.conftest import LedgerEnv
from world.ecs import STOP_SCHEDULER, scheduler_reason


def count_calls(client) -> Counter[str]:
    """Count DynamoDB API calls on ``client`` with a botocore event hook."""
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    return calls


def test_task_summary_keeps_what_stop_category_reads() -> None:
    reasons = [
        None,
        scheduler_reason("ecs-svc/1"),
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:x)",
        "Your Spot Task was interrupted.",
        "Task is being retired: host maintenance on the underlying hardware",
    ]
    for code in (None, STOP_SCHEDULER, "UserInitiated", "TerminationNotice"):
        for reason in reasons:
            full = TaskFacts("t", stop_code=code, stopped_reason=reason)
            marked = TaskFacts("t", stop_code=code, stopped_reason=reason_marks(reason))
            assert stop_category(marked) == stop_category(full), (code, reason)


def test_a_batch_of_not_founds_costs_two_read_waves(ledger_env: LedgerEnv) -> None:
    """101 not-founds (one over BatchGetItem's 100-key limit per call) in one batch, each on a
    different origin task: wave 1 the sessions and serving task, wave 2 the origin tasks and
    the service's newest deployments; nothing else is read, however big the ledger."""
    n = 101  # moto's Query time grows with the table: the smallest batch that needs 2 chunks
    lg = ledger_env.ledger
    for i in range(n):
        lg.record_task(TaskFacts(f"old{i}", SERVICE, "d0", T0 - 999, T0, T0 + 9, STOP_SCHEDULER))
    lg.record_task(TaskFacts("new", SERVICE, "d1", T0 - 5))
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 10, False))
    lg.record_sessions([SessionCreated(fp(str(i)), f"old{i}", T0 - 500) for i in range(n)], [])
    calls = count_calls(ledger_env.client)
    occurrences = [NotFound(fp(str(i)), "new", T0 + 20 + i) for i in range(n)]
    now = T0 + 20 + n + ledger_env.cfg.grace_period_s  # every occurrence past its grace period
    before = lg.read_round_trips
    decisions = classify(lg, occurrences, ledger_env.cfg, now)
    assert {d.verdict.cause for d in decisions} == {Cause.DEPLOYMENT}
    assert {d.verdict.deployment_id for d in decisions} == {"d1"}
    assert sum(d.counted for d in decisions) == n
    # Wave 1: 101 sessions + 1 serving task = 2 BatchGetItem chunks; wave 2: 101 origin tasks,
    # the 101 sessions' CLOSED# items on them and their LOST#deployment locks (4 chunks) and
    # ONE index Query.
    assert lg.read_round_trips - before == 2
    assert calls["BatchGetItem"] == 6
    # Each newly counted pair also reads the session's locks once (an earlier 404 of the
    # session? a revised verdict?), reused by the late take-back: 1 index Query + 101.
    assert calls["GetItem"] == 0 and calls["Query"] == 1 + n
    # Each deployment loss: report entry + count lock + the late-loss check (no report yet).
    assert calls["UpdateItem"] == 3 * n
    # Re-delivery of the whole batch: the same verdicts, nothing counted again.
    again = classify(lg, occurrences, ledger_env.cfg, now + 10)
    assert [d.verdict.cause for d in again] == [Cause.DEPLOYMENT] * n
    assert not any(d.counted for d in again)
