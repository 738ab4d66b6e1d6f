"""Decide a batch of not-found occurrences against the ledger; count each (session, cause) once.

Every occurrence gets its own verdict (``core.decide``: a function of that occurrence and the
stored facts only), as soon as the facts settle it. SessionsLost counts distinct lost sessions
per cause: the first verdict of a (session, cause) pair claims its lock and is counted, every
later one (a retry, a re-delivery) is not. The set of pairs does not depend on the order or
the duplication of the occurrences, so neither do the counts.

Reads are batched into ONE round trip per batch, however large (see ``Ledger.get_many``): the
sessions' creation records, the deployment windows, and the task summary shards, which hold
the facts of every task, so the origin tasks the sessions name need no second read. The locks
are conditional writes made after deciding, one per distinct (session, cause) of the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sessionwatch.contract import Cause
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import NotFound, Verdict, decide
from sessionwatch.detectors.ledger import Ledger
from sessionwatch.detectors.ledger_items import (
    TASK_SHARD_KEYS,
    WINDOWS_KEY,
    origin_from_item,
    session_key,
    tasks_from_items,
    windows_from_item,
)


@dataclass(frozen=True)
class Decision:
    """One occurrence's verdict; ``counted`` when it was the first of its (session, cause)."""

    occurrence: NotFound
    verdict: Verdict
    counted: bool


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
    fingerprints = dict.fromkeys(o.fingerprint for o in unique)
    items = ledger.get_many([WINDOWS_KEY, *TASK_SHARD_KEYS, *map(session_key, fingerprints)])
    windows = windows_from_item(items.get(WINDOWS_KEY))
    tasks = tasks_from_items(items)
    # A creation record older than the TTL is expired even if DynamoDB has not deleted it yet
    # (TTL deletion lags): treat it as gone, as its origin task's facts may be pruned.
    horizon = now - cfg.ledger_ttl_days * 86400

    first_of_pair: dict[tuple[str, Cause], int] = {}  # earliest occurrence per pair (sorted)
    settle: list[NotFound] = []
    park: list[NotFound] = []
    for nf in unique:
        origin = origin_from_item(items.get(session_key(nf.fingerprint)))
        if origin is not None and origin.created_at < horizon:
            origin = None
        origin_task = tasks.get(origin.task_id) if origin else None
        serving = tasks.get(nf.task_id)
        ecs_service = (origin_task.service if origin_task else None) or (
            serving.service if serving else None
        )
        if ecs_service is not None and not cfg.service_in_scope(ecs_service):
            settle.append(nf)  # another service's loss: not ours to count
            continue
        verdict = decide(nf, origin, origin_task, serving, windows, cfg.grace_period_s, now)
        (settle if verdict.final else park).append(nf)
        if verdict.final:
            first_of_pair.setdefault((nf.fingerprint, verdict.cause), len(decisions))
        decisions.append(Decision(nf, verdict, counted=False))
    for i in first_of_pair.values():
        d = decisions[i]
        if ledger.lock_verdict(d.occurrence, d.verdict, now):
            decisions[i] = replace(d, counted=True)
    if park:
        ledger.store_pending(park)
    if settle:
        ledger.drop_pending(settle)
    return decisions
