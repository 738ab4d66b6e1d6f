"""The DynamoDB edge of the ledger: every call the detectors make to their table.

The layout and the encoding of items live in ``detectors.ledger_items`` (pure); this module is
I/O only, and makes no decisions. Why at-least-once delivery is harmless here: immutable puts
of identical items and ``ADD`` to sets are idempotent and commutative; the only writes with an
effect outside the ledger (counting a lost session under a cause, sending a report) are guarded
by a condition that succeeds once. ``expires_at`` (DynamoDB TTL) is set on every write: TTL
deletion can lag by days, so readers also ignore what is older than the TTL by its own time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from sessionwatch.detectors.core import DeploymentWindow, NotFound, TaskFacts, Verdict
from sessionwatch.detectors.facts import DeploymentObserved, SessionClosed, SessionCreated
from sessionwatch.detectors.ledger_items import (
    CLOSED_PREFIX,
    LOST_PREFIX,
    OPEN_PREFIX,
    PENDING_PK,
    TASK_ATTR_PREFIX,
    TASK_SHARD_KEYS,
    WINDOWS_KEY,
    Item,
    Key,
    SessionSpan,
    deployment_loss_key,
    deployment_pk,
    get_n,
    get_s,
    key_item,
    lost_key,
    lost_prefix,
    n_value,
    report_key,
    s_value,
    session_key,
    spans_from_items,
    stale_tasks,
    stale_window_entries,
    task_sessions_pk,
    task_shard_key,
    task_tags,
    tasks_from_items,
    window_entry,
    windows_from_item,
)

__all__ = ["Ledger", "lost_prefix"]  # lost_prefix: lab/ reads the count locks through it

BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
_REMOVE_PER_UPDATE = 50  # keeps each UpdateExpression well under DynamoDB's 4 KB
_RETRIES = 8


class Ledger:
    """Thin typed access to the table; no decisions are made here."""

    def __init__(self, client: Any, table_name: str, ttl_days: int) -> None:
        self._db = client
        self._table = table_name
        self._ttl_s = ttl_days * 86400
        self.read_round_trips = 0

    def _expires(self) -> dict[str, str]:
        # Wall-clock, not the handlers' clock: DynamoDB's TTL compares against real time.
        return {"N": str(int(time.time() + self._ttl_s))}

    # --- writes -----------------------------------------------------------------------------

    def record_deployment(self, obs: DeploymentObserved) -> None:
        """ADD to a string set: idempotent and order-free; earliest time wins when read."""
        attr, value = window_entry(obs)
        self._db.update_item(
            TableName=self._table,
            Key=key_item(WINDOWS_KEY),
            UpdateExpression=f"ADD {attr} :v SET expires_at = :e",
            ExpressionAttributeValues={":v": {"SS": [value]}, ":e": self._expires()},
        )

    def record_task(self, obs: TaskFacts) -> None:
        """ADD this observation's tagged facts to the task's set in its summary shard."""
        tags = task_tags(obs)
        if not tags:
            return
        self._db.update_item(
            TableName=self._table,
            Key=key_item(task_shard_key(obs.task_id)),
            UpdateExpression="ADD #t :f SET expires_at = :e",
            ExpressionAttributeNames={"#t": TASK_ATTR_PREFIX + obs.task_id},
            ExpressionAttributeValues={":f": {"SS": tags}, ":e": self._expires()},
        )

    def tasks(self) -> tuple[dict[Key, Item], dict[str, TaskFacts]]:
        """All summary shards (one BatchGetItem) and the task facts they hold."""
        items = self.get_many(TASK_SHARD_KEYS)
        return items, tasks_from_items(items)

    def prune_tasks(self, shards: Mapping[Key, Item], before: float) -> int:
        """Remove tasks whose latest known time is before ``before`` from the summary shards.

        A task stopped that long ago created its sessions earlier still, so their records have
        expired and nothing will ask for it again; without pruning the shards would only grow.
        A task still running past the TTL goes too (ECS sends no event while it runs): its stop
        event brings its facts back. A task seen with no time at all is kept.
        """
        removed = 0
        for key, item in shards.items():
            stale = stale_tasks(item, before)
            for i in range(0, len(stale), _REMOVE_PER_UPDATE):
                names = {f"#a{j}": n for j, n in enumerate(stale[i : i + _REMOVE_PER_UPDATE])}
                self._db.update_item(
                    TableName=self._table,
                    Key=key_item(key),
                    UpdateExpression="REMOVE " + ", ".join(names),
                    ExpressionAttributeNames=names,
                )
            removed += len(stale)
        return removed

    def record_sessions(
        self, created: Iterable[SessionCreated], closed: Iterable[SessionClosed]
    ) -> None:
        """Immutable puts, batched 25 a call (identical re-puts change nothing)."""
        items: dict[Key, Item] = {}
        for c in created:
            items[session_key(c.fingerprint)] = {"task_id": s_value(c.task_id), "at": n_value(c.at)}
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
        for nf in occurrences:
            body = {
                "fp": s_value(nf.fingerprint),
                "task_id": s_value(nf.task_id),
                "at": n_value(nf.at),
            }
            if nf.log_service:
                body["log_service"] = s_value(nf.log_service)
            puts.append(key_item((PENDING_PK, nf.key)) | body | {"expires_at": self._expires()})
        self._write(puts, [])

    def drop_pending(self, occurrences: Iterable[NotFound]) -> None:
        self._write([], [key_item((PENDING_PK, nf.key)) for nf in occurrences])

    def lock_verdict(self, nf: NotFound, verdict: Verdict, now: float) -> bool:
        """Claim the (session, cause) count lock; True only for the call that created it.

        This is what makes SessionsLost count each session once per cause under re-delivery,
        duplicates and overlapping invocations. The lock keeps the *earliest* occurrence with
        that cause (a later-arriving earlier 404 overwrites the details but is not counted),
        so its content, like the count, does not depend on delivery order.
        """
        if verdict.deployment_id and verdict.service:
            # Before the lock: a crash in between leaves an idempotent write to redo, never a
            # counted loss missing from its deployment's report.
            self._earliest(
                deployment_loss_key(verdict.service, verdict.deployment_id, nf.fingerprint),
                {},
                nf.at,
            )
        fields = {
            "cause": verdict.cause.value,
            "serving_task": nf.task_id,
            "basis": verdict.basis,
            "service": verdict.service,
            "origin_task": verdict.origin_task,
            "deployment_id": verdict.deployment_id,
        }
        old = self._earliest(
            lost_key(nf.fingerprint, verdict.cause),
            {k: s_value(v) for k, v in fields.items() if v},
            nf.at,
            first_seen={"decided_at": n_value(now)},
        )
        return old is not None and "at" not in old

    def _earliest(
        self,
        key: Key,
        values: Mapping[str, Any],
        at: float,
        first_seen: Mapping[str, Any] | None = None,
    ) -> Item | None:
        """Write ``values`` and time ``at`` unless the item holds an earlier time already.

        Returns the item's previous attributes ({} for a new item), None when an earlier (or
        the same) time was there and nothing was written: earliest wins, whatever the order.
        ``first_seen`` attributes are only set when absent.
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
        try:
            resp = self._db.update_item(
                TableName=self._table,
                Key=key_item(key),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_not_exists(#at) OR #at > :at",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=vals,
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return dict(resp.get("Attributes") or {})

    def claim_report(self, service: str, deployment_id: str, now: float) -> bool:
        """Conditional put: True once per deployment, even with overlapping reporter runs."""
        try:
            self._db.put_item(
                TableName=self._table,
                Item=key_item(report_key(service, deployment_id))
                | {"sent_at": n_value(now), "expires_at": self._expires()},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release_report(self, service: str, deployment_id: str) -> None:
        """Undo a claim whose publish failed, so the next run retries it."""
        self._db.delete_item(
            TableName=self._table, Key=key_item(report_key(service, deployment_id))
        )

    def prune_windows(self, before: float) -> int:
        """Drop the deployment windows that ended (or, if open, began) before ``before``.

        The item is rewritten on every deployment event, so TTL never removes it; without
        pruning it would grow forever and old deployments would outlive their REPORT markers.
        """
        item = self.get_many([WINDOWS_KEY]).get(WINDOWS_KEY)
        stale = stale_window_entries(item, before)
        if stale:
            self._db.update_item(
                TableName=self._table,
                Key=key_item(WINDOWS_KEY),
                UpdateExpression="DELETE " + ", ".join(f"{a} :{a}" for a in stale),
                ExpressionAttributeValues={f":{a}": {"SS": v} for a, v in stale.items()},
            )
        return sum(len(v) for v in stale.values())

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

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Item]:
        """All ``keys`` in one read round trip: their 100-key BatchGetItem chunks concurrently.

        A round trip is one wave of concurrent BatchGetItem calls, as many as the client's
        connection pool allows (``max_pool_connections``; the handlers use 50, so 5,000 keys);
        more keys take further waves. Retries of UnprocessedKeys (throttling) stay inside their
        chunk's call. ``read_round_trips`` counts the waves, for tests and the benchmark.
        """
        wanted = list(dict.fromkeys(keys))
        chunks = [wanted[i : i + BATCH_GET_MAX] for i in range(0, len(wanted), BATCH_GET_MAX)]
        if not chunks:
            return {}
        width = max(1, int(getattr(self._db.meta.config, "max_pool_connections", 10) or 10))
        self.read_round_trips += -(-len(chunks) // width)
        if len(chunks) == 1:
            parts = [self._get_chunk(chunks[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(width, len(chunks))) as pool:
                parts = list(pool.map(self._get_chunk, chunks))
        found: dict[Key, Item] = {}
        for part in parts:
            found |= part
        return found

    def _get_chunk(self, keys: Sequence[Key]) -> dict[Key, Item]:
        request: Any = {self._table: {"Keys": [key_item(k) for k in keys]}}
        found: dict[Key, Item] = {}
        for attempt in range(_RETRIES):
            resp = self._db.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(self._table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            request = resp.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(min(0.05 * 2**attempt, 1.0))
        raise RuntimeError("DynamoDB left reads unprocessed after retries")

    def query(self, pk: str, sk_prefix: str | None = None) -> list[Item]:
        """All items of a partition (optionally an sk prefix), following pagination."""
        expr = "pk = :pk" + (" AND begins_with(sk, :p)" if sk_prefix else "")
        values: Item = {":pk": s_value(pk)}
        if sk_prefix:
            values[":p"] = s_value(sk_prefix)
        items: list[Item] = []
        kwargs: Item = {}
        while True:
            resp = self._db.query(
                TableName=self._table,
                KeyConditionExpression=expr,
                ExpressionAttributeValues=values,
                **kwargs,
            )
            items += resp.get("Items", [])
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs = {"ExclusiveStartKey": resp["LastEvaluatedKey"]}

    def pending(self) -> list[NotFound]:
        out = []
        for item in self.query(PENDING_PK):
            fp, task, at = get_s(item, "fp"), get_s(item, "task_id"), get_n(item, "at")
            if fp and task and at is not None:
                out.append(NotFound(fp, task, at, get_s(item, "log_service")))
        return out

    def windows(self) -> list[DeploymentWindow]:
        return windows_from_item(self.get_many([WINDOWS_KEY]).get(WINDOWS_KEY))

    def task_sessions(self, task_id: str) -> list[SessionSpan]:
        return spans_from_items(self.query(task_sessions_pk(task_id)))

    def deployment_losses(self, service: str, deployment_id: str) -> list[float]:
        """The earliest 404 time of each session the deployment lost, sorted."""
        items = self.query(deployment_pk(service, deployment_id), LOST_PREFIX)
        return sorted(t for t in (get_n(i, "at") for i in items) if t is not None)
