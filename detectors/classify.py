"""Decide a batch of not-found occurrences against the ledger, counting each lost session once.

Reads are batched: one BatchGetItem round for the sessions, the serving tasks and the deployment
windows, and a second for the origin tasks that round named (a session's origin task is only
known once its creation record is read). That is two round trips per batch however large.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from detectors.config import Config
from detectors.core import NotFound, Verdict, decide
from detectors.ledger import (
    WINDOWS_KEY,
    Ledger,
    lost_key,
    origin_from_item,
    session_key,
    task_from_item,
    task_key,
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
    first_keys = [WINDOWS_KEY]
    for fp, group in by_fp.items():
        first_keys += [session_key(fp), lost_key(fp)]
        first_keys += [task_key(o.task_id) for o in group]
    items = ledger.get_many(first_keys)
    origins = {fp: origin_from_item(items.get(session_key(fp))) for fp in by_fp}
    missing = {
        task_key(o.task_id) for o in origins.values() if o and task_key(o.task_id) not in items
    }
    if missing:
        items |= ledger.get_many(sorted(missing))
    windows = windows_from_item(items.get(WINDOWS_KEY))

    decisions: list[Decision] = []
    settle: list[NotFound] = []
    park: list[NotFound] = []
    for fp, group in sorted(by_fp.items()):
        if lost_key(fp) in items:
            settle += group  # already decided and counted by an earlier delivery
            continue
        nf = group[0]
        origin = origins[fp]
        origin_task = (
            task_from_item(origin.task_id, items.get(task_key(origin.task_id))) if origin else None
        )
        serving = task_from_item(nf.task_id, items.get(task_key(nf.task_id)))
        verdict = decide(nf, origin, origin_task, serving, windows, cfg.grace_period_s, now)
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
