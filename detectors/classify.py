"""Decide a batch of not-found occurrences against the ledger; count each (session, cause) once.

Every occurrence gets its own verdict (``core.decide``: a function of that occurrence and the
stored facts only), as soon as the facts settle it. SessionsLost counts distinct lost sessions
per cause: the first verdict of a (session, cause) pair claims its lock and is counted, every
later one (a retry, a re-delivery) is not. The set of pairs does not depend on the order or
the duplication of the occurrences, so neither do the counts.

Reads take a fixed number of waves, whatever the size of the cluster or its history (see
``read_facts``): (1) the sessions' creation records and the serving tasks' facts, (2) the origin
tasks' facts and, per service, ONE Query of its deployment index (newest first, a small
Limit) reaching the batch's latest 404, and, only for a 404 whose facts reach back before the
oldest item of a full page, or whose service was not asked, (3) one more index Query. The
locks are conditional writes made after deciding, one per distinct (session, cause).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sessionwatch.contract import Cause
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import Verdict, decide
from sessionwatch.detectors.facts import (
    CLOCK_SKEW_S,
    DeploymentWindow,
    NotFound,
    SessionOrigin,
    TaskFacts,
)
from sessionwatch.detectors.ledger import Ledger, Query
from sessionwatch.detectors.ledger_items import (
    DEP_INDEX_PREFIX,
    DEPLOYMENT_QUERY_LIMIT,
    Item,
    Key,
    item_key,
    origin_from_item,
    session_key,
    task_from_item,
    task_key,
    windows_from_index,
)

# Third-wave queries of one service within the same minute are shared.
_QUERY_BUCKET_S = 60.0


@dataclass(frozen=True)
class Decision:
    """One occurrence's verdict; ``counted`` when it was the first of its (session, cause)."""

    occurrence: NotFound
    verdict: Verdict
    counted: bool
    revised_from: Cause | None = None  # an earlier verdict of this same 404, now contradicted


def classify(
    ledger: Ledger,
    occurrences: Iterable[NotFound],
    cfg: Config,
    now: float,
    decisions: list[Decision] | None = None,
) -> list[Decision]:
    """Decide each occurrence, count new (session, cause) pairs, park what is still pending.

    ``decisions`` (returned) is filled in place, each marked ``counted`` the moment its lock is
    claimed: when a later AWS call fails, the caller still emits what was counted, as a claimed
    lock is never claimed again and its metric would otherwise be lost for good.
    """
    decisions = [] if decisions is None else decisions
    unique = sorted(
        {o.key: o for o in occurrences}.values(), key=lambda o: (o.fingerprint, o.at, o.task_id)
    )
    if not unique:
        return decisions
    facts = read_facts(ledger, unique, now - cfg.ledger_ttl_days * 86400)
    first_of_pair: dict[tuple[str, Cause], int] = {}  # earliest occurrence per pair (sorted)
    settle: list[NotFound] = []
    park: list[NotFound] = []
    for nf in unique:
        origin = facts.origins.get(nf.fingerprint)
        origin_task = facts.tasks.get(origin.task_id) if origin else None
        serving = facts.tasks.get(nf.task_id)
        ecs_service = (origin_task.service if origin_task else None) or (
            serving.service if serving else None
        )
        if ecs_service is not None and not cfg.service_in_scope(ecs_service):
            settle.append(nf)  # another service's loss: not ours to count
            continue
        windows = facts.windows.get(ecs_service or "", [])
        verdict = decide(nf, origin, origin_task, serving, windows, cfg.grace_period_s, now)
        (settle if verdict.final else park).append(nf)
        if verdict.final:
            first_of_pair.setdefault((nf.fingerprint, verdict.cause), len(decisions))
        decisions.append(Decision(nf, verdict, counted=False))
    failure: Exception | None = None
    for i in first_of_pair.values():
        d = decisions[i]
        try:  # one failed lock must not keep the others from being counted
            if ledger.lock_verdict(d.occurrence, d.verdict, now):
                # Only a late decision can contradict an earlier final one (final verdicts
                # before the grace period are those no fact can change).
                late = now >= d.occurrence.at + cfg.grace_period_s
                revised = _revised(ledger, d) if late else None
                decisions[i] = replace(d, counted=True, revised_from=revised)
        except Exception as exc:  # re-raised below, after the rest
            failure = failure or exc
            park.append(d.occurrence)  # decided again by the reporter (or the retry)
    if park:
        ledger.store_pending(park)
    if settle:
        ledger.drop_pending([nf for nf in settle if nf not in park])
    if failure is not None:
        raise failure
    return decisions


def revisit_task(
    ledger: Ledger, task_id: str, cfg: Config, now: float, decisions: list[Decision]
) -> bool:
    """Decide again the counted 404s of the sessions created on a task whose stop just became
    known; add to ``decisions`` those counted under a new cause.

    A stop delivered later than the grace period (ECS sends a crash's STOPPED event only, and
    late) finds those 404s final without it, e.g. ``stickiness`` (origin alive). Each
    (session, cause) lock keeps its earliest 404; those occurrences go through ``classify``
    again (the same rules and locks), so a changed cause is counted once under the new cause,
    marked ``revised_from`` the old one (both stay counted), and a deployment loss lands in its
    deployment's losses (its report, or a follow-up). An unchanged verdict finds its lock taken
    and counts nothing. Cost: ``Ledger.task_lost_occurrences`` (one Query, one read wave), then
    the usual waves of one batch. True when there were 404s to decide again (the caller then
    marks the stop revisited, so a re-delivery costs no second look).
    """
    occurrences = ledger.task_lost_occurrences(task_id)
    if not occurrences:
        return False
    redone: list[Decision] = []
    try:
        classify(ledger, occurrences, cfg, now, redone)
    finally:  # what was counted is emitted even when a later call failed
        decisions.extend(d for d in redone if d.counted)
    return True


@dataclass(frozen=True)
class BatchFacts:
    """What a batch of not-founds is decided from: origins, tasks, windows per service."""

    origins: dict[str, SessionOrigin]
    tasks: dict[str, TaskFacts]
    windows: dict[str, list[DeploymentWindow]]


def _bucket(t: float) -> float:
    # Rounded up: a deployment that began a moment (skew) after the 404 is still in range.
    return math.ceil((t + 2 * CLOCK_SKEW_S) / _QUERY_BUCKET_S) * _QUERY_BUCKET_S


def read_facts(ledger: Ledger, occurrences: list[NotFound], horizon: float) -> BatchFacts:
    """The facts a batch needs, in two read waves (a third only in the rare cases above).

    A creation record older than ``horizon`` (the TTL) is expired even if DynamoDB has not
    deleted it yet (TTL deletion lags): it is treated as gone.
    """
    fingerprints = list(dict.fromkeys(o.fingerprint for o in occurrences))
    serving_ids = list(dict.fromkeys(o.task_id for o in occurrences))
    first, _ = ledger.read_wave([*map(session_key, fingerprints), *map(task_key, serving_ids)])
    origins: dict[str, SessionOrigin] = {}
    for fp in fingerprints:
        origin = origin_from_item(first.get(session_key(fp)))
        if origin is not None and origin.created_at >= horizon:
            origins[fp] = origin
    tasks = _tasks(first)
    # Wave 2: the origin tasks, and per service ONE index Query (newest first, small Limit)
    # reaching the batch's latest 404; the newest deployments are the ones in effect.
    latest: dict[str, float] = {}
    for nf in occurrences:
        svc = tasks[nf.task_id].service if nf.task_id in tasks else None
        if svc:
            latest[svc] = max(nf.at, latest.get(svc, nf.at))
    queries = {
        Ledger.deployments_query(svc, t + 2 * CLOCK_SKEW_S): svc for svc, t in latest.items()
    }
    origin_ids = {o.task_id for o in origins.values()} - set(tasks)
    second, results = ledger.read_wave(map(task_key, sorted(origin_ids)), queries)
    tasks |= _tasks(second)
    index: dict[str, dict[Key, Item]] = {}
    full: dict[str, bool] = {}
    for q, items in results.items():
        index.setdefault(queries[q], {}).update((item_key(i), i) for i in items)
        full[queries[q]] = full.get(queries[q], False) or len(items) >= DEPLOYMENT_QUERY_LIMIT
    # Wave 3, rare: a service not asked yet (origin of another service, serving task unknown),
    # or a 404 whose facts reach back before the oldest item a full page returned.
    more: dict[Query, str] = {}
    for nf in occurrences:
        origin = origins.get(nf.fingerprint)
        o = tasks.get(origin.task_id) if origin else None
        serving = tasks.get(nf.task_id)
        svc = (o.service if o else None) or (serving.service if serving else None)
        if not svc:
            continue
        if svc not in index:
            more[Ledger.deployments_query(svc, _bucket(nf.at))] = svc
            continue
        needed = min(
            t
            for t in (nf.at, o.stop_began if o else None, serving.started_at if serving else None)
            if t is not None
        )
        oldest = _oldest(index[svc].values())
        if full.get(svc) and oldest is not None and needed < oldest:
            more[Ledger.deployments_query(svc, _bucket(needed))] = svc
    if more:
        _, extra = ledger.read_wave((), more)
        for q, items in extra.items():
            index.setdefault(more[q], {}).update((item_key(i), i) for i in items)
    windows = {svc: windows_from_index(items.values()) for svc, items in index.items()}
    return BatchFacts(origins, tasks, windows)


def _revised(ledger: Ledger, d: Decision) -> Cause | None:
    """The cause this same 404 was counted under before, when later facts changed its verdict
    (a fact delivered later than the grace period): both stay counted, the change is logged.
    One Query of the session's locks, only for a newly counted pair."""
    for cause, serving, at in ledger.session_locks(d.occurrence.fingerprint):
        same = (
            serving == d.occurrence.task_id and at is not None and abs(at - d.occurrence.at) < 1e-3
        )
        if same and cause is not d.verdict.cause:
            return cause
    return None


def _oldest(items: Iterable[Mapping[str, Any]]) -> float | None:
    """The earliest time among index items (their sort keys start ``D#{time}``)."""
    times = []
    for item in items:
        with contextlib.suppress(ValueError):
            times.append(float(item["sk"]["S"][len(DEP_INDEX_PREFIX) :].split("#", 1)[0]))
    return min(times, default=None)


def _tasks(items: Mapping[Key, Item]) -> dict[str, TaskFacts]:
    out = {}
    for key, item in items.items():
        if key[1] == "FACTS" and key[0].startswith("TASK#"):
            facts = task_from_item(item)
            if facts is not None:
                out[facts.task_id] = facts
    return out
