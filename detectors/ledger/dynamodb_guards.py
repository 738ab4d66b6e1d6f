"""The DynamoDB ledger's guard records: one item per deployment and guard (gate, stop, alert).

A claim is a conditional put, so exactly one caller creates a guard's record whatever the
overlap or re-delivery; updates set or remove its ``g_`` fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from sessionwatch.detectors.ledger.codec import guard_fields
from sessionwatch.detectors.ledger.dynamodb_items import (
    EXPIRES_ATTR,
    GUARD_PREFIX,
    Item,
    deployment_pk,
    guard_attr,
    guard_from_item,
    guard_key,
    key_item,
)
from sessionwatch.detectors.ledger.dynamodb_table import DynamoDBTable
from sessionwatch.detectors.ledger.records import Guard, GuardRecord, GuardValue


class GuardRecords(DynamoDBTable):
    """The deployment guards' claims and records."""

    def claim_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> bool:
        """A conditional put (``attribute_not_exists``): one caller creates the record."""
        body = dict(guard_attr(k, v) for k, v in guard_fields(fields).items() if v is not None)
        return self._put_new(guard_key(service, deployment_id, guard), body)

    def release_guard(self, service: str, deployment_id: str, guard: Guard) -> None:
        self._delete(guard_key(service, deployment_id, guard))

    def update_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> None:
        names: dict[str, str] = {"#e": EXPIRES_ATTR}
        values: Item = {":e": self._expires()}
        sets, removes = ["#e = :e"], []
        for i, (name, value) in enumerate(guard_fields(fields).items()):
            if value is None:
                names[f"#a{i}"] = "g_" + name
                removes.append(f"#a{i}")
                continue
            names[f"#a{i}"], values[f":a{i}"] = guard_attr(name, value)
            sets.append(f"#a{i} = :a{i}")
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        self._db.update_item(
            TableName=self._table,
            Key=key_item(guard_key(service, deployment_id, guard)),
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def guards_of(self, service: str, deployment_id: str) -> dict[Guard, GuardRecord]:
        items = self._query_all(deployment_pk(service, deployment_id), GUARD_PREFIX)
        records = (guard_from_item(service, deployment_id, i) for i in items)
        return {r.guard: r for r in records if r is not None}
