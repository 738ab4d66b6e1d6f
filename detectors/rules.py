"""Attribution rules that are not about one 404's facts: who owns a counted loss.

``core.decide`` gives one 404 its cause; these answer the questions around the count:
which deployment a session's loss belongs to when it was decided twice, which loss entries a
report counts, whether a task's sessions owe a second look. The ledger stores; it never
decides any of this (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sessionwatch.detectors.facts import DeploymentWindow, NotFound, Verdict
from sessionwatch.detectors.ledger.records import DeploymentLoss, LockClaim, LossLock, TaskMerge

# Two times the ledger stored as the same 404 (stored floats; server lines have milliseconds).
SAME_TIME_S = 1e-3


def revisit_due(merge: TaskMerge) -> bool:
    """A task's counted 404s owe another look once its stop times are known and differ from
    the ones last revisited: a first-seen stop is due, and stays due if the revisit failed
    (the retried event finds it unmarked); a re-delivery after a successful revisit is not."""
    return merge.facts.stop_began is not None and merge.stop_mark != merge.revisited


def lock_tiebreak(verdict: Verdict) -> float | None:
    """Which deployment owns a loss: the lock keeps the session's earliest 404, and for the
    same 404 decided twice the deployment that began later (a premature verdict charged the
    previous rollout while the next one's start, which stopped the origin, was on its way:
    ``core.stopper`` only gains candidates with facts). None: no deployment to rank."""
    return verdict.deployment_started_at if verdict.deployment_id else None


def loss_lock(nf: NotFound, verdict: Verdict) -> LossLock:
    return LossLock(
        fingerprint=nf.fingerprint,
        cause=verdict.cause,
        serving_task=nf.task_id,
        at=nf.at,
        service=verdict.service,
        origin_task=verdict.origin_task,
        deployment_id=verdict.deployment_id,
        deployment_started_at=verdict.deployment_started_at,
        basis=verdict.basis,
    )


def followups_after(verdict: Verdict, claim: LockClaim) -> list[str]:
    """Deployments whose sent report a lock write changed: the one it names when the loss is
    new or moved to it, and the one it moved from."""
    if not (verdict.deployment_id and verdict.service):
        return []
    moved_from = claim.previous.deployment_id if claim.previous else None
    moved = moved_from is not None and moved_from != verdict.deployment_id
    out = [verdict.deployment_id] if claim.counted or moved else []
    if moved and moved_from is not None:
        out.append(moved_from)
    return out


def owned_entries(losses: Iterable[DeploymentLoss], deployment_id: str) -> list[DeploymentLoss]:
    """The loss entries a deployment's report counts: an entry whose lock names another
    deployment is that one's (a corrected attribution)."""
    return [x for x in losses if x.owner in (None, deployment_id)]


def owned_losses(losses: Iterable[DeploymentLoss], deployment_id: str) -> list[float]:
    """The earliest 404 times of the sessions a deployment's report counts, sorted."""
    return sorted(x.at for x in owned_entries(losses, deployment_id))


def previous_deployment(
    windows: Sequence[DeploymentWindow], deployment_id: str, at: float
) -> str | None:
    """The service's newest deployment that began before ``deployment_id`` (at ``at``)."""
    earlier = [w for w in windows if w.deployment_id != deployment_id and w.started_at <= at]
    latest = max(earlier, key=lambda w: (w.started_at, w.deployment_id), default=None)
    return None if latest is None else latest.deployment_id


def same_occurrence(lock: LossLock, nf: NotFound) -> bool:
    """The lock's earliest 404 is this 404 (same serving task and time)."""
    return lock.serving_task == nf.task_id and abs(lock.at - nf.at) < SAME_TIME_S
