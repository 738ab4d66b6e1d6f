"""The deployment guards' own items in the ledger table: one per (deployment, guard).

The drain gate, stop-on-loss and the first-loss alert each keep one small item beside the
deployment's ``FACTS`` (``DEP#{svc}#{dep}`` / ``GUARD#{GATE|STOP|ALERT}``). ``claim`` is a
conditional put (``attribute_not_exists``): exactly one caller wins it, whatever the number of
overlapping invocations or re-deliveries, which is what makes a stop and an alert happen at
most once per deployment. The module reads nothing else of the ledger; what the guards read of
the detectors' facts goes through ``GuardReader`` (a few public ``Ledger`` methods).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

from sessionwatch.detectors.facts import DeploymentWindow, SessionSpan, TaskFacts
from sessionwatch.detectors.ledger_items import LOST_PREFIX, deployment_pk

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

GUARD_PREFIX = "GUARD#"
GATE, STOP, ALERT = "GATE", "STOP", "ALERT"
# A string set in one item stays far under DynamoDB's 400 KB: 500 fingerprints of 16-24 B.
MAX_FINGERPRINTS = 500

GuardValue = str | float | int | Sequence[str]


class GuardReader(Protocol):
    """What the guards read of the detectors' facts (``detectors.ledger.Ledger`` provides it)."""

    def windows_of(self, service: str, lo: float, hi: float) -> list[DeploymentWindow]: ...

    def live_tasks(self, service: str) -> list[str]: ...

    def tasks(self, task_ids: Iterable[str]) -> dict[str, TaskFacts]: ...

    def task_sessions(self, task_id: str) -> list[SessionSpan]: ...

    def deployment_losses(self, service: str, deployment_id: str) -> list[float]: ...


def _value(v: GuardValue) -> dict[str, Any]:
    if isinstance(v, str):
        return {"S": v}
    if isinstance(v, int | float):
        return {"N": repr(float(v))}
    return {"SS": sorted(set(v))[:MAX_FINGERPRINTS]} if v else {"NULL": True}


def _plain(v: Mapping[str, Any]) -> GuardValue | None:
    if "S" in v:
        return str(v["S"])
    if "N" in v:
        return float(v["N"])
    if "SS" in v:
        return sorted(v["SS"])
    return None


class GuardStore:
    """Claim, update and read the guards' items (DynamoDB calls only, no decisions)."""

    def __init__(self, client: DynamoDBClient, table_name: str, ttl_days: int) -> None:
        self._db = client
        self._table = table_name
        self._ttl_s = ttl_days * 86400

    def _key(self, service: str, deployment_id: str, guard: str) -> dict[str, Any]:
        return {
            "pk": {"S": deployment_pk(service, deployment_id)},
            "sk": {"S": GUARD_PREFIX + guard},
        }

    def _body(self, fields: Mapping[str, GuardValue]) -> dict[str, Any]:
        body = {k: _value(v) for k, v in fields.items()}
        body["expires_at"] = {"N": str(int(time.time() + self._ttl_s))}  # TTL is wall-clock
        return body

    def claim(
        self, service: str, deployment_id: str, guard: str, fields: Mapping[str, GuardValue]
    ) -> bool:
        """Create the item if absent; True only for the one caller that created it."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._key(service, deployment_id, guard) | self._body(fields),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, service: str, deployment_id: str, guard: str) -> None:
        """Give a claim back (its action failed): the next caller may try again."""
        self._db.delete_item(TableName=self._table, Key=self._key(service, deployment_id, guard))

    def update(
        self, service: str, deployment_id: str, guard: str, fields: Mapping[str, GuardValue]
    ) -> None:
        body = self._body(fields)
        names = {f"#a{i}": k for i, k in enumerate(body)}
        values = {f":a{i}": v for i, v in enumerate(body.values())}
        sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(body)))
        self._db.update_item(
            TableName=self._table,
            Key=self._key(service, deployment_id, guard),
            UpdateExpression="SET " + sets,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def read(self, service: str, deployment_id: str) -> dict[str, dict[str, GuardValue]]:
        """Every guard item of a deployment: guard name -> its fields (one Query)."""
        return guards_from_items(self._query(deployment_pk(service, deployment_id), GUARD_PREFIX))

    def lost_fingerprints(self, service: str, deployment_id: str) -> set[str]:
        """The sessions with a loss entry of this deployment (the report's held-and-lost)."""
        items = self._query(deployment_pk(service, deployment_id), LOST_PREFIX)
        return {str(i["sk"]["S"]).removeprefix(LOST_PREFIX) for i in items}

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": pk}, ":s": {"S": prefix}},
        }
        while True:
            resp = self._db.query(**kwargs)
            items.extend(resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def guards_from_items(items: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, GuardValue]]:
    """Guard items (raw DynamoDB) -> guard name -> its fields as plain values."""
    out: dict[str, dict[str, GuardValue]] = {}
    for item in items:
        sk = str(item["sk"]["S"])
        if not sk.startswith(GUARD_PREFIX):
            continue
        fields = {k: _plain(v) for k, v in item.items() if k not in ("pk", "sk", "expires_at")}
        out[sk.removeprefix(GUARD_PREFIX)] = {k: v for k, v in fields.items() if v is not None}
    return out
