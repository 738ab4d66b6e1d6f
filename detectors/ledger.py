"""The DynamoDB edge of the ledger: every call the detectors make to their table.

The layout and the encoding of items live in ``detectors.ledger_items`` (pure); this module is
I/O only, and makes no decisions. Why at-least-once delivery is harmless here: immutable puts
of identical items and ``ADD`` to sets are idempotent and commutative; the only writes with an
effect outside the ledger (counting a lost session under a cause, sending a report) are guarded
by a condition that succeeds once. ``expires_at`` (DynamoDB TTL) is set on every write: TTL
deletion can lag by days, so readers also ignore what is older than the TTL by its own time.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from sessionwatch.contract import CLIENT_UNKNOWN, Cause
from sessionwatch.detectors.core import Verdict
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
from sessionwatch.detectors.ledger_items import (
    ACTIVE_PK,
    CLOSED_PREFIX,
    DEP_INDEX_PREFIX,
    DEPLOYMENT_QUERY_LIMIT,
    LIVE_PREFIX,
    LOST_PREFIX,
    OPEN_PREFIX,
    PENDING_PK,
    STOP_PREFIX,
    TAGS_ATTR,
    Item,
    Key,
    active_key,
    deployment_from_item,
    deployment_index_key,
    deployment_key,
    deployment_loss_key,
    deployment_pk,
    deployment_tags,
    get_n,
    get_s,
    hook_key,
    index_upper,
    item_key,
    key_item,
    live_task_key,
    lost_key,
    lost_prefix,
    n_value,
    pending_from_item,
    pending_key,
    s_value,
    service_pk,
    session_key,
    settings_tags,
    sortable,
    spans_from_items,
    stop_key,
    tags_of,
    task_from_item,
    task_from_tags,
    task_key,
    task_sessions_pk,
    task_tags,
    windows_from_index,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
else:
    DynamoDBClient = Any

__all__ = ["Ledger", "Query", "TaskMerge", "lost_prefix"]  # lost_prefix: lab/ reads the count locks

# On a task item: the stop times its sessions were last decided again for (``mark_revisited``).
REVISITED_ATTR = "revisited"
# On a deployment count lock: when the deployment it names began (``lock_verdict``).
DEP_STARTED_ATTR = "dep_started"

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


@dataclass(frozen=True)
class TaskMerge:
    """A task's facts after merging one observation, and whether its sessions' verdicts owe
    another look: its stop times are known and were not yet revisited (``stop_mark``)."""

    facts: TaskFacts
    revisit_due: bool
    stop_mark: str


class Ledger:
    """Thin typed access to the table; no decisions are made here."""

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

    def record_deployment(self, obs: DeploymentObserved) -> Item:
        """Merge one deployment event into its item; copy the merged facts to the index."""
        return self._merge_deployment(obs.service, obs.deployment_id, deployment_tags(obs))

    def record_settings(self, service: str, deployment_id: str, s: DeploymentSettings) -> Item:
        """Cache the deployment's one ECS read in its item (and its index copy)."""
        return self._merge_deployment(service, deployment_id, settings_tags(s))

    def _merge_deployment(self, service: str, deployment_id: str, tags: Sequence[str]) -> Item:
        """Facts item first (serialised per item by DynamoDB, so the last writer sees every
        tag), then the same union into the index copy, then the active marker.

        The index item is keyed by the start time, known once IN_PROGRESS was seen; until then
        the facts wait in the facts item and the next event of the deployment copies them.
        """
        merged = self._add_tags(
            deployment_key(service, deployment_id), tags, {"svc": service, "dep": deployment_id}
        )
        window = deployment_from_item(merged)
        if window is not None:
            self._add_tags(
                deployment_index_key(service, deployment_id, window.started_at),
                tags_of(merged),
                {"svc": service, "dep": deployment_id},
            )
        if "sent_at" not in merged:
            self._put(
                active_key(service, deployment_id),
                {"svc": s_value(service), "dep": s_value(deployment_id)},
            )
        return merged

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
        """Merge one task observation; keep the service's live-task and stop indexes.

        The answer says whether already-final verdicts of the task's sessions owe another
        look (``classify.revisit_task``): its stop times are known and differ from the ones
        last revisited (``mark_revisited``). So a first-seen stop is due, and stays due if the
        revisit failed (the retried event finds it unmarked), while a re-delivery after a
        successful revisit is not.
        """
        tags = task_tags(obs)
        if not tags:
            return None
        old_item = self._add_tags(task_key(obs.task_id), tags, {}, returns="ALL_OLD")
        old = tags_of(old_item)
        merged = task_from_tags(obs.task_id, [*old, *tags])
        mark = f"{merged.stopping_at}|{merged.stopped_at}"
        due = merged.stop_began is not None and mark != get_s(old_item, REVISITED_ATTR)
        if merged.service is None:
            return TaskMerge(merged, due, mark)
        began = merged.stop_began
        if began is None:
            self._put(live_task_key(merged.service, merged.task_id), {})
        else:
            self._put(
                stop_key(merged.service, merged.task_id, began),
                {"task_id": s_value(merged.task_id)},
            )
            self._delete(live_task_key(merged.service, merged.task_id))
        return TaskMerge(merged, due, mark)

    def mark_revisited(self, task_id: str, stop_mark: str) -> None:
        """The task's sessions were decided again for these stop times (``TaskMerge``)."""
        self._db.update_item(
            TableName=self._table,
            Key=key_item(task_key(task_id)),
            UpdateExpression="SET #r = :m",
            ExpressionAttributeNames={"#r": REVISITED_ATTR},
            ExpressionAttributeValues={":m": s_value(stop_mark)},
        )

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
        for nf in occurrences:
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
        self._write([], [key_item(pending_key(nf)) for nf in occurrences])

    # --- verdicts and reports -------------------------------------------------------------

    def lock_verdict(self, nf: NotFound, verdict: Verdict, now: float) -> bool:
        """Claim the (session, cause) count lock; True only for the call that created it.

        This is what makes SessionsLost count each session once per cause under re-delivery,
        duplicates and overlapping invocations. The lock keeps the *earliest* occurrence with
        that cause (a later-arriving earlier 404 overwrites the details but is not counted),
        so its content, like the count, does not depend on delivery order.

        For ``deployment`` the lock also says which deployment the session is lost to (the
        reports count by it, ``deployment_losses``): the earliest occurrence's, and for the same
        occurrence decided twice (a premature verdict, before a later deployment's start
        arrived) the later-starting deployment's. A lock that changes deployment flags a
        follow-up for both, in case either report went out.
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
        values = {k: s_value(v) for k, v in fields.items() if v}
        tie = None
        if verdict.deployment_id and verdict.deployment_started_at is not None:
            values[DEP_STARTED_ATTR] = n_value(verdict.deployment_started_at)
            tie = (DEP_STARTED_ATTR, values[DEP_STARTED_ATTR])
        old = self._earliest(
            lost_key(nf.fingerprint, verdict.cause),
            values,
            nf.at,
            first_seen={"decided_at": n_value(now)},
            tie=tie,
        )
        counted = old is not None and "at" not in old
        if old is not None and verdict.deployment_id and verdict.service:
            moved_from = get_s(old, "deployment_id")
            if counted or (moved_from and moved_from != verdict.deployment_id):
                self.flag_followup(verdict.service, verdict.deployment_id, now)
            if moved_from and moved_from != verdict.deployment_id:
                self.flag_followup(verdict.service, moved_from, now)
        return counted

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

    def flag_followup(self, service: str, deployment_id: str, now: float) -> None:
        """A fact that changes a sent report (a loss counted after it, a rollback that began
        after it): mark a follow-up as due and put the deployment back on the reporter's active
        list (only if a report was sent)."""
        if self._conditional(
            deployment_key(service, deployment_id),
            "SET followup_due = if_not_exists(followup_due, :t)",
            "attribute_exists(sent_at)",
            {":t": n_value(now)},
        ):
            self._put(
                active_key(service, deployment_id),
                {"svc": s_value(service), "dep": s_value(deployment_id)},
            )

    def claim_report(self, service: str, deployment_id: str, now: float, stale_s: float) -> bool:
        """Claim the report's publish: True once, or again when a claim older than
        ``stale_s`` never got its "sent" (the reporter died between claim and publish)."""
        return self._conditional(
            deployment_key(service, deployment_id),
            "SET claim_at = :now",
            "attribute_exists(pk) AND attribute_not_exists(sent_at) AND "
            "(attribute_not_exists(claim_at) OR claim_at < :stale)",
            {":now": n_value(now), ":stale": n_value(now - stale_s)},
        )

    def mark_sent(self, service: str, deployment_id: str, now: float, end: str) -> None:
        """The report went out saying ``end`` (``end_mark``): remember both and take the
        deployment off the active list."""
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
        """Undo a claim whose publish failed, so the next run retries it at once."""
        self._db.update_item(
            TableName=self._table,
            Key=key_item(deployment_key(service, deployment_id)),
            UpdateExpression="REMOVE claim_at",
        )

    def claim_followup(
        self, service: str, deployment_id: str, now: float, every_s: float, end: str
    ) -> bool:
        """Claim a follow-up report (it will say ``end``): a fact came after the report and the
        last follow-up is at least ``every_s`` old. The marker is cleared by the claim, so one
        follow-up covers all late facts up to it."""
        return self._conditional(
            deployment_key(service, deployment_id),
            "SET followup_at = :now, sent_end = :end REMOVE followup_due",
            "attribute_exists(followup_due) AND "
            "(attribute_not_exists(followup_at) OR followup_at < :since)",
            {":now": n_value(now), ":since": n_value(now - every_s), ":end": s_value(end)},
        )

    def drop_active(self, service: str, deployment_id: str) -> None:
        self._delete(active_key(service, deployment_id))

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

    def read_wave(
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

    def get_many(self, keys: Iterable[Key]) -> dict[Key, Item]:
        return self.read_wave(keys)[0]

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

    def query(self, pk: str, sk_prefix: str | None = None) -> list[Item]:
        """All items of a partition (optionally an sk prefix), following pagination."""
        self.read_round_trips += 1
        return self._query(Query(pk, prefix=sk_prefix))

    @staticmethod
    def deployments_query(service: str, upto: float, limit: int = DEPLOYMENT_QUERY_LIMIT) -> Query:
        """The service's deployment index up to ``upto``, newest first (a small Limit)."""
        return Query(service_pk(service), DEP_INDEX_PREFIX, index_upper(upto), True, limit)

    @staticmethod
    def deployments_between_query(service: str, lo: float, hi: float) -> Query:
        return Query(service_pk(service), DEP_INDEX_PREFIX + sortable(lo), index_upper(hi))

    def pending(self) -> list[NotFound]:
        return [nf for item in self.query(PENDING_PK) if (nf := pending_from_item(item))]

    def active(self) -> list[tuple[str, str]]:
        """Deployments not yet reported (or with a follow-up due): small items, one each."""
        out = []
        for item in self.query(ACTIVE_PK):
            svc, dep = get_s(item, "svc"), get_s(item, "dep")
            if svc and dep:
                out.append((svc, dep))
        return out

    def deployment_items(self, ids: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        keys = {deployment_key(s, d): (s, d) for s, d in ids}
        return {keys[k]: v for k, v in self.get_many(keys).items()}

    def tasks(self, task_ids: Iterable[str]) -> dict[str, TaskFacts]:
        out = {}
        for item in self.get_many(task_key(t) for t in task_ids).values():
            facts = task_from_item(item)
            if facts is not None:
                out[facts.task_id] = facts
        return out

    def live_tasks(self, service: str) -> list[str]:
        items = self.query(service_pk(service), LIVE_PREFIX)
        return [i["sk"]["S"].removeprefix(LIVE_PREFIX) for i in items]

    def drop_live(self, service: str, task_id: str) -> None:
        self._delete(live_task_key(service, task_id))

    def stops_between(self, service: str, lo: float, hi: float) -> list[str]:
        """Tasks of the service that stopped (or began draining) in [lo, hi]."""
        self.read_round_trips += 1
        items = self._query(
            Query(service_pk(service), STOP_PREFIX + sortable(lo), STOP_PREFIX + sortable(hi) + "~")
        )
        return sorted({get_s(i, "task_id") or "" for i in items} - {""})

    def task_sessions(self, task_id: str) -> list[SessionSpan]:
        return spans_from_items(self.query(task_sessions_pk(task_id)))

    def task_lost_occurrences(self, task_id: str) -> list[NotFound]:
        """The counted 404s of the sessions created on a task: each (session, cause) lock's
        earliest occurrence. One Query of the task's partition (its ``OPEN#``/``CLOSED#``
        items), then ONE read wave of the sessions' locks (a BatchGetItem per 100 keys, one
        key per session and cause): bounded by the task's sessions, not by the cluster."""
        fps = [span.fingerprint for span in self.task_sessions(task_id)]
        keys = [lost_key(f, c) for f in fps for c in Cause if c is not Cause.PENDING]
        found, _ = self.read_wave(keys)
        out = []
        for (pk, _sk), item in sorted(found.items()):
            serving, at = get_s(item, "serving_task"), get_n(item, "at")
            if serving and at is not None:
                out.append(NotFound(pk.removeprefix("SESS#"), serving, at, get_s(item, "service")))
        return out

    def session_locks(self, fp: str) -> list[tuple[Cause, str | None, float | None]]:
        """The session's count locks: cause, serving task and time of the earliest 404."""
        pk, prefix = lost_prefix(fp)
        out = []
        # Made after deciding (to log a revision), not a read the decision waits for: it is
        # not counted in ``read_round_trips``.
        for item in self._query(Query(pk, prefix=prefix)):
            with contextlib.suppress(ValueError):
                cause = Cause(item["sk"]["S"].removeprefix(LOST_PREFIX))
                out.append((cause, get_s(item, "serving_task"), get_n(item, "at")))
        return out

    def deployment_losses(self, service: str, deployment_id: str) -> list[float]:
        """The earliest 404 time of each session the deployment lost, sorted.

        A session whose count lock names another deployment is that one's (``lock_verdict``:
        a premature attribution later corrected), so a report counts each session once.
        One Query of the deployment's losses, then one read wave of their locks.
        """
        return sorted(self.deployment_lost_sessions(service, deployment_id).values())

    def deployment_lost_sessions(self, service: str, deployment_id: str) -> dict[str, float]:
        """Fingerprint -> earliest 404 time of each session ``deployment_losses`` counts."""
        items = self.query(deployment_pk(service, deployment_id), LOST_PREFIX)
        times = {str(i["sk"]["S"]).removeprefix(LOST_PREFIX): get_n(i, "at") for i in items}
        locks = self.get_many(lost_key(fp, Cause.DEPLOYMENT) for fp in times)
        return {
            fp: t
            for fp, t in times.items()
            if t is not None
            and get_s(locks.get(lost_key(fp, Cause.DEPLOYMENT), {}), "deployment_id")
            in (None, deployment_id)
        }

    def session_clients(self, fingerprints: Iterable[str]) -> dict[str, int]:
        """How many of these sessions each client held (``clientInfo.name`` of its
        ``session_created``; ``unknown`` where none was logged): for a deployment's losses, the
        clients a sessionless server would have spared. One read wave of the session records."""
        lost = list(fingerprints)
        created = self.get_many(session_key(fp) for fp in lost)
        names = Counter(
            get_s(created.get(session_key(fp), {}), "client_name") or CLIENT_UNKNOWN for fp in lost
        )
        return dict(sorted(names.items()))

    def previous_deployment(self, service: str, deployment_id: str, at: float) -> str | None:
        """The service's newest deployment that began before ``deployment_id`` (at ``at``)."""
        self.read_round_trips += 1
        windows = windows_from_index(self._query(self.deployments_query(service, at, 3)))
        earlier = [w for w in windows if w.deployment_id != deployment_id and w.started_at <= at]
        latest = max(earlier, key=lambda w: (w.started_at, w.deployment_id), default=None)
        return None if latest is None else latest.deployment_id

    def windows_of(self, service: str, lo: float, hi: float) -> list[DeploymentWindow]:
        self.read_round_trips += 1
        return windows_from_index(self._query(self.deployments_between_query(service, lo, hi)))
