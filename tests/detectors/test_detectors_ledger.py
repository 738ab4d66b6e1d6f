"""The ledger against moto: idempotent facts, verdicts locked once, batched reads."""

from __future__ import annotations

from collections import Counter

from detectors.classify import classify
from detectors.core import NotFound, Verdict
from detectors.facts import DeploymentObserved, SessionClosed, SessionCreated, TaskObserved
from detectors.ledger import task_from_item, task_key
from detectors.names import Cause
from tests.detectors.builders import SERVICE, T0, fp
from tests.detectors.conftest import LedgerEnv


def count_calls(client) -> Counter[str]:
    """Count DynamoDB API calls on ``client`` with a botocore event hook."""
    calls: Counter[str] = Counter()
    client.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
    )
    return calls


def test_task_observations_merge_in_any_order(ledger_env: LedgerEnv) -> None:
    stopping = TaskObserved(
        "t1", SERVICE, "d-old", T0 - 99, T0, None, "ServiceSchedulerInitiated", "r"
    )
    stopped = TaskObserved(
        "t1", SERVICE, "d-old", T0 - 99, T0, T0 + 30, "ServiceSchedulerInitiated", "r"
    )
    for obs in (stopped, stopping, stopped, TaskObserved("t1", started_at=T0 - 120)):
        ledger_env.ledger.record_task(obs)
    item = ledger_env.ledger.get_many([task_key("t1")])[task_key("t1")]
    facts = task_from_item("t1", item)
    assert facts is not None
    assert (facts.started_at, facts.stopping_at, facts.stopped_at) == (T0 - 120, T0, T0 + 30)
    assert facts.service == SERVICE and facts.stop_code == "ServiceSchedulerInitiated"
    assert ledger_env.ledger.service_task_ids(SERVICE) == ["t1"]


def test_deployment_windows_from_duplicates_and_any_order(ledger_env: LedgerEnv) -> None:
    obs = [
        DeploymentObserved(SERVICE, "d1", T0 + 60, True, "COMPLETED"),
        DeploymentObserved(SERVICE, "d1", T0, False),
        DeploymentObserved(SERVICE, "d1", T0, False),
    ]
    for o in obs:
        ledger_env.ledger.record_deployment(o)
    [w] = ledger_env.ledger.windows()
    assert (w.deployment_id, w.started_at, w.ended_at, w.outcome) == (
        "d1",
        T0,
        T0 + 60,
        "COMPLETED",
    )


def test_verdict_is_locked_exactly_once(ledger_env: LedgerEnv) -> None:
    nf = NotFound(fp("x"), "t2", T0)
    v = Verdict(Cause.DEPLOYMENT, SERVICE, "t1", "d1")
    assert ledger_env.ledger.lock_verdict(nf, v, T0 + 1) is True
    assert ledger_env.ledger.lock_verdict(nf, v, T0 + 2) is False
    assert ledger_env.ledger.deployment_losses(SERVICE, "d1") == [T0]


def test_session_spans_per_task(ledger_env: LedgerEnv) -> None:
    a, b = fp("a"), fp("b")
    ledger_env.ledger.record_sessions(
        [SessionCreated(a, "t1", T0), SessionCreated(b, "t1", T0 + 1)],
        [SessionClosed(a, "t1", T0 + 5, "client_delete")],
    )
    spans = {s.fingerprint: s for s in ledger_env.ledger.task_sessions("t1")}
    assert spans[a].closed_at == T0 + 5 and spans[b].closed_at is None


def test_a_batch_of_not_founds_costs_two_read_round_trips(ledger_env: LedgerEnv) -> None:
    """150 not-founds (over BatchGetItem's 100-key limit per call) in one batch."""
    lg = ledger_env.ledger
    lg.record_task(
        TaskObserved("old", SERVICE, "d0", T0 - 999, T0, T0 + 9, "ServiceSchedulerInitiated")
    )
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 10, False))
    lg.record_sessions([SessionCreated(fp(str(i)), "old", T0 - 500) for i in range(150)], [])
    calls = count_calls(ledger_env.client)
    occurrences = [NotFound(fp(str(i)), "new", T0 + 20 + i) for i in range(150)]
    decisions = classify(lg, occurrences, ledger_env.cfg, T0 + 30)
    assert {d.verdict.cause for d in decisions} == {Cause.DEPLOYMENT}
    assert sum(d.counted for d in decisions) == 150
    # Round 1: 150 sessions + 150 verdicts + serving task + windows = 302 keys -> 4 calls;
    # round 2: the one origin task -> 1 call. Never one read per event.
    assert calls["BatchGetItem"] == 5
    assert calls["GetItem"] == 0 and calls["Query"] == 0
    # Re-delivery of the whole batch: nothing counted again.
    again = classify(lg, occurrences, ledger_env.cfg, T0 + 40)
    assert again == []
