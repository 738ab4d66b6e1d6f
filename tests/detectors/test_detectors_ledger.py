"""The ledger against moto: idempotent facts, verdicts locked once, batched reads."""

from __future__ import annotations

from collections import Counter

from sessionwatch.contract import Cause
from sessionwatch.detectors.classify import classify
from sessionwatch.detectors.core import NotFound, TaskFacts, Verdict, reason_marks, stop_category
from sessionwatch.detectors.facts import DeploymentObserved, SessionClosed, SessionCreated
from sessionwatch.detectors.ledger_items import (
    deployment_loss_key,
    key_item,
    lost_key,
    lost_prefix,
    session_key,
)
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
    stopping = TaskFacts(
        "t1", SERVICE, "d-old", T0 - 99, T0, None, "ServiceSchedulerInitiated", "r"
    )
    stopped = TaskFacts(
        "t1", SERVICE, "d-old", T0 - 99, T0, T0 + 30, "ServiceSchedulerInitiated", "r"
    )
    for obs in (stopped, stopping, stopped, TaskFacts("t1", started_at=T0 - 120)):
        ledger_env.ledger.record_task(obs)
    ledger_env.ledger.record_task(TaskFacts("t2", SERVICE, started_at=T0))
    tasks = ledger_env.ledger.tasks(["t1", "t2", "t3"])
    facts = tasks["t1"]
    assert (facts.started_at, facts.stopping_at, facts.stopped_at) == (T0 - 120, T0, T0 + 30)
    assert facts.service == SERVICE and facts.stop_code == "ServiceSchedulerInitiated"
    assert sorted(tasks) == ["t1", "t2"] and tasks["t2"].stop_began is None


def test_task_summary_keeps_what_stop_category_reads() -> None:
    reasons = [
        None,
        "Scaling activity initiated by (deployment ecs-svc/1)",
        "Task failed ELB health checks in (target-group arn:aws:elasticloadbalancing:x)",
        "Your Spot Task was interrupted.",
        "Task is being retired: host maintenance on the underlying hardware",
    ]
    for code in (None, "ServiceSchedulerInitiated", "UserInitiated", "TerminationNotice"):
        for reason in reasons:
            full = TaskFacts("t", stop_code=code, stopped_reason=reason)
            marked = TaskFacts("t", stop_code=code, stopped_reason=reason_marks(reason))
            assert stop_category(marked) == stop_category(full), (code, reason)


def test_live_task_index_follows_the_merged_facts_in_any_order(ledger_env: LedgerEnv) -> None:
    lg = ledger_env.ledger
    stopped = TaskFacts("t1", SERVICE, "d0", T0 - 99, T0, T0 + 30, "ServiceSchedulerInitiated")
    lg.record_task(stopped)
    lg.record_task(TaskFacts("t1", SERVICE, "d0", T0 - 99))  # RUNNING delivered after the stop
    lg.record_task(TaskFacts("t2", SERVICE, "d0", T0 - 99))
    assert lg.live_tasks(SERVICE) == ["t2"]
    assert lg.stops_between(SERVICE, T0 - 1, T0 + 1) == ["t1"]


def test_deployment_windows_from_duplicates_and_any_order(ledger_env: LedgerEnv) -> None:
    obs = [
        DeploymentObserved(SERVICE, "d1", T0 + 60, True, "COMPLETED"),
        DeploymentObserved(SERVICE, "d1", T0, False),
        DeploymentObserved(SERVICE, "d1", T0, False),
    ]
    for o in obs:
        ledger_env.ledger.record_deployment(o)
    [w] = ledger_env.ledger.windows_of(SERVICE, T0 - 100, T0 + 100)
    assert (w.deployment_id, w.started_at, w.ended_at, w.outcome) == (
        "d1",
        T0,
        T0 + 60,
        "COMPLETED",
    )


def test_a_loss_is_locked_once_per_session_and_cause_earliest_occurrence_kept(
    ledger_env: LedgerEnv,
) -> None:
    lg, client, table = ledger_env.ledger, ledger_env.client, ledger_env.table
    dep = Verdict(Cause.DEPLOYMENT, SERVICE, "t1", "d1")
    assert lg.lock_verdict(NotFound(fp("x"), "t2", T0 + 9), dep, T0 + 10) is True
    assert lg.lock_verdict(NotFound(fp("x"), "t2", T0 + 9), dep, T0 + 11) is False  # re-delivery
    assert lg.lock_verdict(NotFound(fp("x"), "t3", T0 + 1), dep, T0 + 12) is False  # earlier 404
    assert lg.lock_verdict(NotFound(fp("x"), "t2", T0 + 20), dep, T0 + 13) is False  # retry
    sticky = Verdict(Cause.STICKINESS, SERVICE, "t1")
    assert lg.lock_verdict(NotFound(fp("x"), "t4", T0 - 5), sticky, T0 + 14) is True
    assert lg.lock_verdict(NotFound(fp("y"), "t2", T0 + 2), dep, T0 + 15) is True
    # The report's loss times: one per session, the earliest 404, whatever the arrival order.
    assert lg.deployment_losses(SERVICE, "d1") == [T0 + 1, T0 + 2]
    pk, sk = lost_key(fp("x"), Cause.DEPLOYMENT)
    item = client.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]
    assert (item["cause"]["S"], item["serving_task"]["S"]) == ("deployment", "t3")
    assert (float(item["at"]["N"]), float(item["decided_at"]["N"])) == (T0 + 1, T0 + 10)
    pk, prefix = lost_prefix(fp("x"))
    assert sorted(i["sk"]["S"] for i in lg.query(pk, prefix)) == [
        "LOST#deployment",
        "LOST#stickiness",
    ]


def test_session_spans_per_task(ledger_env: LedgerEnv) -> None:
    a, b = fp("a"), fp("b")
    ledger_env.ledger.record_sessions(
        [SessionCreated(a, "t1", T0), SessionCreated(b, "t1", T0 + 1)],
        [SessionClosed(a, "t1", T0 + 5, "client_delete")],
    )
    spans = {s.fingerprint: s for s in ledger_env.ledger.task_sessions("t1")}
    assert spans[a].closed_at == T0 + 5 and spans[b].closed_at is None


def test_session_record_keeps_the_client_that_opened_it(ledger_env: LedgerEnv) -> None:
    """Who held the session: what a move to stateless would affect (one optional field)."""
    a, b = fp("a"), fp("b")
    ledger_env.ledger.record_sessions(
        [SessionCreated(a, "t1", T0, "editor-agent"), SessionCreated(b, "t1", T0)], []
    )
    items = {}
    for session in (a, b):
        pk, sk = session_key(session)
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        items[session] = ledger_env.client.get_item(TableName=ledger_env.table, Key=key)["Item"]
    assert items[a]["client_name"] == {"S": "editor-agent"}
    assert "client_name" not in items[b]
    assert items[b]["task_id"] == {"S": "t1"}


def test_a_batch_of_not_founds_costs_two_read_waves(ledger_env: LedgerEnv) -> None:
    """150 not-founds (over BatchGetItem's 100-key limit per call) in one batch, each on a
    different origin task: wave 1 the sessions and serving task, wave 2 the origin tasks and
    the service's newest deployments; nothing else is read, however big the ledger."""
    lg = ledger_env.ledger
    for i in range(150):
        lg.record_task(
            TaskFacts(f"old{i}", SERVICE, "d0", T0 - 999, T0, T0 + 9, "ServiceSchedulerInitiated")
        )
    lg.record_task(TaskFacts("new", SERVICE, "d1", T0 - 5))
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 - 10, False))
    lg.record_sessions([SessionCreated(fp(str(i)), f"old{i}", T0 - 500) for i in range(150)], [])
    calls = count_calls(ledger_env.client)
    occurrences = [NotFound(fp(str(i)), "new", T0 + 20 + i) for i in range(150)]
    now = T0 + 170 + ledger_env.cfg.grace_period_s  # every occurrence past its grace period
    before = lg.read_round_trips
    decisions = classify(lg, occurrences, ledger_env.cfg, now)
    assert {d.verdict.cause for d in decisions} == {Cause.DEPLOYMENT}
    assert {d.verdict.deployment_id for d in decisions} == {"d1"}
    assert sum(d.counted for d in decisions) == 150
    # Wave 1: 150 sessions + 1 serving task = 2 BatchGetItem chunks; wave 2: 150 origin tasks
    # (2 chunks) and ONE index Query for the service.
    assert lg.read_round_trips - before == 2
    assert calls["BatchGetItem"] == 4
    # Decided after their grace period, each newly counted pair also reads the session's
    # locks once (is this a revised verdict?): 1 index Query + 150.
    assert calls["GetItem"] == 0 and calls["Query"] == 1 + 150
    # Each deployment loss: report entry + count lock + the late-loss check (no report yet).
    assert calls["UpdateItem"] == 3 * 150
    # Re-delivery of the whole batch: the same verdicts, nothing counted again.
    again = classify(lg, occurrences, ledger_env.cfg, now + 10)
    assert [d.verdict.cause for d in again] == [Cause.DEPLOYMENT] * 150
    assert not any(d.counted for d in again)


def test_a_creation_record_past_the_ttl_counts_as_never_seen(ledger_env: LedgerEnv) -> None:
    """DynamoDB deletes expired items late; their origin tasks may already be pruned."""
    lg, cfg = ledger_env.ledger, ledger_env.cfg
    ttl = cfg.ledger_ttl_days * 86400
    lg.record_task(
        TaskFacts("old", SERVICE, "d0", T0 - 999, T0, T0 + 9, "ServiceSchedulerInitiated")
    )
    lg.record_sessions(
        [
            SessionCreated(fp("recent"), "old", T0 - 500),
            SessionCreated(fp("ancient"), "old", T0 - 500),
        ],
        [],
    )
    [recent] = classify(lg, [NotFound(fp("recent"), "new", T0 + 100)], cfg, T0 + 300)
    assert recent.verdict.cause is Cause.SCALE_IN
    now = T0 - 500 + ttl + 1
    [ancient] = classify(lg, [NotFound(fp("ancient"), "new", now - 200)], cfg, now)
    assert ancient.verdict.cause is Cause.UNKNOWN


def test_a_session_is_lost_to_one_deployment_whatever_the_order_of_attributions(
    ledger_env: LedgerEnv,
) -> None:
    """One 404 decided twice: first charged to B (C's start not yet arrived), then to C, which
    began later and so had the facts. In either order the lock names C and only C's report
    counts the session; an earlier 404 of the session decided later takes the lock (its
    deployment, the session's first loss) whatever it names."""
    b, c = "ecs-svc/B", "ecs-svc/C"
    to_b = Verdict(Cause.DEPLOYMENT, SERVICE, "o", b, deployment_started_at=T0)
    to_c = Verdict(Cause.DEPLOYMENT, SERVICE, "o", c, deployment_started_at=T0 + 150)
    nf = NotFound(fp("s"), "t", T0 + 160)
    lg = ledger_env.ledger
    for order in ((to_b, to_c), (to_c, to_b)):
        assert [lg.lock_verdict(nf, v, T0 + 200) for v in order] == [True, False]  # once
        assert lg.deployment_losses(SERVICE, c) == [T0 + 160]
        assert lg.deployment_losses(SERVICE, b) == []
        for stale in (
            lost_key(nf.fingerprint, Cause.DEPLOYMENT),
            deployment_loss_key(SERVICE, b, nf.fingerprint),
            deployment_loss_key(SERVICE, c, nf.fingerprint),
        ):
            ledger_env.client.delete_item(TableName=ledger_env.table, Key=key_item(stale))
    assert lg.lock_verdict(nf, to_c, T0 + 200)
    earlier = NotFound(fp("s"), "t", T0 + 100)
    assert not lg.lock_verdict(earlier, to_b, T0 + 210)  # not counted again, but it is B's
    assert lg.deployment_losses(SERVICE, b) == [T0 + 100]
    assert lg.deployment_losses(SERVICE, c) == []
