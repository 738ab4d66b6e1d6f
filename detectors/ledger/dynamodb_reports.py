"""The DynamoDB ledger's report state: the reporter's active list and each report's transitions.

The transitions are ``detectors.report_state``'s, written as conditional updates of the
deployment's FACTS item, so a report is claimed once (or again when the claim is stale), marked
sent once, and a follow-up is flagged only on a sent report, whatever runs overlap.
"""

from __future__ import annotations

from collections.abc import Iterable

from sessionwatch.detectors.ledger.dynamodb_items import (
    ACTIVE_PK,
    EXPIRES_ATTR,
    active_key,
    deployment_key,
    deployment_record,
    get_s,
    key_item,
    n_value,
    s_value,
)
from sessionwatch.detectors.ledger.dynamodb_table import DynamoDBTable
from sessionwatch.detectors.ledger.records import DeploymentRecord


class DeploymentReports(DynamoDBTable):
    """The active list (deployments not yet reported, or with a follow-up due) and the
    report's claim / sent / follow-up state."""

    def _put_active(self, service: str, deployment_id: str) -> None:
        self._put(
            active_key(service, deployment_id),
            {"svc": s_value(service), "dep": s_value(deployment_id)},
        )

    def active(self) -> list[tuple[str, str]]:
        """Deployments not yet reported (or with a follow-up due): small items, one each."""
        out = []
        for item in self._query_all(ACTIVE_PK):
            svc, dep = get_s(item, "svc"), get_s(item, "dep")
            if svc and dep:
                out.append((svc, dep))
        return out

    def deployments(
        self, ids: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], DeploymentRecord]:
        keys = {deployment_key(s, d): (s, d) for s, d in ids}
        found, _ = self._wave(keys)
        return {keys[k]: deployment_record(*keys[k], item) for k, item in found.items()}

    def drop_active(self, service: str, deployment_id: str) -> None:
        self._delete(active_key(service, deployment_id))

    # The report's transitions (``detectors.report_state``) as conditional updates.

    def flag_followup(self, service: str, deployment_id: str, now: float) -> None:
        """``report_state.flagged`` if sent, and back on the reporter's active list."""
        if self._conditional(
            deployment_key(service, deployment_id),
            "SET followup_due = if_not_exists(followup_due, :t)",
            "attribute_exists(sent_at)",
            {":t": n_value(now)},
        ):
            self._put_active(service, deployment_id)

    def claim_report(self, service: str, deployment_id: str, now: float, stale_s: float) -> bool:
        """``report_state.can_claim`` -> ``claimed`` (the deployment's item must exist)."""
        return self._conditional(
            deployment_key(service, deployment_id),
            "SET claim_at = :now",
            "attribute_exists(pk) AND attribute_not_exists(sent_at) AND "
            "(attribute_not_exists(claim_at) OR claim_at < :stale)",
            {":now": n_value(now), ":stale": n_value(now - stale_s)},
        )

    def mark_sent(self, service: str, deployment_id: str, now: float, end: str) -> None:
        """``report_state.marked_sent``, and off the active list."""
        self._db.update_item(
            TableName=self._table,
            Key=key_item(deployment_key(service, deployment_id)),
            UpdateExpression="SET sent_at = :now, sent_end = :end, #e = :e REMOVE claim_at",
            ExpressionAttributeNames={"#e": EXPIRES_ATTR},
            ExpressionAttributeValues={
                ":now": n_value(now),
                ":end": s_value(end),
                ":e": self._expires(),
            },
        )
        self._delete(active_key(service, deployment_id))

    def release_report(self, service: str, deployment_id: str) -> None:
        """``report_state.released``: the next run retries at once."""
        self._db.update_item(
            TableName=self._table,
            Key=key_item(deployment_key(service, deployment_id)),
            UpdateExpression="REMOVE claim_at",
        )

    def claim_followup(
        self, service: str, deployment_id: str, now: float, every_s: float, end: str
    ) -> bool:
        """``report_state.can_claim_followup`` -> ``followup_claimed``."""
        return self._conditional(
            deployment_key(service, deployment_id),
            "SET followup_at = :now, sent_end = :end REMOVE followup_due",
            "attribute_exists(followup_due) AND "
            "(attribute_not_exists(followup_at) OR followup_at < :since)",
            {":now": n_value(now), ":since": n_value(now - every_s), ":end": s_value(end)},
        )
