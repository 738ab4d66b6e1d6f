"""DynamoDB's item size, capacity units and 400 KB item limit, by AWS's documented rules.

moto neither meters capacity nor enforces DynamoDB's real item limit (its own limit is 405,000 B
computed its own way, and a failing update may still be stored), so tests and benchmarks that
want to know what a ledger layout costs, or whether it fits, model both here.

The rules (AWS Developer Guide, "Item sizes and formats", "Read/write capacity mode"):

- An item's size is the sum, over its attributes, of the attribute name's UTF-8 length plus the
  value's size. String: UTF-8 bytes. Number: about 1 byte per two significant digits plus 1
  (leading and trailing zeros do not count; we add 1 more for a negative number). Binary: raw
  bytes. Boolean and null: 1 byte. List and map: 3 bytes of overhead plus 1 byte per element
  (a map's element also counts its key's UTF-8 length). String, number and binary sets: the
  sum of their elements' sizes.
- Reads: 4 KB units, rounded up, at least one. Eventually consistent: 0.5 read unit per unit,
  strongly consistent: 1, transactional: 2. GetItem of a missing item still costs one unit.
  BatchGetItem rounds each requested item separately (a missing item costs one unit). Query
  and Scan add up the sizes of the items they read (before any filter, whatever the
  projection) and round the sum once.
- Writes: 1 KB units, rounded up, at least one; transactional writes cost 2 per unit. PutItem,
  UpdateItem and DeleteItem are billed at the larger of the item's size before and after the
  write. BatchWriteItem rounds each item separately. A write whose condition fails still
  consumes units; we bill it as the write would have been (PutItem: larger of the stored and
  the offered item; UpdateItem and DeleteItem: the stored item), at least one unit.

How the meter sees sizes: projections do not change what a read costs, so when a GetItem,
BatchGetItem or Query carries a projection or a filter the meter reads the full items again
on the side (the same keys, or the same key condition and page); for every write it reads the
item before (consistent GetItem) and after the call. Side reads are not metered or limited
themselves. This doubles or triples the calls, which is fine for benchmarks and tests, never
for production code.
"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

MAX_ITEM_BYTES = 409_600
READ_UNIT_BYTES = 4096
WRITE_UNIT_BYTES = 1024
ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"

AttributeValue = Mapping[str, Any]
Item = Mapping[str, AttributeValue]

# ---- Sizes (pure) ----


def number_size(text: str) -> int:
    """Bytes a DynamoDB number takes: 1 per two significant digits, plus 1 (plus 1 if negative)."""
    value = Decimal(text)
    if value.is_zero():
        return 2
    digits = len(value.normalize().as_tuple().digits)
    return math.ceil(digits / 2) + 1 + (1 if value < 0 else 0)


def _binary_len(value: Any) -> int:
    if isinstance(value, str):  # base64 text, as on the wire
        import base64

        return len(base64.b64decode(value))
    return len(value)


def value_size(value: AttributeValue) -> int:
    """Bytes one attribute value takes (without its name), low-level wire format."""
    ((kind, v),) = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return number_size(v)
    if kind == "B":
        return _binary_len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(number_size(n) for n in v)
    if kind == "BS":
        return sum(_binary_len(b) for b in v)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(e) for k, e in v.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def item_size(item: Item | None) -> int:
    """Bytes an item takes: attribute names' UTF-8 lengths plus value sizes; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


def read_units(size: int, *, consistent: bool = False, transactional: bool = False) -> float:
    """Read units for reading ``size`` bytes in one unit of rounding (at least 4 KB)."""
    chunks = max(1, math.ceil(size / READ_UNIT_BYTES))
    per = 2.0 if transactional else 1.0 if consistent else 0.5
    return chunks * per


def write_units(size: int, *, transactional: bool = False) -> int:
    """Write units for writing an item of ``size`` bytes (at least 1 KB)."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES)) * (2 if transactional else 1)


def batch_get_units(sizes: Iterable[int], *, consistent: bool = False) -> float:
    """BatchGetItem: each item rounded up separately (a missing item, size 0, costs one unit)."""
    return sum(read_units(s, consistent=consistent) for s in sizes)


def query_units(sizes: Iterable[int], *, consistent: bool = False) -> float:
    """Query/Scan: the items' sizes summed, then rounded up once."""
    return read_units(sum(sizes), consistent=consistent)


def update_write_units(before: int, after: int, *, transactional: bool = False) -> int:
    """Put/Update/Delete: billed at the larger of the item before and after the write."""
    return write_units(max(before, after), transactional=transactional)


# ---- The botocore edge: side reads, the item limit, the meter ----

_side = threading.local()


def _in_side_call() -> bool:
    return bool(getattr(_side, "active", False))


@contextmanager
def _side_call() -> Iterator[None]:
    previous = _in_side_call()
    _side.active = True
    try:
        yield
    finally:
        _side.active = previous


def _get_full(client: Any, table: str, key: Item) -> dict[str, Any] | None:
    with _side_call():
        item: dict[str, Any] | None = client.get_item(
            TableName=table, Key=dict(key), ConsistentRead=True
        ).get("Item")
        return item


_key_names: dict[tuple[int, str], tuple[str, ...]] = {}


def _key_of(client: Any, table: str, item: Item) -> dict[str, Any]:
    cache_key = (id(client), table)
    names = _key_names.get(cache_key)
    if names is None:
        with _side_call():
            schema = client.describe_table(TableName=table)["Table"]["KeySchema"]
        names = tuple(k["AttributeName"] for k in schema)
        _key_names[cache_key] = names
    return {n: item[n] for n in names if n in item}


def item_too_large(operation: str) -> ClientError:
    """The error real DynamoDB answers for a write whose item would pass 400 KB."""
    response: Any = {
        "Error": {"Code": "ValidationException", "Message": ITEM_TOO_LARGE},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return ClientError(response, operation)


@dataclass
class _Write:
    """One item a write call touches: its table, key, size before, and what it offers."""

    table: str
    key: dict[str, Any]
    before: dict[str, Any] | None
    offered: dict[str, Any] | None = None  # the Put item, known before the call
    transactional: bool = False
    delete: bool = False


def _writes_of(client: Any, operation: str, params: Mapping[str, Any]) -> list[_Write]:
    """The items a write call touches, each with its stored state before the call."""
    out: list[_Write] = []

    def put(table: str, item: Item, tx: bool = False) -> None:
        key = _key_of(client, table, item)
        out.append(_Write(table, key, _get_full(client, table, key), dict(item), tx))

    def keyed(table: str, key: Item, tx: bool = False, delete: bool = False) -> None:
        out.append(_Write(table, dict(key), _get_full(client, table, key), None, tx, delete))

    if operation == "PutItem":
        put(params["TableName"], params["Item"])
    elif operation == "UpdateItem":
        keyed(params["TableName"], params["Key"])
    elif operation == "DeleteItem":
        keyed(params["TableName"], params["Key"], delete=True)
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            for r in requests:
                if "PutRequest" in r:
                    put(table, r["PutRequest"]["Item"])
                else:
                    keyed(table, r["DeleteRequest"]["Key"], delete=True)
    elif operation == "TransactWriteItems":
        for entry in params["TransactItems"]:
            if "Put" in entry:
                put(entry["Put"]["TableName"], entry["Put"]["Item"], True)
            elif "Update" in entry:
                keyed(entry["Update"]["TableName"], entry["Update"]["Key"], True)
            elif "Delete" in entry:
                keyed(entry["Delete"]["TableName"], entry["Delete"]["Key"], True, True)
            elif "ConditionCheck" in entry:
                c = entry["ConditionCheck"]
                keyed(c["TableName"], c["Key"], True)
    return out


WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems")


def install_item_limit(client: Any, limit: int = MAX_ITEM_BYTES) -> Callable[[], None]:
    """Make ``client`` (moto-backed) refuse writes whose item would exceed ``limit`` bytes.

    PutItem, BatchWriteItem and TransactWriteItems' puts are checked before the call (nothing is
    written, as in AWS: a BatchWriteItem with one oversized item fails whole). UpdateItem (and a
    transaction's updates) cannot be judged before the update expression is applied, so the
    item is read before the call, read again after it, and if it grew past the limit the old
    item is written back (or the new one deleted) before the ValidationException is raised:
    the caller sees the same outcome as with DynamoDB (error, item unchanged). The restore is
    not atomic against other writers; benchmarks and tests drive one writer at a time.
    Returns a function that uninstalls the hooks.
    """

    def before(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if _in_side_call():
            return
        op = model.name
        writes = _writes_of(client, op, params)
        for w in writes:
            if w.offered is not None and item_size(w.offered) > limit:
                raise item_too_large(op)
        context["sessionwatch_writes"] = writes  # shared with a UnitMeter on the same client
        context["sessionwatch_limit_writes"] = [w for w in writes if w.offered is None]

    def after(parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        if _in_side_call() or "Error" in parsed:
            return
        writes: list[_Write] = context.pop("sessionwatch_limit_writes", [])
        grown = [
            w
            for w in writes
            if not w.delete and item_size(_get_full(client, w.table, w.key)) > limit
        ]
        if not grown:
            return
        with _side_call():
            for w in writes:  # a transaction is all or nothing: restore every item it touched
                if w.delete:
                    continue
                if w.before is None:
                    client.delete_item(TableName=w.table, Key=w.key)
                else:
                    client.put_item(TableName=w.table, Item=w.before)
        raise item_too_large(model.name)

    names = []
    for op in ("PutItem", "UpdateItem", "BatchWriteItem", "TransactWriteItems"):
        b, a = f"before-parameter-build.dynamodb.{op}", f"after-call.dynamodb.{op}"
        client.meta.events.register_first(b, before, unique_id=f"sw-limit-b-{op}")
        client.meta.events.register_first(a, after, unique_id=f"sw-limit-a-{op}")
        names += [(b, f"sw-limit-b-{op}"), (a, f"sw-limit-a-{op}")]

    def uninstall() -> None:
        for event, uid in names:
            client.meta.events.unregister(event, unique_id=uid)

    return uninstall


@dataclass(frozen=True)
class CallUnits:
    """What one API call consumed: its operation, read and write units, items and bytes."""

    operation: str
    read_units: float
    write_units: float
    items: int
    item_bytes: int
    failed: bool = False


@dataclass
class UnitMeter:
    """Records the read and write units of each DynamoDB call a client makes.

    Install on a client (``UnitMeter(client)``); ``calls`` lists every metered call, ``totals()``
    sums them, ``measure()`` scopes a block. Units are computed from the full items involved, by
    the rules in this module's docstring (side reads as described there).
    """

    client: Any
    calls: list[CallUnits] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        ev = self.client.meta.events
        for op in (*READ_OPERATIONS, *WRITE_OPERATIONS):
            ev.register(
                f"before-parameter-build.dynamodb.{op}", self._before, unique_id=f"sw-m-b-{op}"
            )
            ev.register(f"after-call.dynamodb.{op}", self._after, unique_id=f"sw-m-a-{op}")

    def close(self) -> None:
        ev = self.client.meta.events
        for op in (*READ_OPERATIONS, *WRITE_OPERATIONS):
            ev.unregister(f"before-parameter-build.dynamodb.{op}", unique_id=f"sw-m-b-{op}")
            ev.unregister(f"after-call.dynamodb.{op}", unique_id=f"sw-m-a-{op}")

    # -- totals --

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def totals(self) -> tuple[float, float]:
        """(read units, write units) over every recorded call."""
        with self._lock:
            return sum(c.read_units for c in self.calls), sum(c.write_units for c in self.calls)

    def by_operation(self) -> dict[str, tuple[int, float, float]]:
        """operation -> (calls, read units, write units)."""
        out: dict[str, tuple[int, float, float]] = {}
        with self._lock:
            for c in self.calls:
                n, r, w = out.get(c.operation, (0, 0.0, 0.0))
                out[c.operation] = (n + 1, r + c.read_units, w + c.write_units)
        return out

    @contextmanager
    def measure(self) -> Iterator[list[CallUnits]]:
        """Collect the calls made inside the block (also kept in ``calls``)."""
        with self._lock:
            start = len(self.calls)
        scoped: list[CallUnits] = []
        try:
            yield scoped
        finally:
            with self._lock:
                scoped.extend(self.calls[start:])

    def _record(self, c: CallUnits) -> None:
        with self._lock:
            self.calls.append(c)

    # -- hooks --

    def _before(
        self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if _in_side_call():
            return
        context["sessionwatch_meter_params"] = dict(params)
        if model.name in WRITE_OPERATIONS:
            context["sessionwatch_meter_writes"] = context.get("sessionwatch_writes") or _writes_of(
                self.client, model.name, params
            )

    def _after(
        self, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any
    ) -> None:
        if _in_side_call():
            return
        params = context.pop("sessionwatch_meter_params", None)
        if params is None:
            return
        op = model.name
        failed = "Error" in parsed
        if op in WRITE_OPERATIONS:
            writes: list[_Write] = context.pop("sessionwatch_meter_writes", [])
            self._record(self._write_call(op, writes, parsed, failed))
        elif not failed:
            self._record(self._read_call(op, params, parsed))
        else:
            self._record(CallUnits(op, 0.0, 0.0, 0, 0, True))

    def _write_call(
        self, op: str, writes: Sequence[_Write], parsed: Mapping[str, Any], failed: bool
    ) -> CallUnits:
        if failed:
            code = parsed.get("Error", {}).get("Code", "")
            if code not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                return CallUnits(op, 0.0, 0.0, 0, 0, True)
        unprocessed = parsed.get("UnprocessedItems") or {}
        units = 0
        total = 0
        for w in writes:
            if unprocessed and any(
                w.key == _key_of(self.client, t, r.get("PutRequest", {}).get("Item", {}))
                or w.key == r.get("DeleteRequest", {}).get("Key")
                for t, rs in unprocessed.items()
                for r in rs
            ):
                continue
            before = item_size(w.before)
            if failed:
                after = item_size(w.offered) if w.offered is not None else 0
            elif w.delete:
                after = 0
            else:
                after = item_size(_get_full(self.client, w.table, w.key))
            total += max(before, after)
            units += update_write_units(before, after, transactional=w.transactional)
        return CallUnits(op, 0.0, float(units), len(writes), total, failed)

    def _read_call(
        self, op: str, params: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> CallUnits:
        consistent = bool(params.get("ConsistentRead"))
        if op == "GetItem":
            item = parsed.get("Item")
            if "ProjectionExpression" in params or "AttributesToGet" in params:
                item = _get_full(self.client, params["TableName"], params["Key"])
            size = item_size(item)
            return CallUnits(
                op, read_units(size, consistent=consistent), 0.0, int(bool(item)), size
            )
        if op == "BatchGetItem":
            unprocessed = parsed.get("UnprocessedKeys") or {}
            units = 0.0
            total = 0
            n = 0
            for table, spec in params["RequestItems"].items():
                skipped = unprocessed.get(table, {}).get("Keys", [])
                projected = "ProjectionExpression" in spec or "AttributesToGet" in spec
                returned = {}
                if not projected:  # the response holds the full items: no side read
                    for item in parsed.get("Responses", {}).get(table, []):
                        k = _key_of(self.client, table, item)
                        returned[json.dumps(k, sort_keys=True, default=str)] = item
                for key in spec["Keys"]:
                    if key in skipped:
                        continue
                    if projected:
                        size = item_size(_get_full(self.client, table, key))
                    else:
                        found = returned.get(json.dumps(dict(key), sort_keys=True, default=str))
                        size = item_size(found)
                    units += read_units(size, consistent=bool(spec.get("ConsistentRead")))
                    total += size
                    n += 1
            return CallUnits(op, units, 0.0, n, total)
        if op == "TransactGetItems":
            sizes = [
                item_size(_get_full(self.client, g["Get"]["TableName"], g["Get"]["Key"]))
                for g in params["TransactItems"]
            ]
            units = sum(read_units(s, transactional=True) for s in sizes)
            return CallUnits(op, units, 0.0, len(sizes), sum(sizes))
        # Query / Scan: the items read, before filters and projections, summed then rounded.
        items = parsed.get("Items", [])
        if any(k in params for k in ("ProjectionExpression", "FilterExpression", "Select")):
            full = {
                k: v
                for k, v in params.items()
                if k not in ("ProjectionExpression", "FilterExpression", "Select")
            }
            names = dict(full.get("ExpressionAttributeNames") or {})
            values = dict(full.get("ExpressionAttributeValues") or {})
            cond = full.get("KeyConditionExpression", "")
            full.pop("ExpressionAttributeNames", None)
            full.pop("ExpressionAttributeValues", None)
            used_names = {k: v for k, v in names.items() if k in cond}
            used_values = {k: v for k, v in values.items() if k in cond}
            if used_names:
                full["ExpressionAttributeNames"] = used_names
            if used_values:
                full["ExpressionAttributeValues"] = used_values
            with _side_call():
                call = self.client.query if op == "Query" else self.client.scan
                items = call(**full).get("Items", [])
        sizes = [item_size(i) for i in items]
        return CallUnits(op, query_units(sizes, consistent=consistent), 0.0, len(sizes), sum(sizes))


def units_by_operation(calls: Iterable[CallUnits]) -> Counter[str]:
    """Call counts per operation (a convenience for printing)."""
    return Counter(c.operation for c in calls)
