"""The DynamoDB ledger's losses: count locks (one per session and cause) and deployment losses.

Both are "earliest wins" conditional updates (``DynamoDBTable._earliest``): whatever the
order and duplication of deliveries, the item keeps the earliest 404, and exactly one write
creates a lock (``LockClaim.counted``); the marks ``retract_lock``/``reinstate_lock`` are
conditional on the 404 the lock holds, so each -1 and +1 is emitted once.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from sessionwatch.contract import Cause
from sessionwatch.detectors.ledger.dynamodb_items import (
    DEP_STARTED_ATTR,
    LOST_PREFIX,
    RETRACTED_ATTR,
    Item,
    deployment_loss_key,
    deployment_pk,
    get_n,
    get_s,
    key_item,
    lock_from_item,
    lock_values,
    lost_key,
    n_value,
    session_pk,
    spans_from_items,
    task_sessions_pk,
)
from sessionwatch.detectors.ledger.dynamodb_table import DynamoDBTable, Query, condition_refused
from sessionwatch.detectors.ledger.records import DeploymentLoss, LockClaim, LossLock


class LossLocks(DynamoDBTable):
    """Count locks and deployment loss entries, written and read as records."""

    def record_deployment_loss(
        self, service: str, deployment_id: str, fingerprint: str, at: float
    ) -> None:
        self._earliest(deployment_loss_key(service, deployment_id, fingerprint), {}, at)

    def claim_lock(self, lock: LossLock, tiebreak: float | None, now: float) -> LockClaim | None:
        values = lock_values(lock)
        tie = None
        if tiebreak is not None:
            values[DEP_STARTED_ATTR] = n_value(tiebreak)
            tie = (DEP_STARTED_ATTR, values[DEP_STARTED_ATTR])
        old = self._earliest(
            lost_key(lock.fingerprint, lock.cause),
            values,
            lock.at,
            first_seen={"decided_at": n_value(now)},
            tie=tie,
        )
        if old is None:
            return None
        previous = lock_from_item(old) if old else None
        return LockClaim(counted="at" not in old, previous=previous)

    def retract_lock(
        self, fingerprint: str, cause: Cause, now: float, at: float | None = None
    ) -> bool:
        """Mark the lock taken back, once (a conditional write): True for the one call that
        did; with ``at``, only while the lock still holds that 404 (not one moved earlier)."""
        condition = "attribute_exists(#at) AND attribute_not_exists(#r)"
        values = {":r": n_value(now)}
        if at is not None:
            condition += " AND #at = :at"
            values[":at"] = n_value(at)
        return self._mark(fingerprint, cause, "SET #r = :r", condition, values)

    def reinstate_lock(self, fingerprint: str, cause: Cause, at: float) -> bool:
        """Clear the lock's taken-back mark, once, while it holds the 404 at ``at``."""
        condition = "attribute_exists(#r) AND #at = :at"
        return self._mark(fingerprint, cause, "REMOVE #r", condition, {":at": n_value(at)})

    def _mark(
        self, fingerprint: str, cause: Cause, update: str, condition: str, values: Item
    ) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key_item(lost_key(fingerprint, cause)),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#r": RETRACTED_ATTR, "#at": "at"},
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if condition_refused(exc):
                return False
            raise
        return True

    def session_locks(self, fingerprint: str) -> list[LossLock]:
        """The session's count locks. Made after deciding (to log a revision), not a read the
        decision waits for: it is not counted in ``read_round_trips``."""
        items = self._query(Query(session_pk(fingerprint), prefix=LOST_PREFIX))
        return [lock for item in items if (lock := lock_from_item(item))]

    def task_locks(self, task_id: str) -> list[LossLock]:
        """One Query of the task's partition (its ``OPEN#``/``CLOSED#`` items), then ONE read
        wave of the sessions' locks (a BatchGetItem per 100 keys): bounded by the task's
        sessions, not by the cluster."""
        spans = spans_from_items(self._query_all(task_sessions_pk(task_id)))
        keys = [lost_key(s.fingerprint, c) for s in spans for c in Cause if c is not Cause.PENDING]
        found, _ = self._wave(keys)
        return [lock for _, item in sorted(found.items()) if (lock := lock_from_item(item))]

    def deployment_losses(self, service: str, deployment_id: str) -> list[DeploymentLoss]:
        """One Query of the deployment's losses, then one read wave of their locks."""
        items = self._query_all(deployment_pk(service, deployment_id), LOST_PREFIX)
        times = {str(i["sk"]["S"]).removeprefix(LOST_PREFIX): get_n(i, "at") for i in items}
        locks, _ = self._wave(lost_key(fp, Cause.DEPLOYMENT) for fp in times)
        out = []
        for fp, t in times.items():
            lock = locks.get(lost_key(fp, Cause.DEPLOYMENT), {})
            if t is not None:
                retracted = get_n(lock, RETRACTED_ATTR) is not None
                out.append(DeploymentLoss(fp, t, get_s(lock, "deployment_id"), retracted))
        return out
