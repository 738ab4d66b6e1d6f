"""The ledger: one DynamoDB table (pk/sk, TTL ``expires_at``) holding every fact idempotently.

Item layout (single table, no GSIs):

| pk                     | sk            | what                                               |
|------------------------|---------------|----------------------------------------------------|
| ``SESS#{fp}``          | ``CREATED``   | session created: task, at (immutable put)          |
| ``SESS#{fp}``          | ``LOST#{cause}`` | a loss counted: one per session and cause       |
| ``TASKS#{n}``          | ``SUMMARY``   | task facts of the tasks hashed to shard n (below)  |
| ``TASK#{id}``          | ``OPEN#{fp}`` / ``CLOSED#{fp}`` | sessions per task, for at-risk   |
| ``WINDOWS``            | ``ALL``       | string sets of deployment starts and ends          |
| ``PENDING``            | ``{nf.key}``  | a not-found occurrence awaiting a verdict          |
| ``DEP#{svc}#{dep}``    | ``LOST#{fp}`` / ``REPORT`` | sessions a deployment lost; report sent |

Task facts live in ``TASK_SHARDS`` summary items, one string-set attribute per task
(``t#{task_id}``) of tagged facts (``svc=``, ``start=``, ``stopping=``, ...). Why: a not-found
needs the facts of its session's origin task, which is only known once the session is read; a
fixed set of summary keys can be fetched in the *same* BatchGetItem as the sessions, so a batch
of not-founds costs one read round trip. ``ADD`` to a set is idempotent and commutative and the
reader takes the earliest time (smallest string) of each tag, so any order of task events merges
to the same facts. Size bound: about 250 bytes per task, so a 400 KB item holds about 1,500
tasks and the 8 shards about 12,000 tasks seen within the TTL; the reporter prunes tasks whose
latest time is older than the TTL (their sessions' records have expired too).

Why this makes at-least-once delivery harmless: immutable puts of identical items and ``ADD``
to sets are idempotent and commutative; the only write with an effect outside the ledger
(counting a lost session under a cause, sending a report) is guarded by a condition that
succeeds once.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from detectors.core import (
    DeploymentWindow,
    NotFound,
    SessionOrigin,
    TaskFacts,
    Verdict,
    merge_windows,
    reason_marks,
)
from detectors.facts import DeploymentObserved, SessionClosed, SessionCreated, TaskObserved
from detectors.names import Cause

Item = dict[str, Any]
Key = tuple[str, str]
BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25
WINDOWS_KEY: Key = ("WINDOWS", "ALL")
PENDING_PK = "PENDING"
TASK_SHARDS = 8  # fixed: changing it orphans the facts stored under the old hashing
TASK_ATTR_PREFIX = "t#"
_TAG_TIMES = {"start": "started_at", "stopping": "stopping_at", "stopped": "stopped_at"}
_TAG_TEXTS = {"svc": "service", "by": "started_by", "code": "stop_code"}
_REMOVE_PER_UPDATE = 50  # keeps each UpdateExpression well under DynamoDB's 4 KB
_RETRIES = 8


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def _key(pk: str, sk: str) -> Item:
    return {"pk": _s(pk), "sk": _s(sk)}


def _get_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def _get_n(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


def session_key(fp: str) -> Key:
    return (f"SESS#{fp}", "CREATED")


LOST_PREFIX = "LOST#"


def lost_key(fp: str, cause: Cause) -> Key:
    """The count lock of one (session, cause): SessionsLost counts each pair once."""
    return (f"SESS#{fp}", LOST_PREFIX + cause.value)


def lost_prefix(fp: str) -> Key:
    """Partition and sort-key prefix of all of a session's count locks (to query them)."""
    return (f"SESS#{fp}", LOST_PREFIX)


def task_shard_key(task_id: str) -> Key:
    """The summary item holding ``task_id``'s facts (a stable hash, not Python's ``hash``)."""
    shard = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big") % TASK_SHARDS
    return (f"TASKS#{shard}", "SUMMARY")


TASK_SHARD_KEYS: tuple[Key, ...] = tuple((f"TASKS#{n}", "SUMMARY") for n in range(TASK_SHARDS))


@dataclass(frozen=True)
class SessionSpan:
    """A session seen on a task, for at-risk counts: created/closed times where known."""

    fingerprint: str
    created_at: float | None
    closed_at: float | None


class Ledger:
    """Thin typed access to the table; no decisions are made here."""

    def __init__(self, client: Any, table_name: str, ttl_days: int) -> None:
        self._db = client
        self._table = table_name
        self._ttl_s = ttl_days * 86400
        self.read_round_trips = 0

    def _expires(self) -> dict[str, str]:
        return {"N": str(int(time.time() + self._ttl_s))}

    # --- writes -----------------------------------------------------------------------------

    def record_deployment(self, obs: DeploymentObserved) -> None:
        """ADD to a string set: idempotent and order-free; earliest time wins when read."""
        if obs.ended:
            attr, value = "ends", f"{obs.service}|{obs.deployment_id}|{obs.at!r}|{obs.outcome}"
        else:
            attr, value = "starts", f"{obs.service}|{obs.deployment_id}|{obs.at!r}"
        self._db.update_item(
            TableName=self._table,
            Key=_key(*WINDOWS_KEY),
            UpdateExpression=f"ADD {attr} :v SET expires_at = :e",
            ExpressionAttributeValues={":v": {"SS": [value]}, ":e": self._expires()},
        )

    def record_task(self, obs: TaskObserved) -> None:
        """ADD this observation's tagged facts to the task's set in its summary shard."""
        tags = task_tags(obs)
        if not tags:
            return
        self._db.update_item(
            TableName=self._table,
            Key=_key(*task_shard_key(obs.task_id)),
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

        Sessions created on such a task are older still, so their records have expired and
        nothing will ask for the task again; without pruning the shards would only grow.
        A task seen with no time at all is kept (there is nothing to age it by).
        """
        removed = 0
        for key, item in shards.items():
            stale = []
            for name, value in item.items():
                if not name.startswith(TASK_ATTR_PREFIX):
                    continue
                times = [float(t.split("=", 1)[1]) for t in value.get("SS", []) if _is_time(t)]
                if times and max(times) < before:
                    stale.append(name)
            for i in range(0, len(stale), _REMOVE_PER_UPDATE):
                names = {f"#a{j}": n for j, n in enumerate(stale[i : i + _REMOVE_PER_UPDATE])}
                self._db.update_item(
                    TableName=self._table,
                    Key=_key(*key),
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
            body = {"task_id": _s(c.task_id), "at": _n(c.at)}
            items[session_key(c.fingerprint)] = body
            items[(f"TASK#{c.task_id}", f"OPEN#{c.fingerprint}")] = {"at": _n(c.at)}
        for x in closed:
            body = {"at": _n(x.at), "reason": _s(x.reason or "")}
            items[(f"TASK#{x.task_id}", f"CLOSED#{x.fingerprint}")] = body
        self._write([_key(*k) | v | {"expires_at": self._expires()} for k, v in items.items()], [])

    def store_pending(self, occurrences: Iterable[NotFound]) -> None:
        puts = []
        for nf in occurrences:
            body = {"fp": _s(nf.fingerprint), "task_id": _s(nf.task_id), "at": _n(nf.at)}
            if nf.log_service:
                body["log_service"] = _s(nf.log_service)
            puts.append(_key(PENDING_PK, nf.key) | body | {"expires_at": self._expires()})
        self._write(puts, [])

    def drop_pending(self, occurrences: Iterable[NotFound]) -> None:
        self._write([], [_key(PENDING_PK, nf.key) for nf in occurrences])

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
                (f"DEP#{verdict.service}#{verdict.deployment_id}", LOST_PREFIX + nf.fingerprint),
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
            {k: _s(v) for k, v in fields.items() if v},
            nf.at,
            first_seen={"decided_at": _n(now)},
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
        vals: Item = {":at": _n(at), ":e": self._expires()}
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
                Key=_key(*key),
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
                Item=_key(f"DEP#{service}#{deployment_id}", "REPORT")
                | {"sent_at": _n(now), "expires_at": self._expires()},
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
            TableName=self._table, Key=_key(f"DEP#{service}#{deployment_id}", "REPORT")
        )

    def prune_windows(self, before: float) -> int:
        """Drop deployment observations older than ``before`` from the windows item.

        The item is rewritten on every deployment event, so TTL never removes it; without
        pruning it would grow forever and old deployments would outlive their REPORT markers.
        """
        item = self.get_many([WINDOWS_KEY]).get(WINDOWS_KEY) or {}
        stale: dict[str, list[str]] = {}
        for attr, splits in (("starts", 2), ("ends", 3)):
            for raw in item.get(attr, {}).get("SS", []):
                # "svc|dep|t" or "svc|dep|t|outcome": the time is the third field either way.
                if float(raw.rsplit("|", splits)[2]) < before:
                    stale.setdefault(attr, []).append(raw)
        if stale:
            self._db.update_item(
                TableName=self._table,
                Key=_key(*WINDOWS_KEY),
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
        request: Any = {self._table: {"Keys": [_key(*k) for k in keys]}}
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
        values: Item = {":pk": _s(pk)}
        if sk_prefix:
            values[":p"] = _s(sk_prefix)
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
            fp, task, at = _get_s(item, "fp"), _get_s(item, "task_id"), _get_n(item, "at")
            if fp and task and at is not None:
                out.append(NotFound(fp, task, at, _get_s(item, "log_service")))
        return out

    def windows(self, item: Item | None = None) -> list[DeploymentWindow]:
        if item is None:
            item = self.get_many([WINDOWS_KEY]).get(WINDOWS_KEY)
        return windows_from_item(item)

    def task_sessions(self, task_id: str) -> list[SessionSpan]:
        created: dict[str, float | None] = {}
        closed: dict[str, float | None] = {}
        for item in self.query(f"TASK#{task_id}"):
            sk = item["sk"]["S"]
            if sk.startswith("OPEN#"):
                created[sk.removeprefix("OPEN#")] = _get_n(item, "at")
            elif sk.startswith("CLOSED#"):
                closed[sk.removeprefix("CLOSED#")] = _get_n(item, "at")
        return [
            SessionSpan(fp, created.get(fp), closed.get(fp)) for fp in sorted({*created, *closed})
        ]

    def deployment_losses(self, service: str, deployment_id: str) -> list[float]:
        items = self.query(f"DEP#{service}#{deployment_id}", "LOST#")
        return sorted(t for t in (_get_n(i, "at") for i in items) if t is not None)


def windows_from_item(item: Mapping[str, Any] | None) -> list[DeploymentWindow]:
    if not item:
        return []
    starts, ends = [], []
    for raw in item.get("starts", {}).get("SS", []):
        service, dep, t = raw.rsplit("|", 2)
        starts.append((service, dep, float(t)))
    for raw in item.get("ends", {}).get("SS", []):
        service, dep, t, outcome = raw.rsplit("|", 3)
        ends.append((service, dep, float(t), outcome))
    return merge_windows(starts, ends)


def origin_from_item(item: Mapping[str, Any] | None) -> SessionOrigin | None:
    if not item:
        return None
    task, at = _get_s(item, "task_id"), _get_n(item, "at")
    return SessionOrigin(task, at) if task and at is not None else None


def _is_time(tag: str) -> bool:
    return tag.split("=", 1)[0] in _TAG_TIMES


def task_tags(obs: TaskObserved) -> list[str]:
    """One observation as tagged facts: ``start=``/``stopping=``/``stopped=`` times, ``svc=``,
    ``by=``, ``code=`` and ``why=`` (the reason's marks, see ``core.reason_marks``)."""
    tags = []
    for tag, name in _TAG_TIMES.items():
        t = getattr(obs, name)
        if t is not None:
            tags.append(f"{tag}={float(t)!r}")
    for tag, name in _TAG_TEXTS.items():
        v = getattr(obs, name)
        if v:
            tags.append(f"{tag}={v[:256]}")
    marks = reason_marks(obs.stopped_reason)
    if marks:
        tags.append(f"why={marks}")
    return tags


def task_from_tags(task_id: str, tags: Iterable[str]) -> TaskFacts:
    """Earliest time and smallest string per tag: the same facts whatever order they came in."""
    times: dict[str, float] = {}
    texts: dict[str, str] = {}
    for raw in tags:
        tag, _, value = raw.partition("=")
        if tag in _TAG_TIMES:
            t = float(value)
            times[tag] = min(t, times.get(tag, t))
        elif tag in _TAG_TEXTS or tag == "why":
            texts[tag] = min(value, texts.get(tag, value))
    return TaskFacts(
        task_id=task_id,
        service=texts.get("svc"),
        started_by=texts.get("by"),
        started_at=times.get("start"),
        stopping_at=times.get("stopping"),
        stopped_at=times.get("stopped"),
        stop_code=texts.get("code"),
        stopped_reason=texts.get("why"),
    )


def tasks_from_items(items: Mapping[Key, Item]) -> dict[str, TaskFacts]:
    """Every task in the summary shards among ``items`` (other items are ignored)."""
    out: dict[str, TaskFacts] = {}
    for key in TASK_SHARD_KEYS:
        for name, value in (items.get(key) or {}).items():
            if name.startswith(TASK_ATTR_PREFIX) and "SS" in value:
                task_id = name[len(TASK_ATTR_PREFIX) :]
                out[task_id] = task_from_tags(task_id, value["SS"])
    return out
