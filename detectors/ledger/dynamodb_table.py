"""The DynamoDB ledger's table core: the client, the TTL, and the few call shapes every job uses.

Each job of ``DynamoDBLedger`` (``dynamodb_facts``, ``dynamodb_reads``, ``dynamodb_losses``,
``dynamodb_reports``, ``dynamodb_guards``) is a mixin over this class and writes through these
primitives only: a tag-set merge (``ADD``), a put, a delete, a conditional update, an
"earliest wins" update, a batched write and one read wave. Why at-least-once delivery is
harmless here: immutable puts of identical items and ``ADD`` to sets are idempotent and
commutative; the only writes with an effect outside the ledger (a count lock, a report claim,
a guard claim) are conditional and succeed once. ``expires_at`` (DynamoDB TTL) is set on every
write: TTL deletion can lag by days, so readers also ignore what is older than the TTL by its
own time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from sessionwatch.detectors.ledger.dynamodb_items import (
    EXPIRES_ATTR,
    TAGS_ATTR,
    Item,
    Key,
    item_key,
    key_item,
    n_value,
    s_value,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
_RETRIES = 8
_Returns = Literal["ALL_NEW", "ALL_OLD"]


@dataclass(frozen=True)
class Query:
    """One Query of a partition: sort keys in [lo, hi] (or starting with ``prefix``; or the
    whole partition), newest first when ``descending``, at most ``limit`` items."""

    pk: str
    lo: str | None = None
    hi: str | None = None
    descending: bool = False
    limit: int | None = None
    prefix: str | None = None


def condition_refused(exc: ClientError) -> bool:
    return exc.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoDBTable:
    """One DynamoDB table and its client; ``read_round_trips`` counts read waves."""

    def __init__(self, client: DynamoDBClient, table_name: str, ttl_days: int) -> None:
        self._db = client
        self._table = table_name
        self._ttl_s = ttl_days * 86400
        self.read_round_trips = 0

    def _expires(self) -> dict[str, str]:
        # Wall-clock, not the handlers' clock: DynamoDB's TTL compares against real time.
        return {"N": str(int(time.time() + self._ttl_s))}

    # --- writes -------------------------------------------------------------------------------

    def _add_tags(
        self, key: Key, tags: Sequence[str], extra: Mapping[str, str], returns: _Returns = "ALL_NEW"
    ) -> Item:
        """ADD tags to the item's set (idempotent, order-free); the merged item comes back
        (``returns="ALL_OLD"``: the item as it was before, to tell what is new)."""
        names = {"#f": TAGS_ATTR, "#e": EXPIRES_ATTR}
        values: Item = {":f": {"SS": list(tags)}, ":e": self._expires()}
        sets = ["#e = :e"]
        for i, (name, value) in enumerate(extra.items()):
            names[f"#x{i}"], values[f":x{i}"] = name, s_value(value)
            sets.append(f"#x{i} = :x{i}")
        resp = self._db.update_item(
            TableName=self._table,
            Key=key_item(key),
            UpdateExpression="ADD #f :f SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues=returns,
        )
        return dict(resp.get("Attributes") or {})

    def _put(self, key: Key, body: Mapping[str, Any]) -> None:
        self._db.put_item(TableName=self._table, Item=self._item(key, body))

    def _item(self, key: Key, body: Mapping[str, Any]) -> Item:
        """The whole item to put: key, body and its TTL."""
        return key_item(key) | dict(body) | {EXPIRES_ATTR: self._expires()}

    def _put_new(self, key: Key, body: Mapping[str, Any]) -> bool:
        """A conditional put (``attribute_not_exists``): True for the one caller that created
        the item, False for every other."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(key, body),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if condition_refused(exc):
                return False
            raise
        return True

    def _delete(self, key: Key) -> None:
        self._db.delete_item(TableName=self._table, Key=key_item(key))

    def _conditional(self, key: Key, update: str, condition: str, values: Item) -> bool:
        """An update that applies only when ``condition`` holds; False when it did not."""
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key_item(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if condition_refused(exc):
                return False
            raise
        return True

    def _earliest(
        self,
        key: Key,
        values: Mapping[str, Any],
        at: float,
        first_seen: Mapping[str, Any] | None = None,
        tie: tuple[str, Any] | None = None,
    ) -> Item | None:
        """Write ``values`` and time ``at`` unless the item holds an earlier time already.

        Returns the item's previous attributes ({} for a new item), None when an earlier (or
        the same) time was there and nothing was written: earliest wins, whatever the order.
        ``first_seen`` attributes are only set when absent. ``tie`` (name, value) also lets
        the same time win when the item's ``name`` is absent or smaller than ``value``.
        """
        names = {"#at": "at", "#e": EXPIRES_ATTR}
        vals: Item = {":at": n_value(at), ":e": self._expires()}
        sets = ["#at = :at", "#e = :e"]
        for i, (name, value) in enumerate(values.items()):
            names[f"#v{i}"], vals[f":v{i}"] = name, value
            sets.append(f"#v{i} = :v{i}")
        for i, (name, value) in enumerate((first_seen or {}).items()):
            names[f"#f{i}"], vals[f":f{i}"] = name, value
            sets.append(f"#f{i} = if_not_exists(#f{i}, :f{i})")
        condition = "attribute_not_exists(#at) OR #at > :at"
        if tie is not None:
            names["#tie"], vals[":tie"] = tie
            condition += " OR (#at = :at AND (attribute_not_exists(#tie) OR #tie < :tie))"
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key=key_item(key),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=vals,
                ReturnValues="ALL_OLD",
            )
        except ClientError as exc:
            if condition_refused(exc):
                return None
            raise
        return dict(resp.get("Attributes") or {})

    def _write(self, puts: Sequence[Item], deletes: Sequence[Item]) -> None:
        """BatchWriteItem, 25 requests a call, unprocessed items retried with backoff."""
        requests = [{"PutRequest": {"Item": p}} for p in puts]
        requests += [{"DeleteRequest": {"Key": d}} for d in deletes]
        for i in range(0, len(requests), BATCH_WRITE_MAX):
            chunk: Any = {self._table: requests[i : i + BATCH_WRITE_MAX]}
            for attempt in range(_RETRIES):
                resp = self._db.batch_write_item(RequestItems=chunk)
                chunk = resp.get("UnprocessedItems") or {}
                if not chunk:
                    break
                time.sleep(min(0.05 * 2**attempt, 1.0))
            else:
                raise RuntimeError("DynamoDB left writes unprocessed after retries")

    # --- reads --------------------------------------------------------------------------------

    def _wave(
        self, keys: Iterable[Key], queries: Iterable[Query] = ()
    ) -> tuple[dict[Key, Item], dict[Query, list[Item]]]:
        """One read round trip: BatchGetItem chunks of ``keys`` and the ``queries``, at once.

        A wave is as wide as the client's connection pool (``max_pool_connections``; the
        handlers use 50); more calls than that take further waves. ``read_round_trips``
        counts the waves, for the tests and the benchmark.
        """
        wanted = list(dict.fromkeys(keys))
        chunks = [wanted[i : i + BATCH_GET_MAX] for i in range(0, len(wanted), BATCH_GET_MAX)]
        qs = list(dict.fromkeys(queries))
        calls: list[Callable[[], Any]] = [partial(self._get_chunk, c) for c in chunks]
        calls += [partial(self._query, q) for q in qs]
        if not calls:
            return {}, {}
        width = max(1, int(getattr(self._db.meta.config, "max_pool_connections", 10) or 10))
        self.read_round_trips += -(-len(calls) // width)
        if len(calls) == 1:
            results = [calls[0]()]
        else:
            with ThreadPoolExecutor(max_workers=min(width, len(calls))) as pool:
                results = list(pool.map(lambda f: f(), calls))
        found: dict[Key, Item] = {}
        for part in results[: len(chunks)]:
            found |= part
        return found, dict(zip(qs, results[len(chunks) :], strict=True))

    def _get_chunk(self, keys: Sequence[Key]) -> dict[Key, Item]:
        request: Any = {self._table: {"Keys": [key_item(k) for k in keys]}}
        found: dict[Key, Item] = {}
        for attempt in range(_RETRIES):
            resp = self._db.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self._table, []):
                found[item_key(item)] = item
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise RuntimeError("DynamoDB left reads unprocessed after retries")

    def _query(self, q: Query) -> list[Item]:
        """One Query, following pagination (not counted: callers count their waves)."""
        items: list[Item] = []
        kwargs: dict[str, Any] = {}
        while True:
            if q.limit:
                kwargs["Limit"] = q.limit - len(items)
            condition, values = "pk = :pk", {":pk": s_value(q.pk)}
            if q.lo is not None and q.hi is not None:
                condition += " AND sk BETWEEN :lo AND :hi"
                values |= {":lo": s_value(q.lo), ":hi": s_value(q.hi)}
            elif q.prefix:
                condition += " AND begins_with(sk, :p)"
                values[":p"] = s_value(q.prefix)
            resp = self._db.query(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=not q.descending,
                **kwargs,
            )
            items += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp or (q.limit and len(items) >= q.limit):
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def _query_all(self, pk: str, sk_prefix: str | None = None) -> list[Item]:
        """All items of a partition (optionally an sk prefix), following pagination; one
        read round trip."""
        self.read_round_trips += 1
        return self._query(Query(pk, prefix=sk_prefix))

    def _query_counted(self, q: Query) -> list[Item]:
        """One Query as its own read round trip."""
        self.read_round_trips += 1
        return self._query(q)
