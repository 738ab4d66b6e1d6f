"""The DynamoDB ledger: every call the detectors make to their table (``LedgerStore``).

The item layout lives in ``dynamodb_items`` and the fact merges in ``codec`` (both pure); this
module is I/O and decides nothing. Why at-least-once delivery is harmless here: immutable puts
of identical items and ``ADD`` to sets are idempotent and commutative; the only writes with an
effect outside the ledger (a count lock, a report claim) are conditional and succeed once.
``expires_at`` (DynamoDB TTL) is set on every write: TTL deletion can lag by days, so readers
also ignore what is older than the TTL by its own time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from sessionwatch.contract import Cause
from sessionwatch.detectors.facts import (
    DeploymentObserved,
    DeploymentSettings,
    DeploymentWindow,
    HookObserved,
    NotFound,
    SessionClosed,
    SessionCreated,
    SessionSpan,
    TaskFacts,
)
from sessionwatch.detectors.ledger.codec import (
    deployment_tags,
    guard_fields,
    settings_tags,
    sortable,
    task_from_tags,
    task_tags,
    windows_from_entries,
)
from sessionwatch.detectors.ledger.dynamodb_items import (
    ACTIVE_PK,
    CLOSED_PREFIX,
    DEP_INDEX_PREFIX,
    DEP_STARTED_ATTR,
    GUARD_PREFIX,
    LIVE_PREFIX,
    LOST_PREFIX,
    OPEN_PREFIX,
    PENDING_PK,
    RETRACTED_ATTR,
    REVISITED_ATTR,
    STOP_PREFIX,
    TAGS_ATTR,
    Item,
    Key,
    active_key,
    closed_from_item,
    closed_key,
    deployment_index_key,
    deployment_key,
    deployment_loss_key,
    deployment_pk,
    deployment_record,
    get_n,
    get_s,
    guard_attr,
    guard_from_item,
    guard_key,
    hook_key,
    index_entry,
    index_upper,
    item_key,
    key_item,
    live_task_key,
    lock_from_item,
    lock_values,
    lost_key,
    n_value,
    origin_from_item,
    pending_from_item,
    pending_key,
    s_value,
    service_pk,
    session_key,
    session_pk,
    spans_from_items,
    stop_key,
    tags_of,
    task_from_item,
    task_key,
    task_sessions_pk,
)
from sessionwatch.detectors.ledger.records import (
    DeploymentLoss,
    DeploymentRecord,
    Guard,
    GuardRecord,
    GuardValue,
    IndexRequest,
    LockClaim,
    LossLock,
    ReadWave,
    TaskMerge,
    WaveResult,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

__all__ = ["DynamoDBLedger"]

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
_RETRIES = 8
_Returns = Literal["ALL_NEW", "ALL_OLD"]


@dataclass(frozen=True)
class _Query:
    """One Query of a partition: sort keys in [lo, hi] (or starting with ``prefix``; or the
    whole partition), newest first when ``descending``, at most ``limit`` items."""

    pk: str
    lo: str | None = None
    hi: str | None = None
    descending: bool = False
    limit: int | None = None
    prefix: str | None = None


def _index_query(req: IndexRequest) -> _Query:
    lo = DEP_INDEX_PREFIX if req.since is None else DEP_INDEX_PREFIX + sortable(req.since)
    return _Query(service_pk(req.service), lo, index_upper(req.upto), req.since is None, req.limit)


class DynamoDBLedger:
    """``LedgerStore`` over one DynamoDB table; no decisions are made here."""

    def __init__(self, client: DynamoDBClient, table_name: str, ttl_days: int) -> None:
        self._db = client
        self._table = table_name
        self._ttl_s = ttl_days * 86400
        self.read_round_trips = 0

    def _expires(self) -> dict[str, str]:
        # Wall-clock, not the handlers' clock: DynamoDB's TTL compares against real time.
        return {"N": str(int(time.time() + self._ttl_s))}

    def _add_tags(
        self, key: Key, tags: Sequence[str], extra: Mapping[str, str], returns: _Returns = "ALL_NEW"
    ) -> Item:
        """ADD tags to the item's set (idempotent, order-free); the merged item comes back
        (``returns="ALL_OLD"``: the item as it was before, to tell what is new)."""
        names = {"#f": TAGS_ATTR}
        values: Item = {":f": {"SS": list(tags)}, ":e": self._expires()}
        sets = ["expires_at = :e"]
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
        self._db.put_item(
            TableName=self._table,
            Item=key_item(key) | dict(body) | {"expires_at": self._expires()},
        )

    def _delete(self, key: Key) -> None:
        self._db.delete_item(TableName=self._table, Key=key_item(key))

    # --- ECS facts ----------------------------------------------------------------------------

    def record_deployment(self, obs: DeploymentObserved) -> DeploymentRecord:
        """Merge one deployment event into its item; copy the merged facts to the index."""
        return self._merge_deployment(obs.service, obs.deployment_id, deployment_tags(obs))

    def record_settings(
        self, service: str, deployment_id: str, settings: DeploymentSettings
    ) -> DeploymentRecord:
        """Cache the deployment's one ECS read in its item (and its index copy)."""
        return self._merge_deployment(service, deployment_id, settings_tags(settings))

    def _merge_deployment(
        self, service: str, deployment_id: str, tags: Sequence[str]
    ) -> DeploymentRecord:
        """Facts item first (serialised per item by DynamoDB, so the last writer sees every
        tag), then the same union into the index copy, then the active marker.

        The index item is keyed by the start time, known once IN_PROGRESS was seen; until then
        the facts wait in the facts item and the next event of the deployment copies them.
        """
        merged = self._add_tags(
            deployment_key(service, deployment_id), tags, {"svc": service, "dep": deployment_id}
        )
        record = deployment_record(service, deployment_id, merged)
        if record.window is not None:
            self._add_tags(
                deployment_index_key(service, deployment_id, record.window.started_at),
                tags_of(merged),
                {"svc": service, "dep": deployment_id},
            )
        if not record.report.sent:
            self._put_active(service, deployment_id)
        return record

    def _put_active(self, service: str, deployment_id: str) -> None:
        self._put(
            active_key(service, deployment_id),
            {"svc": s_value(service), "dep": s_value(deployment_id)},
        )

    def record_hook(self, hook: HookObserved) -> None:
        """A lifecycle stage of the service's deployment in progress, in the service's index."""
        body: Item = {
            "stage": s_value(hook.stage),
            "status": s_value(hook.status),
            "at": n_value(hook.at),
        }
        if hook.service_deployment_arn:
            body["sd_arn"] = s_value(hook.service_deployment_arn[:512])
        self._put(hook_key(hook), body)

    def record_task(self, obs: TaskFacts) -> TaskMerge | None:
        """Merge one task observation; keep the service's live-task and stop indexes."""
        tags = task_tags(obs)
        if not tags:
            return None
        old_item = self._add_tags(task_key(obs.task_id), tags, {}, returns="ALL_OLD")
        merged = task_from_tags(obs.task_id, [*tags_of(old_item), *tags])
        result = TaskMerge(merged, get_s(old_item, REVISITED_ATTR))
        if merged.service is None:
            return result
        began = merged.stop_began
        if began is None:
            self._put(live_task_key(merged.service, merged.task_id), {})
        else:
            self._put(
                stop_key(merged.service, merged.task_id, began),
                {"task_id": s_value(merged.task_id)},
            )
            self._delete(live_task_key(merged.service, merged.task_id))
        return result

    def mark_revisited(self, task_id: str, stop_mark: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=key_item(task_key(task_id)),
            UpdateExpression="SET #r = :m",
            ExpressionAttributeNames={"#r": REVISITED_ATTR},
            ExpressionAttributeValues={":m": s_value(stop_mark)},
        )

    def drop_live(self, service: str, task_id: str) -> None:
        self._delete(live_task_key(service, task_id))

    # --- session facts --------------------------------------------------------------------

    def record_sessions(
        self, created: Iterable[SessionCreated], closed: Iterable[SessionClosed]
    ) -> None:
        """Immutable puts, batched 25 a call (identical re-puts change nothing)."""
        items: dict[Key, Item] = {}
        for c in created:
            items[session_key(c.fingerprint)] = {"task_id": s_value(c.task_id), "at": n_value(c.at)}
            if c.client_name:  # who held it: what going stateless would affect
                items[session_key(c.fingerprint)]["client_name"] = s_value(c.client_name)
            open_key = (task_sessions_pk(c.task_id), OPEN_PREFIX + c.fingerprint)
            items[open_key] = {"at": n_value(c.at)}
        for x in closed:
            closed_key = (task_sessions_pk(x.task_id), CLOSED_PREFIX + x.fingerprint)
            items[closed_key] = {"at": n_value(x.at), "reason": s_value(x.reason or "")}
        expires = {"expires_at": self._expires()}
        self._write([key_item(k) | v | expires for k, v in items.items()], [])

    def store_pending(self, occurrences: Iterable[NotFound]) -> None:
        """Park not-founds the facts do not settle yet; the reporter decides them again."""
        puts = []
        # One put per key: BatchWriteItem refuses a request that names a key twice.
        for nf in {nf.key: nf for nf in occurrences}.values():
            body = {
                "fp": s_value(nf.fingerprint),
                "task_id": s_value(nf.task_id),
                "at": n_value(nf.at),
            }
            if nf.log_service:
                body["log_service"] = s_value(nf.log_service)
            puts.append(key_item(pending_key(nf)) | body | {"expires_at": self._expires()})
        self._write(puts, [])

    def drop_pending(self, occurrences: Iterable[NotFound]) -> None:
        keys = dict.fromkeys(pending_key(nf) for nf in occurrences)
        self._write([], [key_item(k) for k in keys])

    def pending(self) -> list[NotFound]:
        return [nf for item in self._query_all(PENDING_PK) if (nf := pending_from_item(item))]

    # --- losses -----------------------------------------------------------------------------

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
        names = {"#at": "at"}
        vals: Item = {":at": n_value(at), ":e": self._expires()}
        sets = ["#at = :at", "expires_at = :e"]
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
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return dict(resp.get("Attributes") or {})

    def retract_lock(self, fingerprint: str, cause: Cause, now: float) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key_item(lost_key(fingerprint, cause)),
                UpdateExpression="SET #r = :r",
                ConditionExpression="attribute_exists(#at) AND attribute_not_exists(#r)",
                ExpressionAttributeNames={"#r": RETRACTED_ATTR, "#at": "at"},
                ExpressionAttributeValues={":r": n_value(now)},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def session_locks(self, fingerprint: str) -> list[LossLock]:
        """The session's count locks. Made after deciding (to log a revision), not a read the
        decision waits for: it is not counted in ``read_round_trips``."""
        items = self._query(_Query(session_pk(fingerprint), prefix=LOST_PREFIX))
        return [lock for item in items if (lock := lock_from_item(item))]

    def task_locks(self, task_id: str) -> list[LossLock]:
        """One Query of the task's partition (its ``OPEN#``/``CLOSED#`` items), then ONE read
        wave of the sessions' locks (a BatchGetItem per 100 keys): bounded by the task's
        sessions, not by the cluster."""
        fps = [span.fingerprint for span in self.task_sessions(task_id)]
        keys = [lost_key(f, c) for f in fps for c in Cause if c is not Cause.PENDING]
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

    # --- deployments and their reports ------------------------------------------------------

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

    def _conditional(self, key: Key, update: str, condition: str, values: Item) -> bool:
        try:
            self._db.update_item(
                TableName=self._table,
                Key=key_item(key),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

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
            UpdateExpression="SET sent_at = :now, sent_end = :end, expires_at = :e REMOVE claim_at",
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

    # --- the deployment guards' records ---------------------------------------------------

    def claim_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> bool:
        """A conditional put (``attribute_not_exists``): one caller creates the record."""
        body = dict(guard_attr(k, v) for k, v in guard_fields(fields).items() if v is not None)
        item = key_item(guard_key(service, deployment_id, guard)) | body
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item | {"expires_at": self._expires()},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_guard(self, service: str, deployment_id: str, guard: Guard) -> None:
        self._delete(guard_key(service, deployment_id, guard))

    def update_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> None:
        names: dict[str, str] = {}
        values: Item = {":e": self._expires()}
        sets, removes = ["expires_at = :e"], []
        for i, (name, value) in enumerate(guard_fields(fields).items()):
            if value is None:
                names[f"#a{i}"] = "g_" + name
                removes.append(f"#a{i}")
                continue
            names[f"#a{i}"], values[f":a{i}"] = guard_attr(name, value)
            sets.append(f"#a{i} = :a{i}")
        update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        extra: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        self._db.update_item(
            TableName=self._table,
            Key=key_item(guard_key(service, deployment_id, guard)),
            UpdateExpression=update,
            ExpressionAttributeValues=values,
            **extra,
        )

    def guards_of(self, service: str, deployment_id: str) -> dict[Guard, GuardRecord]:
        items = self._query_all(deployment_pk(service, deployment_id), GUARD_PREFIX)
        records = (guard_from_item(service, deployment_id, i) for i in items)
        return {r.guard: r for r in records if r is not None}

    def _write(self, puts: Sequence[Item], deletes: Sequence[Item]) -> None:
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

    # --- reads ------------------------------------------------------------------------------

    def read(self, wave: ReadWave) -> WaveResult:
        keys = [*map(session_key, wave.sessions), *map(task_key, wave.tasks)]
        keys += [closed_key(t, fp) for t, fp in wave.closes]
        queries = {_index_query(r): r for r in dict.fromkeys(wave.indexes)}
        found, results = self._wave(keys, queries)
        origins = {}
        for fp in wave.sessions:
            origin = origin_from_item(found.get(session_key(fp)))
            if origin is not None:
                origins[fp] = origin
        tasks = {}
        for t in wave.tasks:
            facts = task_from_item(found.get(task_key(t)))
            if facts is not None:
                tasks[t] = facts
        indexes = {
            queries[q]: [e for item in items if (e := index_entry(item))]
            for q, items in results.items()
        }
        closes = {}
        for t, fp in wave.closes:
            close = closed_from_item(found.get(closed_key(t, fp)) or {"sk": {"S": ""}})
            if close is not None:
                closes[fp] = close
        return WaveResult(origins, tasks, indexes, closes)

    def _wave(
        self, keys: Iterable[Key], queries: Iterable[_Query] = ()
    ) -> tuple[dict[Key, Item], dict[_Query, list[Item]]]:
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

    def _query(self, q: _Query) -> list[Item]:
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
        """All items of a partition (optionally an sk prefix), following pagination."""
        self.read_round_trips += 1
        return self._query(_Query(pk, prefix=sk_prefix))

    def tasks(self, task_ids: Iterable[str]) -> dict[str, TaskFacts]:
        found, _ = self._wave(task_key(t) for t in task_ids)
        out = {}
        for item in found.values():
            facts = task_from_item(item)
            if facts is not None:
                out[facts.task_id] = facts
        return out

    def live_tasks(self, service: str) -> list[str]:
        items = self._query_all(service_pk(service), LIVE_PREFIX)
        return [i["sk"]["S"].removeprefix(LIVE_PREFIX) for i in items]

    def stops_between(self, service: str, lo: float, hi: float) -> list[str]:
        """Tasks of the service that stopped (or began draining) in [lo, hi]."""
        self.read_round_trips += 1
        items = self._query(
            _Query(
                service_pk(service), STOP_PREFIX + sortable(lo), STOP_PREFIX + sortable(hi) + "~"
            )
        )
        return sorted({get_s(i, "task_id") or "" for i in items} - {""})

    def task_sessions(self, task_id: str) -> list[SessionSpan]:
        return spans_from_items(self._query_all(task_sessions_pk(task_id)))

    def deployments_before(self, service: str, at: float, limit: int) -> list[DeploymentWindow]:
        self.read_round_trips += 1
        items = self._query(_index_query(IndexRequest(service, at, limit)))
        return windows_from_entries(e for item in items if (e := index_entry(item)))

    def windows_of(self, service: str, lo: float, hi: float) -> list[DeploymentWindow]:
        self.read_round_trips += 1
        items = self._query(_index_query(IndexRequest(service, hi, None, since=lo)))
        return windows_from_entries(e for item in items if (e := index_entry(item)))
