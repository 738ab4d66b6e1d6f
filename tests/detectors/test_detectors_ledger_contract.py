"""The ledger's contract: the same semantics from ``InMemoryLedger`` and ``DynamoDBLedger``.

Every test runs against both (DynamoDB over moto): idempotent, order-free merges; count locks
as conditional writes (created once, earliest 404 kept, same-404 tie-break, ALL_OLD answers);
the report's conditional transitions; index reads in DynamoDB's order and limits; the
deployment guards' records (a claim created once, given back, updated, read per deployment).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import boto3
import pytest

from sessionwatch.contract import Cause
from sessionwatch.detectors.classify import classify, lock_loss
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.facts import (
    DeploymentObserved,
    DeploymentSettings,
    HookObserved,
    NotFound,
    SessionClosed,
    SessionCreated,
    TaskFacts,
    Verdict,
)
from sessionwatch.detectors.ledger import (
    MAX_GUARD_FINGERPRINTS,
    DynamoDBLedger,
    Guard,
    IndexRequest,
    InMemoryLedger,
    LedgerStore,
    LossLock,
    ReadWave,
)
from sessionwatch.detectors.rules import owned_losses
from tests.detectors.builders import CLUSTER, SERVICE, T0, fp
from tests.detectors.conftest import create_table
from world.ecs import STOP_SCHEDULER

SCHED = STOP_SCHEDULER


@dataclass
class Store:
    ledger: LedgerStore
    cfg: Config


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    cfg = Config(table_name="t", cluster_name=CLUSTER, service_names=frozenset({SERVICE}))
    if request.param == "memory":
        yield Store(InMemoryLedger(), cfg)
        return
    request.getfixturevalue("aws")
    client = boto3.client("dynamodb", region_name="us-east-1")
    yield Store(DynamoDBLedger(client, create_table(client), cfg.ledger_ttl_days), cfg)


def losses(lg: LedgerStore, dep: str) -> list[float]:
    return owned_losses(lg.deployment_losses(SERVICE, dep), dep)


def test_task_observations_merge_in_any_order(store: Store) -> None:
    lg = store.ledger
    stopping = TaskFacts("t1", SERVICE, "d-old", T0 - 99, T0, None, SCHED, "r")
    stopped = TaskFacts("t1", SERVICE, "d-old", T0 - 99, T0, T0 + 30, SCHED, "r")
    first = lg.record_task(stopped)
    assert first is not None and first.revisited is None
    for obs in (stopping, stopped, TaskFacts("t1", started_at=T0 - 120)):
        lg.record_task(obs)
    lg.record_task(TaskFacts("t2", SERVICE, started_at=T0))
    tasks = lg.tasks(["t1", "t2", "t3"])
    facts = tasks["t1"]
    assert (facts.started_at, facts.stopping_at, facts.stopped_at) == (T0 - 120, T0, T0 + 30)
    assert facts.service == SERVICE and facts.stop_code == SCHED
    assert sorted(tasks) == ["t1", "t2"] and tasks["t2"].stop_began is None
    assert lg.record_task(TaskFacts("t3")) is None  # nothing to store


def test_a_merge_returns_the_facts_with_the_new_observation_and_the_last_revisit(
    store: Store,
) -> None:
    lg = store.ledger
    lg.record_task(TaskFacts("t1", SERVICE, "d0", T0 - 99))
    merged = lg.record_task(TaskFacts("t1", stopped_at=T0, stop_code=SCHED))
    assert merged is not None and merged.facts.stop_began == T0 and merged.revisited is None
    lg.mark_revisited("t1", merged.stop_mark)
    again = lg.record_task(TaskFacts("t1", stopped_at=T0, stop_code=SCHED))
    assert again is not None and again.revisited == merged.stop_mark


def test_live_task_index_follows_the_merged_facts_in_any_order(store: Store) -> None:
    lg = store.ledger
    lg.record_task(TaskFacts("t1", SERVICE, "d0", T0 - 99, T0, T0 + 30, SCHED))
    lg.record_task(TaskFacts("t1", SERVICE, "d0", T0 - 99))  # RUNNING delivered after the stop
    lg.record_task(TaskFacts("t2", SERVICE, "d0", T0 - 99))
    lg.record_task(TaskFacts("t3", SERVICE, "d0", T0 - 99))
    assert lg.live_tasks(SERVICE) == ["t2", "t3"]
    lg.drop_live(SERVICE, "t3")
    assert lg.live_tasks(SERVICE) == ["t2"]
    assert lg.stops_between(SERVICE, T0 - 1, T0 + 1) == ["t1"]
    assert lg.stops_between(SERVICE, T0 + 1, T0 + 99) == []


def test_deployment_windows_from_duplicates_and_any_order(store: Store) -> None:
    lg = store.ledger
    first = lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 + 60, True, "COMPLETED"))
    assert first.window is None and not first.has_settings  # no start seen yet
    for o in (DeploymentObserved(SERVICE, "d1", T0, False),) * 2:
        rec = lg.record_deployment(o)
    assert rec.window is not None and rec.window.ended_at == T0 + 60
    rec = lg.record_settings(SERVICE, "d1", DeploymentSettings("BLUE_GREEN", bake_s=60))
    assert rec.has_settings and rec.window is not None and rec.window.strategy == "BLUE_GREEN"
    [w] = lg.windows_of(SERVICE, T0 - 100, T0 + 100)
    assert (w.deployment_id, w.started_at, w.ended_at, w.outcome, w.bake_s) == (
        "d1",
        T0,
        T0 + 60,
        "COMPLETED",
        60.0,
    )
    assert ("", "") not in lg.deployments([(SERVICE, "d1"), (SERVICE, "nope")])
    assert list(lg.deployments([(SERVICE, "d1"), (SERVICE, "nope")])) == [(SERVICE, "d1")]


def test_index_reads_keep_dynamodb_order_and_limits(store: Store) -> None:
    """Newest first with a limit counting deployments and hook stages alike; open windows
    closed by the next start (SUPERSEDED); hooks attached to the deployment before them."""
    lg = store.ledger
    for i in range(4):
        lg.record_deployment(DeploymentObserved(SERVICE, f"d{i}", T0 + 100 * i, False))
    lg.record_hook(HookObserved(SERVICE, "BAKE_TIME", "IN_PROGRESS", T0 + 350))
    wave = lg.read(ReadWave(indexes=(IndexRequest(SERVICE, T0 + 400, limit=3),)))
    [entries] = wave.indexes.values()
    assert [e.at for e in entries] == [T0 + 350, T0 + 300, T0 + 200]
    windows = lg.deployments_before(SERVICE, T0 + 400, 3)
    assert [w.deployment_id for w in windows] == ["d2", "d3"]
    assert windows[0].outcome == "SUPERSEDED" and windows[1].stage_at("BAKE_TIME") == T0 + 350
    between = lg.windows_of(SERVICE, T0 + 50, T0 + 250)
    assert [w.deployment_id for w in between] == ["d1", "d2"]


def test_a_read_wave_returns_origins_and_tasks_it_found(store: Store) -> None:
    lg = store.ledger
    lg.record_sessions([SessionCreated(fp("a"), "t1", T0)], [])
    lg.record_task(TaskFacts("t1", SERVICE, "d0", T0 - 5))
    before = lg.read_round_trips
    wave = lg.read(ReadWave(sessions=(fp("a"), fp("b")), tasks=("t1", "t9")))
    assert lg.read_round_trips - before == 1
    assert {k: (o.task_id, o.created_at) for k, o in wave.origins.items()} == {fp("a"): ("t1", T0)}
    assert list(wave.tasks) == ["t1"]
    before = lg.read_round_trips
    lg.read(ReadWave())
    assert lg.read_round_trips == before  # nothing asked, nothing read


def test_a_read_wave_returns_the_sessions_deployment_locks(store: Store) -> None:
    """The ``deployment`` count lock of each session asked for (``rules.repinned_by``), in the
    same round trip; sessions without one and other causes' locks are not returned."""
    lg = store.ledger
    dep = Verdict(Cause.DEPLOYMENT, SERVICE, "t1", "d1", "shift", T0 - 50)
    assert lock_loss(lg, NotFound(fp("a"), "t2", T0 + 9), dep, T0 + 10)
    assert lock_loss(lg, NotFound(fp("b"), "t3", T0 + 9), Verdict(Cause.STICKINESS, SERVICE), T0)
    before = lg.read_round_trips
    wave = lg.read(ReadWave(sessions=(fp("a"),), deployment_locks=(fp("a"), fp("b"), fp("c"))))
    assert lg.read_round_trips - before == 1
    assert list(wave.deployment_locks) == [fp("a")]
    lock = wave.deployment_locks[fp("a")]
    assert (lock.serving_task, lock.at, lock.deployment_id, lock.retracted_at) == (
        "t2",
        T0 + 9,
        "d1",
        None,
    )
    assert lg.retract_lock(fp("a"), Cause.DEPLOYMENT, T0 + 20)
    again = lg.read(ReadWave(deployment_locks=(fp("a"),))).deployment_locks[fp("a")]
    assert again.retracted_at == T0 + 20  # taken back: the rules read it as no loss


def test_a_session_record_keeps_the_client_that_opened_it(store: Store) -> None:
    """Who held the session: what a move to stateless would affect (one optional field)."""
    lg = store.ledger
    a, b = fp("a"), fp("b")
    lg.record_sessions(
        [SessionCreated(a, "t1", T0, "editor-agent"), SessionCreated(b, "t1", T0)], []
    )
    origins = lg.read(ReadWave(sessions=(a, b))).origins
    assert (origins[a].client_name, origins[b].client_name) == ("editor-agent", None)
    assert (origins[b].task_id, origins[b].created_at) == ("t1", T0)


def test_a_loss_is_locked_once_per_session_and_cause_earliest_occurrence_kept(
    store: Store,
) -> None:
    lg = store.ledger
    dep = Verdict(Cause.DEPLOYMENT, SERVICE, "t1", "d1", deployment_started_at=T0 - 50)
    assert lock_loss(lg, NotFound(fp("x"), "t2", T0 + 9), dep, T0 + 10) is True
    assert lock_loss(lg, NotFound(fp("x"), "t2", T0 + 9), dep, T0 + 11) is False  # re-delivery
    assert lock_loss(lg, NotFound(fp("x"), "t3", T0 + 1), dep, T0 + 12) is False  # earlier 404
    assert lock_loss(lg, NotFound(fp("x"), "t2", T0 + 20), dep, T0 + 13) is False  # retry
    assert lock_loss(lg, NotFound(fp("y"), "t2", T0 + 2), dep, T0 + 15) is True
    # The report's loss times: one per session, the earliest 404, whatever the arrival order.
    assert losses(lg, "d1") == [T0 + 1, T0 + 2]
    # An earlier 404 of x under another cause owns x: the deployment's count is taken back.
    sticky = Verdict(Cause.STICKINESS, SERVICE, "t1")
    assert lock_loss(lg, NotFound(fp("x"), "t4", T0 - 5), sticky, T0 + 14) is True
    assert losses(lg, "d1") == [T0 + 2]
    locks = {lock.cause: lock for lock in lg.session_locks(fp("x"))}
    assert sorted(locks) == [Cause.DEPLOYMENT, Cause.STICKINESS]
    d = locks[Cause.DEPLOYMENT]
    assert (d.serving_task, d.at, d.decided_at, d.deployment_id) == ("t3", T0 + 1, T0 + 10, "d1")
    assert d.deployment_started_at == T0 - 50 and d.origin_task == "t1"
    assert (d.retracted_at, locks[Cause.STICKINESS].retracted_at) == (T0 + 14, None)


def test_a_lock_write_answers_with_the_lock_as_it_was(store: Store) -> None:
    """ALL_OLD: a new lock has no previous; an overwrite returns the old one; a refused write
    returns None (nothing written)."""
    lg = store.ledger
    lock = LossLock(fp("z"), Cause.DEPLOYMENT, "t2", T0 + 9, SERVICE, "o", "dB", basis="b")
    first = lg.claim_lock(lock, T0, T0 + 10)
    assert first is not None and first.counted and first.previous is None
    assert lg.claim_lock(lock, T0, T0 + 11) is None  # same time, same tie-break
    moved = lg.claim_lock(
        LossLock(fp("z"), Cause.DEPLOYMENT, "t2", T0 + 9, deployment_id="dC"), T0 + 1, T0 + 12
    )
    assert moved is not None and not moved.counted
    assert moved.previous is not None and moved.previous.deployment_id == "dB"
    [now] = lg.session_locks(fp("z"))
    # Attributes the overwrite did not carry keep their values, as DynamoDB's SET does.
    assert (now.deployment_id, now.service, now.origin_task, now.decided_at) == (
        "dC",
        SERVICE,
        "o",
        T0 + 10,
    )


def test_a_lock_is_taken_back_once_and_leaves_its_deployment_s_report(store: Store) -> None:
    """``retract_lock`` is a conditional write: True for the one call that marks the lock, False
    after (or for no lock); the mark survives a later overwrite of the lock, and a retracted
    ``deployment`` lock's entry is no deployment's report."""
    lg = store.ledger
    nf = NotFound(fp("r"), "t", T0 + 5)
    first = Verdict(Cause.DEPLOYMENT, SERVICE, "o", "dR", deployment_started_at=T0)
    assert lock_loss(lg, nf, first, T0 + 6)
    assert losses(lg, "dR") == [T0 + 5]
    assert lg.retract_lock(fp("r"), Cause.DEPLOYMENT, T0 + 30) is True
    assert lg.retract_lock(fp("r"), Cause.DEPLOYMENT, T0 + 31) is False  # once
    assert lg.retract_lock(fp("r"), Cause.STICKINESS, T0 + 31) is False  # no such lock
    assert losses(lg, "dR") == []
    later = Verdict(Cause.DEPLOYMENT, SERVICE, "o", "dS", deployment_started_at=T0 + 50)
    assert not lock_loss(lg, nf, later, T0 + 40)  # same 404, later deployment: moves, kept
    [lock] = lg.session_locks(fp("r"))
    assert (lock.deployment_id, lock.retracted_at) == ("dS", T0 + 30)
    assert losses(lg, "dS") == []


def test_a_lock_is_taken_back_and_counted_again_only_while_it_holds_the_404_named(
    store: Store,
) -> None:
    """``retract_lock(at=...)`` and ``reinstate_lock`` are conditional on the 404 the lock
    holds: a mark made for a later 404 never lands on a lock moved to an earlier one; each
    succeeds once."""
    lg = store.ledger
    lock = LossLock(fp("m"), Cause.SCALE_IN, "t2", T0 + 9, SERVICE, "o")
    assert lg.claim_lock(lock, None, T0 + 10) is not None
    assert lg.reinstate_lock(fp("m"), Cause.SCALE_IN, T0 + 9) is False  # not taken back
    assert lg.retract_lock(fp("m"), Cause.SCALE_IN, T0 + 11, at=T0 + 8) is False  # another 404
    assert lg.retract_lock(fp("m"), Cause.SCALE_IN, T0 + 11, at=T0 + 9) is True
    assert lg.retract_lock(fp("m"), Cause.SCALE_IN, T0 + 12, at=T0 + 9) is False  # once
    moved = lg.claim_lock(LossLock(fp("m"), Cause.SCALE_IN, "t3", T0 + 5), None, T0 + 13)
    assert moved is not None and moved.previous is not None
    assert moved.previous.retracted_at == T0 + 11  # the mark survives the move...
    assert lg.reinstate_lock(fp("m"), Cause.SCALE_IN, T0 + 9) is False  # ...not that 404's now
    assert lg.reinstate_lock(fp("m"), Cause.SCALE_IN, T0 + 5) is True
    assert lg.reinstate_lock(fp("m"), Cause.SCALE_IN, T0 + 5) is False  # once
    [now] = lg.session_locks(fp("m"))
    assert (now.at, now.serving_task, now.retracted_at) == (T0 + 5, "t3", None)


def test_session_spans_per_task(store: Store) -> None:
    a, b = fp("a"), fp("b")
    store.ledger.record_sessions(
        [SessionCreated(a, "t1", T0), SessionCreated(b, "t1", T0 + 1)],
        [SessionClosed(a, "t1", T0 + 5, "client_delete")],
    )
    store.ledger.record_sessions([SessionCreated(a, "t1", T0)], [])  # re-delivered
    spans = {s.fingerprint: s for s in store.ledger.task_sessions("t1")}
    assert spans[a].closed_at == T0 + 5 and spans[b].closed_at is None
    assert spans[a].created_at == T0


def test_pending_not_founds_park_and_drop(store: Store) -> None:
    lg = store.ledger
    a, b = NotFound(fp("a"), "t1", T0, "svc-log"), NotFound(fp("b"), "t1", T0 + 1)
    lg.store_pending([a, b, a])
    assert sorted(lg.pending(), key=lambda n: n.key) == sorted([a, b], key=lambda n: n.key)
    lg.drop_pending([a])
    assert lg.pending() == [b]


def test_task_locks_are_the_counted_404s_of_the_sessions_created_on_it(store: Store) -> None:
    lg = store.ledger
    lg.record_sessions([SessionCreated(fp("a"), "o", T0), SessionCreated(fp("b"), "o", T0)], [])
    sticky = Verdict(Cause.STICKINESS, SERVICE, "o")
    lock_loss(lg, NotFound(fp("a"), "t2", T0 + 50), sticky, T0 + 60)
    lock_loss(lg, NotFound(fp("c"), "t2", T0 + 50), sticky, T0 + 60)  # created elsewhere
    assert [(x.fingerprint, x.cause, x.at) for x in lg.task_locks("o")] == [
        (fp("a"), Cause.STICKINESS, T0 + 50)
    ]


def test_a_creation_record_past_the_ttl_counts_as_never_seen(store: Store) -> None:
    """DynamoDB deletes expired items late; their origin tasks may already be pruned."""
    lg, cfg = store.ledger, store.cfg
    ttl = cfg.ledger_ttl_days * 86400
    lg.record_task(TaskFacts("old", SERVICE, "d0", T0 - 999, T0, T0 + 9, SCHED))
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
    store: Store,
) -> None:
    """One 404 decided twice: first charged to B (C's start not yet arrived), then to C, which
    began later and so had the facts. In either order the lock names C and only C's report
    counts the session; an earlier 404 of the session decided later takes the lock (its
    deployment, the session's first loss) whatever it names."""
    lg = store.ledger
    for n, order in enumerate(("BC", "CB")):
        b, c = f"ecs-svc/B{n}", f"ecs-svc/C{n}"
        to = {
            "B": Verdict(Cause.DEPLOYMENT, SERVICE, "o", b, deployment_started_at=T0),
            "C": Verdict(Cause.DEPLOYMENT, SERVICE, "o", c, deployment_started_at=T0 + 150),
        }
        nf = NotFound(fp(f"s{n}"), "t", T0 + 160)
        assert [lock_loss(lg, nf, to[x], T0 + 200) for x in order] == [True, False]  # once
        assert losses(lg, c) == [T0 + 160]
        assert losses(lg, b) == []
        earlier = NotFound(nf.fingerprint, "t", T0 + 100)
        assert not lock_loss(lg, earlier, to["B"], T0 + 210)  # not counted again, but B's
        assert losses(lg, b) == [T0 + 100]
        assert losses(lg, c) == []


def test_report_transitions(store: Store) -> None:
    """Claim once (again only when stale) -> sent -> follow-up flagged only once sent ->
    follow-up claimed at most once per period; the active list follows."""
    lg = store.ledger
    assert not lg.claim_report(SERVICE, "d9", T0, 300)  # no such deployment
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0, False))
    assert (SERVICE, "d1") in lg.active()
    lg.flag_followup(SERVICE, "d1", T0)  # not sent: nothing to follow up
    assert not lg.deployments([(SERVICE, "d1")])[(SERVICE, "d1")].report.wants_followup
    assert lg.claim_report(SERVICE, "d1", T0 + 10, 300)
    assert not lg.claim_report(SERVICE, "d1", T0 + 20, 300)
    assert lg.claim_report(SERVICE, "d1", T0 + 400, 300)  # the claimer died
    lg.release_report(SERVICE, "d1")
    assert lg.claim_report(SERVICE, "d1", T0 + 401, 300)
    lg.mark_sent(SERVICE, "d1", T0 + 402, "end-a")
    assert (SERVICE, "d1") not in lg.active()
    report = lg.deployments([(SERVICE, "d1")])[(SERVICE, "d1")].report
    assert report.sent and report.sent_end == "end-a" and report.claim_at is None
    assert not lg.claim_report(SERVICE, "d1", T0 + 9999, 300)
    assert not lg.claim_followup(SERVICE, "d1", T0 + 500, 600, "end-b")  # none due
    lg.flag_followup(SERVICE, "d1", T0 + 500)
    lg.flag_followup(SERVICE, "d1", T0 + 510)  # the first due time stays
    rec = lg.deployments([(SERVICE, "d1")])[(SERVICE, "d1")]
    assert rec.report.followup_due == T0 + 500 and (SERVICE, "d1") in lg.active()
    lg.record_deployment(DeploymentObserved(SERVICE, "d1", T0 + 90, True, "COMPLETED"))
    assert lg.claim_followup(SERVICE, "d1", T0 + 520, 600, "end-b")
    report = lg.deployments([(SERVICE, "d1")])[(SERVICE, "d1")].report
    assert report.sent_end == "end-b" and not report.wants_followup
    lg.flag_followup(SERVICE, "d1", T0 + 530)
    assert not lg.claim_followup(SERVICE, "d1", T0 + 600, 600, "end-c")  # too soon
    assert lg.claim_followup(SERVICE, "d1", T0 + 1200, 600, "end-c")
    lg.drop_active(SERVICE, "d1")
    assert (SERVICE, "d1") not in lg.active()


def test_a_guard_claim_is_won_once_and_can_be_given_back(store: Store) -> None:
    lg = store.ledger
    assert lg.guards_of(SERVICE, "d1") == {}
    assert lg.claim_guard(SERVICE, "d1", Guard.STOP, {"claimed_at": T0})
    assert not lg.claim_guard(SERVICE, "d1", Guard.STOP, {"claimed_at": T0 + 1})  # taken
    assert lg.claim_guard(SERVICE, "d1", Guard.ALERT, {"at": T0})  # another guard
    assert lg.claim_guard(SERVICE, "d2", Guard.STOP, {"claimed_at": T0})  # another deployment
    assert lg.guards_of(SERVICE, "d1")[Guard.STOP].fields == {"claimed_at": T0}
    lg.release_guard(SERVICE, "d1", Guard.STOP)  # its action failed
    assert set(lg.guards_of(SERVICE, "d1")) == {Guard.ALERT}
    assert lg.claim_guard(SERVICE, "d1", Guard.STOP, {"claimed_at": T0 + 2})
    assert lg.guards_of(SERVICE, "d1")[Guard.STOP].fields == {"claimed_at": T0 + 2}
    lg.release_guard(SERVICE, "d9", Guard.GATE)  # nothing to give back: no error


def test_overlapping_guard_claims_have_one_winner(store: Store) -> None:
    lg = store.ledger
    with ThreadPoolExecutor(8) as pool:
        won = list(
            pool.map(lambda i: lg.claim_guard(SERVICE, "d1", Guard.ALERT, {"at": T0 + i}), range(8))
        )
    assert won.count(True) == 1
    [fields] = [r.fields for r in lg.guards_of(SERVICE, "d1").values()]
    assert fields == {"at": T0 + won.index(True)}


def test_guard_updates_set_fields_and_read_back_typed(store: Store) -> None:
    lg = store.ledger
    lg.update_guard(SERVICE, "d1", Guard.GATE, {"first_at": T0, "held": 3, "reason": "holding",
                                                "held_fps": ["c", "a", "b", "a"]})  # fmt: skip
    lg.update_guard(SERVICE, "d1", Guard.GATE, {"held": 2, "open_fps": [], "released_at": T0 + 9})
    [gate] = lg.guards_of(SERVICE, "d1").values()
    assert (gate.service, gate.deployment_id, gate.guard) == (SERVICE, "d1", Guard.GATE)
    # Numbers come back as floats, lists sorted and unique, an empty list as absent.
    assert gate.fields == {
        "first_at": T0,
        "held": 2.0,
        "reason": "holding",
        "held_fps": ["a", "b", "c"],
        "released_at": T0 + 9,
    }
    # An update after a claim keeps the claim (still taken) and its other fields.
    assert lg.claim_guard(SERVICE, "d1", Guard.STOP, {"claimed_at": T0})
    lg.update_guard(SERVICE, "d1", Guard.STOP, {"stopped_at": T0 + 5, "arn": "arn:x"})
    assert not lg.claim_guard(SERVICE, "d1", Guard.STOP, {})
    stop = lg.guards_of(SERVICE, "d1")[Guard.STOP].fields
    assert stop == {"claimed_at": T0, "stopped_at": T0 + 5, "arn": "arn:x"}
    # A fingerprint list is bounded; a field name that is not an identifier is refused.
    many = [f"fp{i:04d}" for i in range(MAX_GUARD_FINGERPRINTS + 50)]
    lg.update_guard(SERVICE, "d2", Guard.GATE, {"open_fps": many})
    assert (
        lg.guards_of(SERVICE, "d2")[Guard.GATE].fields["open_fps"] == many[:MAX_GUARD_FINGERPRINTS]
    )
    with pytest.raises(ValueError, match="bad guard field"):
        lg.update_guard(SERVICE, "d2", Guard.GATE, {"a b": 1})
