"""Decide a batch of not-found occurrences against the ledger, counting each lost session once.

Reads are batched into ONE round trip per batch, however large (see ``Ledger.get_many``): the
sessions' creation records and verdicts, the deployment windows, and the task summary shards,
which hold the facts of every task, so the origin tasks the sessions name need no second read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from detectors.config import Config
from detectors.core import NotFound, Verdict, decide, hold_for_earlier
from detectors.ledger import (
    TASK_SHARD_KEYS,
    WINDOWS_KEY,
    Ledger,
    lost_key,
    origin_from_item,
    session_key,
    tasks_from_items,
    windows_from_item,
)


@dataclass(frozen=True)
class Decision:
    """A verdict on the earliest known occurrence of a session's loss; ``counted`` once ever."""

    occurrence: NotFound
    verdict: Verdict
    counted: bool


def classify(
    ledger: Ledger, occurrences: Iterable[NotFound], cfg: Config, now: float
) -> list[Decision]:
    """Decide, lock final verdicts, park the rest as pending; returns this batch's decisions."""
    by_fp: dict[str, list[NotFound]] = {}
    for nf in {o.key: o for o in occurrences}.values():
        by_fp.setdefault(nf.fingerprint, []).append(nf)
    if not by_fp:
        return []
    for group in by_fp.values():
        group.sort(key=lambda o: (o.at, o.task_id))
    keys = [WINDOWS_KEY, *TASK_SHARD_KEYS]
    for fp in by_fp:
        keys += [session_key(fp), lost_key(fp)]
    items = ledger.get_many(keys)
    windows = windows_from_item(items.get(WINDOWS_KEY))
    tasks = tasks_from_items(items)
    # A creation record older than the TTL is expired even if DynamoDB has not deleted it yet
    # (TTL deletion lags): treat it as gone, as its origin task's facts may be pruned.
    horizon = now - cfg.ledger_ttl_days * 86400

    decisions: list[Decision] = []
    settle: list[NotFound] = []
    park: list[NotFound] = []
    for fp, group in sorted(by_fp.items()):
        if lost_key(fp) in items:
            settle += group  # already decided and counted by an earlier delivery
            continue
        nf = group[0]
        origin = origin_from_item(items.get(session_key(fp)))
        if origin is not None and origin.created_at < horizon:
            origin = None
        origin_task = tasks.get(origin.task_id) if origin else None
        serving = tasks.get(nf.task_id)
        verdict = decide(nf, origin, origin_task, serving, windows, cfg.grace_period_s, now)
        verdict = hold_for_earlier(verdict, nf, cfg.grace_period_s, now)
        ecs_service = (origin_task.service if origin_task else None) or (
            serving.service if serving else None
        )
        if ecs_service is not None and not cfg.service_in_scope(ecs_service):
            settle += group  # another service's loss: not ours to count
            continue
        if not verdict.final:
            park += group
            decisions.append(Decision(nf, verdict, counted=False))
            continue
        counted = ledger.lock_verdict(nf, verdict, now)
        settle += group
        decisions.append(Decision(nf, verdict, counted))
    if park:
        ledger.store_pending(park)
    if settle:
        ledger.drop_pending(settle)
    return decisions
