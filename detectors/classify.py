"""Decide a batch of not-found occurrences against the ledger; count each lost session once.

Every occurrence gets its own verdict (``core.decide``: a function of that occurrence and the
stored facts only), as soon as the facts settle it. SessionsLost counts each lost session
once, to its earliest 404 (what ended it): the first verdict of a (session, cause) pair claims
its lock, every later one (a retry, a re-delivery) does not; a new lock is counted only when
no earlier 404 of the session holds one (``owned_once``), and an earlier 404 decided later
takes the count over (the later one's taken back, -1 once). The net counts do not depend on
the order or the duplication of the occurrences.

Reads take a fixed number of waves, whatever the size of the cluster or its history (see
``read_facts``): (1) the sessions' creation records and the serving tasks' facts, (2) the origin
tasks' facts, the sessions' closes and ``deployment`` count locks and, per service, ONE Query of
its deployment index (newest first, a small Limit) reaching the batch's latest 404, and, only
for a 404 whose facts reach back before the oldest item of a full page, or whose service was
not asked, (3) one more index Query. The
locks are conditional writes made after deciding, one per distinct (session, cause).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sessionwatch.contract import Cause
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.emit import MetricPoint, sessions_lost
from sessionwatch.detectors.facts import (
    CLOCK_SKEW_S,
    DeploymentWindow,
    NotFound,
    SessionClosed,
    SessionOrigin,
    TaskFacts,
)
from sessionwatch.detectors.ledger import (
    DEPLOYMENT_QUERY_LIMIT,
    IndexEntry,
    IndexRequest,
    LedgerStore,
    LockClaim,
    LossLock,
    ReadWave,
)
from sessionwatch.detectors.ledger.codec import windows_from_entries
from sessionwatch.detectors.rules import (
    SESSION_END_REASONS,
    Verdict,
    decide,
    followups_after,
    lock_tiebreak,
    loss_lock,
    repeats,
    same_occurrence,
)

# Third-wave queries of one service within the same minute are shared.
_QUERY_BUCKET_S = 60.0


@dataclass(frozen=True)
class Decision:
    """One occurrence's verdict; ``counted`` when it was the first of its (session, cause);
    ``taken_back``: the earlier verdicts of this same 404 it contradicted, whose counts this
    decision took back (each lock is taken back once: ``LedgerStore.retract_lock``)."""

    occurrence: NotFound
    verdict: Verdict
    counted: bool
    taken_back: tuple[Cause, ...] = ()
    # Counts of the session's later 404s this one took back: the session is lost once, to its
    # earliest 404 (``owned_once``); its own cause when it turned out a later 404 itself.
    repeats: tuple[Cause, ...] = ()

    @property
    def revised_from(self) -> Cause | None:
        """The earlier verdict of this same 404, now contradicted (logged with the new one)."""
        return self.taken_back[0] if self.taken_back else None


def lost_points(decisions: Iterable[Decision]) -> list[MetricPoint]:
    """SessionsLost for the newly counted pairs; a revised verdict also takes its earlier,
    contradicted count back (-1 under the old cause, once per lock however many later facts
    revise it), so a sum over any period that holds both says what the final verdicts say (a
    stickiness alarm's period that already fired is not undone: that is what
    ``rules.rollout_may_explain``'s wait is for)."""
    points = []
    for d in decisions:
        if d.counted:
            points.append(sessions_lost(d.verdict.service, d.verdict.cause))
        for old in (*d.taken_back, *d.repeats):
            points.append(sessions_lost(d.verdict.service, old, -1))
    return points


def classify(
    ledger: LedgerStore,
    occurrences: Iterable[NotFound],
    cfg: Config,
    now: float,
    decisions: list[Decision] | None = None,
    prior: Mapping[str, Sequence[LossLock]] | None = None,
) -> list[Decision]:
    """Decide each occurrence, count new (session, cause) pairs, park what is still pending.

    ``decisions`` (returned) is filled in place, each marked ``counted`` the moment its lock is
    claimed: when a later AWS call fails, the caller still emits what was counted, as a claimed
    lock is never claimed again and its metric would otherwise be lost for good. ``prior``: the
    sessions' count locks when the occurrences are theirs, decided again (``revisit_task``,
    ``revisit_closed``): a lock of the same 404 under another cause is then taken back.
    """
    decisions = [] if decisions is None else decisions
    start = len(decisions)
    unique = sorted(
        {o.key: o for o in occurrences}.values(), key=lambda o: (o.fingerprint, o.at, o.task_id)
    )
    if not unique:
        return decisions
    facts = read_facts(ledger, unique, now - cfg.ledger_ttl_days * 86400)
    first_of_pair: dict[tuple[str, Cause], int] = {}  # earliest occurrence per pair (sorted)
    settle: list[NotFound] = []
    park: list[NotFound] = []
    for nf, verdict in _verdicts(unique, facts, cfg, now):
        if verdict is None:
            settle.append(nf)  # another service's loss: not ours to count
            continue
        (settle if verdict.final else park).append(nf)
        if verdict.final:
            first_of_pair.setdefault((nf.fingerprint, verdict.cause), len(decisions))
        decisions.append(Decision(nf, verdict, counted=False))
    failure: Exception | None = None
    read: dict[int, Sequence[LossLock]] = {}  # the locks ``claim_loss`` read, reused below
    for i in first_of_pair.values():
        d = decisions[i]
        try:  # one failed lock must not keep the others from being counted
            claimed = claim_loss(ledger, d.occurrence, d.verdict, now)
            if claimed.locks is not None:
                read[i] = claimed.locks
            if claimed.counted or claimed.repeats:
                decisions[i] = replace(d, counted=claimed.counted, repeats=claimed.repeats)
            if claimed.failure is not None:
                raise claimed.failure
        except Exception as exc:  # re-raised below, after the rest
            failure = failure or exc
            park.append(d.occurrence)  # decided again by the reporter (or the retry)
    for i, d in enumerate(decisions[start:], start):
        # A final verdict contradicts an earlier one of the same 404 only when later facts
        # came: past the grace period, or a fact that re-opens counted 404s (``prior``).
        late = now >= d.occurrence.at + cfg.grace_period_s
        if not d.verdict.final or not (prior is not None or (late and d.counted)):
            continue
        try:
            fp = d.occurrence.fingerprint
            locks = prior.get(fp, ()) if prior is not None else read.get(i)
            taken = take_back(ledger, d, now, locks)
            if taken:
                decisions[i] = replace(d, taken_back=taken)
        except Exception as exc:  # re-raised below; the retry takes back what is left
            failure = failure or exc
    if park:
        ledger.store_pending(park)
    if settle:
        ledger.drop_pending([nf for nf in settle if nf not in park])
    if failure is not None:
        raise failure
    return decisions


def _verdicts(
    unique: Sequence[NotFound], facts: BatchFacts, cfg: Config, now: float
) -> list[tuple[NotFound, Verdict | None]]:
    """Each occurrence's verdict (None: another service's, not ours). A session's 404 charged
    to a deployment in this same batch is a fact for its other 404s (``rules.repinned_by``),
    as its stored lock would be: those are decided again with it (pure, no read)."""

    def one(nf: NotFound, lost: Mapping[str, LossLock]) -> Verdict | None:
        origin = facts.origins.get(nf.fingerprint)
        origin_task = facts.tasks.get(origin.task_id) if origin else None
        serving = facts.tasks.get(nf.task_id)
        ecs_service = (origin_task.service if origin_task else None) or (
            serving.service if serving else None
        )
        if ecs_service is not None and not cfg.service_in_scope(ecs_service):
            return None
        windows = facts.windows.get(ecs_service or "", [])
        closed = facts.closes.get(nf.fingerprint)
        return decide(
            nf,
            origin,
            origin_task,
            serving,
            windows,
            cfg.grace_period_s,
            now,
            closed,
            cfg.clock_error_s,
            lost.get(nf.fingerprint),
        )

    out = [(nf, one(nf, facts.lost)) for nf in unique]
    lost = dict(facts.lost)
    for nf, verdict in out:
        if verdict is None or verdict.cause is not Cause.DEPLOYMENT:
            continue
        stored = lost.get(nf.fingerprint)
        if stored is None or stored.retracted_at is not None or nf.at < stored.at:
            lost[nf.fingerprint] = loss_lock(nf, verdict)
    changed = {fp for fp, lock in lost.items() if facts.lost.get(fp) is not lock}
    return [
        (nf, one(nf, lost))
        if nf.fingerprint in changed and v is not None and v.cause is not Cause.DEPLOYMENT
        else (nf, v)
        for nf, v in out
    ]


@dataclass(frozen=True)
class Claimed:
    """What claiming a 404's count lock did: ``counted`` (emit +1 under its cause) and the
    ``repeats`` whose counts it took back (emit -1 under each)."""

    counted: bool = False
    repeats: tuple[Cause, ...] = ()
    locks: tuple[LossLock, ...] | None = None  # the session's locks, when they were read
    # A call after the claim failed: ``counted`` still holds (the lock is not claimed again).
    failure: Exception | None = None


def lock_loss(ledger: LedgerStore, nf: NotFound, verdict: Verdict, now: float) -> bool:
    """``claim_loss``, True when it counted the session under this verdict's cause."""
    return claim_loss(ledger, nf, verdict, now).counted


def claim_loss(ledger: LedgerStore, nf: NotFound, verdict: Verdict, now: float) -> Claimed:
    """Claim the (session, cause) count lock; then count the session once, to its earliest 404.

    The lock is a conditional write (earliest 404 wins), so re-delivery, duplicates and
    overlapping invocations claim it once. Which deployment the lock names is the rules'
    (``rules.lock_tiebreak``); a lock that changes deployment brings a follow-up for both.
    A lock just created or moved to an earlier 404 (rare: once per session and cause) is
    weighed against the session's other locks (``owned_once``, one Query).
    """
    if verdict.deployment_id and verdict.service:
        # Before the lock: a crash in between leaves an idempotent write to redo, never a
        # counted loss missing from its deployment's report.
        ledger.record_deployment_loss(verdict.service, verdict.deployment_id, nf.fingerprint, nf.at)
    claim = ledger.claim_lock(loss_lock(nf, verdict), lock_tiebreak(verdict), now)
    if claim is None:
        return Claimed()
    if verdict.service:
        for dep in followups_after(verdict, claim):
            ledger.flag_followup(verdict.service, dep, now)
    if claim.previous is not None and not repeats(claim.previous.at, nf.at):
        return Claimed(claim.counted)  # the same 404, another deployment: nothing else moved
    try:
        return owned_once(ledger, nf, verdict, claim, now)
    except Exception as exc:  # the caller re-raises it after emitting what was counted
        return Claimed(claim.counted, failure=exc)


def owned_once(
    ledger: LedgerStore, nf: NotFound, verdict: Verdict, claim: LockClaim, now: float
) -> Claimed:
    """A session is lost once, to its earliest 404: this lock was just created or moved to
    ``nf``; if the session has an earlier 404 locked, this one is a repeat and its lock is
    taken back (never counted when this call created it); else it owns the session: a
    taken-back lock moved here is counted again (``reinstate_lock``), and the later 404s'
    locks of other causes are taken back. Each mark is a conditional write on the lock still
    holding its 404, so every +1 and -1 is emitted once, by whichever invocation made it,
    whatever the order, duplication or overlap; a ``deployment`` lock taken back or counted
    again brings its sent report a follow-up."""
    fp, cause = nf.fingerprint, verdict.cause
    locks = ledger.session_locks(fp)
    earliest = min((lock.at for lock in locks), default=nf.at)
    live = claim.counted or (claim.previous is not None and claim.previous.retracted_at is None)
    if repeats(nf.at, earliest):
        if not (live and ledger.retract_lock(fp, cause, now, at=nf.at)):
            return Claimed(claim.counted, locks=tuple(locks))  # taken back elsewhere, its -1 too
        _followup(ledger, verdict.service, verdict.deployment_id, cause, now)
        return Claimed(False, () if claim.counted else (cause,), tuple(locks))
    counted = claim.counted
    if not live and ledger.reinstate_lock(fp, cause, nf.at):
        counted = True
        _followup(ledger, verdict.service, verdict.deployment_id, cause, now)
    taken = []
    for lock in locks:
        if lock.cause is cause or lock.retracted_at is not None or not repeats(lock.at, nf.at):
            continue  # the same 404 decided again is ``take_back``'s
        if ledger.retract_lock(fp, lock.cause, now, at=lock.at):
            taken.append(lock.cause)
            _followup(ledger, lock.service, lock.deployment_id, lock.cause, now)
    return Claimed(counted, tuple(taken), tuple(locks))


def _followup(
    ledger: LedgerStore, service: str | None, dep: str | None, cause: Cause, now: float
) -> None:
    if cause is Cause.DEPLOYMENT and service and dep:
        ledger.flag_followup(service, dep, now)


def revisit_task(
    ledger: LedgerStore, task_id: str, cfg: Config, now: float, decisions: list[Decision]
) -> bool:
    """Decide again the counted 404s of the sessions created on a task whose stop just became
    known; add to ``decisions`` those counted under a new cause.

    A stop delivered later than the grace period (ECS sends a crash's STOPPED event only, and
    late) finds those 404s final without it, e.g. ``stickiness`` (origin alive). Each
    (session, cause) lock keeps its earliest 404; those occurrences go through ``classify``
    again (the same rules and locks), so a changed cause is counted once under the new cause
    (a later 404's taken-back lock of that cause moved onto it is counted again), marked
    ``revised_from`` the old one (taken back, ``take_back``), and a deployment loss lands in its
    deployment's losses (its report, or a follow-up). An unchanged verdict finds its lock taken
    and counts nothing. Cost: ``LedgerStore.task_locks`` (one Query, one read wave), then
    the usual waves of one batch. True when there were 404s to decide again (the caller then
    marks the stop revisited, so a re-delivery costs no second look).
    """
    return _decide_again(ledger, ledger.task_locks(task_id), cfg, now, decisions)


def revisit_closed(
    ledger: LedgerStore,
    closed: Iterable[SessionClosed],
    cfg: Config,
    now: float,
    decisions: list[Decision],
) -> None:
    """Decide again the counted 404s of sessions whose idle-expiry or DELETE close has just
    been stored: a close delivered after its session's 404 was decided (their log streams are
    delivered apart) turns a deployment loss decided without it into ``expired``, the
    deployment's count taken back (``take_back``). One Query of the session's locks per such
    close; usually it finds none and costs nothing more."""
    for fp in dict.fromkeys(c.fingerprint for c in closed if c.reason in SESSION_END_REASONS):
        locks = [lock for lock in ledger.session_locks(fp) if lock.retracted_at is None]
        if locks:
            _decide_again(ledger, locks, cfg, now, decisions)


def _decide_again(
    ledger: LedgerStore, locks: list[LossLock], cfg: Config, now: float, decisions: list[Decision]
) -> bool:
    """Each lock's earliest 404 through ``classify`` again, the locks as ``prior``; adds the
    decisions that counted or took something back. False when there was nothing to decide."""
    occurrences = [
        NotFound(lock.fingerprint, lock.serving_task, lock.at, lock.service) for lock in locks
    ]
    if not occurrences:
        return False
    prior: dict[str, list[LossLock]] = {}
    for lock in locks:
        prior.setdefault(lock.fingerprint, []).append(lock)
    redone: list[Decision] = []
    try:
        classify(ledger, occurrences, cfg, now, redone, prior)
    finally:  # what was counted is emitted even when a later call failed
        decisions.extend(d for d in redone if d.counted or d.taken_back or d.repeats)
    return True


@dataclass(frozen=True)
class BatchFacts:
    """What a batch of not-founds is decided from: origins, tasks, windows per service."""

    origins: dict[str, SessionOrigin]
    tasks: dict[str, TaskFacts]
    windows: dict[str, list[DeploymentWindow]]
    closes: dict[str, SessionClosed] = field(default_factory=dict)
    lost: dict[str, LossLock] = field(default_factory=dict)  # deployment count locks


def _bucket(t: float) -> float:
    # Rounded up: a deployment that began a moment (skew) after the 404 is still in range.
    return math.ceil((t + 2 * CLOCK_SKEW_S) / _QUERY_BUCKET_S) * _QUERY_BUCKET_S


def read_facts(ledger: LedgerStore, occurrences: list[NotFound], horizon: float) -> BatchFacts:
    """The facts a batch needs, in two read waves (a third only in the rare cases above).

    A creation record older than ``horizon`` (the TTL) is expired even if DynamoDB has not
    deleted it yet (TTL deletion lags): it is treated as gone.
    """
    fingerprints = tuple(dict.fromkeys(o.fingerprint for o in occurrences))
    serving_ids = tuple(dict.fromkeys(o.task_id for o in occurrences))
    first = ledger.read(ReadWave(sessions=fingerprints, tasks=serving_ids))
    origins = {fp: o for fp, o in first.origins.items() if o.created_at >= horizon}
    tasks = dict(first.tasks)
    # Wave 2: the origin tasks, and per service ONE index Query (newest first, small Limit)
    # reaching the batch's latest 404; the newest deployments are the ones in effect.
    latest: dict[str, float] = {}
    for nf in occurrences:
        svc = tasks[nf.task_id].service if nf.task_id in tasks else None
        if svc:
            latest[svc] = max(nf.at, latest.get(svc, nf.at))
    requests = [IndexRequest(svc, t + 2 * CLOCK_SKEW_S) for svc, t in latest.items()]
    origin_ids = tuple(sorted({o.task_id for o in origins.values()} - set(tasks)))
    # Whether the session was closed on its origin task (idle expiry, DELETE) is read with them.
    closes = tuple(sorted((o.task_id, fp) for fp, o in origins.items()))
    # And the session's loss to a traffic shift, for a 404 away from its origin task
    # (``rules.repinned_by``): the lock item beside its CREATED, one key per such session.
    away = {
        nf.fingerprint
        for nf in occurrences
        if nf.fingerprint in origins and origins[nf.fingerprint].task_id != nf.task_id
    }
    second = ledger.read(
        ReadWave(
            tasks=origin_ids,
            indexes=tuple(requests),
            closes=closes,
            deployment_locks=tuple(sorted(away)),
        )
    )
    tasks |= second.tasks
    index: dict[str, set[IndexEntry]] = {}
    full: dict[str, bool] = {}
    for req, entries in second.indexes.items():
        index.setdefault(req.service, set()).update(entries)
        full[req.service] = full.get(req.service, False) or len(entries) >= DEPLOYMENT_QUERY_LIMIT
    # Wave 3, rare: a service not asked yet (origin of another service, serving task unknown),
    # or a 404 whose facts reach back before the oldest entry a full page returned.
    more: dict[IndexRequest, None] = {}
    for nf in occurrences:
        origin = origins.get(nf.fingerprint)
        o = tasks.get(origin.task_id) if origin else None
        serving = tasks.get(nf.task_id)
        svc = (o.service if o else None) or (serving.service if serving else None)
        if not svc:
            continue
        if svc not in index:
            more[IndexRequest(svc, _bucket(nf.at))] = None
            continue
        needed = min(
            t
            for t in (nf.at, o.stop_began if o else None, serving.started_at if serving else None)
            if t is not None
        )
        oldest = min((e.at for e in index[svc]), default=None)
        if full.get(svc) and oldest is not None and needed < oldest:
            more[IndexRequest(svc, _bucket(needed))] = None
    if more:
        third = ledger.read(ReadWave(indexes=tuple(more)))
        for req, entries in third.indexes.items():
            index.setdefault(req.service, set()).update(entries)
    windows = {svc: windows_from_entries(entries) for svc, entries in index.items()}
    return BatchFacts(origins, tasks, windows, second.closes, second.deployment_locks)


def take_back(
    ledger: LedgerStore, d: Decision, now: float, locks: Sequence[LossLock] | None = None
) -> tuple[Cause, ...]:
    """Take back the counts of this same 404's earlier verdicts that ``d`` contradicts (later
    facts changed it): each such lock is marked retracted by a conditional write, so its -1 is
    emitted exactly once, however many later facts revise it or in whatever order; a retracted
    ``deployment`` lock leaves its deployment's report (a follow-up if it was sent). The
    change is logged. ``locks``: the session's locks when known, else one Query of them."""
    fp = d.occurrence.fingerprint
    found = ledger.session_locks(fp) if locks is None else locks
    taken = []
    for lock in found:
        if lock.cause is d.verdict.cause or lock.retracted_at is not None:
            continue
        if not same_occurrence(lock, d.occurrence):
            continue
        if ledger.retract_lock(fp, lock.cause, now):
            taken.append(lock.cause)
            if lock.cause is Cause.DEPLOYMENT and lock.service and lock.deployment_id:
                ledger.flag_followup(lock.service, lock.deployment_id, now)
    return tuple(taken)
