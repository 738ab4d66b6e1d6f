"""The ledger's item layout: keys, attribute encoding, and facts read back from items (pure).

One DynamoDB table (``pk``/``sk`` strings, TTL attribute ``expires_at``, no GSIs):

| pk                  | sk                              | what                                  |
|---------------------|---------------------------------|---------------------------------------|
| ``SESS#{fp}``       | ``CREATED``                     | session created: task, at (immutable) |
| ``SESS#{fp}``       | ``LOST#{cause}``                | count lock: one per session and cause |
| ``TASKS#{n}``       | ``SUMMARY``                     | facts of the tasks hashed to shard n  |
| ``TASK#{id}``       | ``OPEN#{fp}`` / ``CLOSED#{fp}`` | sessions per task, for at-risk counts |
| ``WINDOWS``         | ``ALL``                         | deployment starts and ends (sets)     |
| ``PENDING``         | ``{NotFound.key}``              | a not-found awaiting its verdict      |
| ``DEP#{svc}#{dep}`` | ``LOST#{fp}`` / ``REPORT``      | a deployment's losses / report sent   |

Why task facts live in ``TASK_SHARDS`` fixed summary items (one string set ``t#{task_id}`` of
tagged facts per task) rather than one item per task: a not-found needs the facts of its
session's origin task, which is only known once the session is read. Fixed keys can go into
the *same* BatchGetItem as the sessions, so a batch of not-founds costs one read round trip.
``ADD`` to a set is idempotent and commutative and ``task_from_tags`` takes the earliest time
and the smallest string per tag, so any order and any duplicates of task events merge to the
same facts. Size: about 250 bytes a task, so the 8 shards hold about 12,000 tasks seen within
the TTL; the reporter prunes older ones.

Everything here is plain functions over plain data, so the encoding is tested without AWS and
``detectors.ledger`` (the DynamoDB calls) stays about I/O alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sessionwatch.contract import Cause
from sessionwatch.detectors.core import (
    DeploymentWindow,
    SessionOrigin,
    TaskFacts,
    merge_windows,
    reason_marks,
)
from sessionwatch.detectors.facts import DeploymentObserved

Item = dict[str, Any]
Key = tuple[str, str]

# The table's key schema as CreateTable arguments. infra/ defines the real table; tests and the
# benchmark build their moto tables from this, so they cannot drift from the keys used here.
TABLE_SCHEMA: Final[Mapping[str, Any]] = {
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

WINDOWS_KEY: Final[Key] = ("WINDOWS", "ALL")
PENDING_PK: Final = "PENDING"
LOST_PREFIX: Final = "LOST#"
OPEN_PREFIX: Final = "OPEN#"
CLOSED_PREFIX: Final = "CLOSED#"
TASK_SHARDS: Final = 8  # fixed: changing it orphans the facts stored under the old hashing
TASK_ATTR_PREFIX: Final = "t#"
_TAG_TIMES = {"start": "started_at", "stopping": "stopping_at", "stopped": "stopped_at"}
_TAG_TEXTS = {"svc": "service", "by": "started_by", "code": "stop_code"}
_REASON_TAG = "why"
_MAX_TAG_TEXT = 256  # ECS names and codes are shorter; bounds a task's share of its shard


# --- attribute values ---------------------------------------------------------------------


def s_value(value: str) -> dict[str, str]:
    return {"S": value}


def n_value(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def key_item(key: Key) -> Item:
    pk, sk = key
    return {"pk": s_value(pk), "sk": s_value(sk)}


def get_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def get_n(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


# --- keys ---------------------------------------------------------------------------------


def session_key(fp: str) -> Key:
    return (f"SESS#{fp}", "CREATED")


def lost_key(fp: str, cause: Cause) -> Key:
    """The count lock of one (session, cause): SessionsLost counts each pair once."""
    return (f"SESS#{fp}", LOST_PREFIX + cause.value)


def lost_prefix(fp: str) -> Key:
    """Partition and sort-key prefix of all of a session's count locks (to query them)."""
    return (f"SESS#{fp}", LOST_PREFIX)


def task_sessions_pk(task_id: str) -> str:
    return f"TASK#{task_id}"


def deployment_pk(service: str, deployment_id: str) -> str:
    return f"DEP#{service}#{deployment_id}"


def deployment_loss_key(service: str, deployment_id: str, fp: str) -> Key:
    return (deployment_pk(service, deployment_id), LOST_PREFIX + fp)


def report_key(service: str, deployment_id: str) -> Key:
    return (deployment_pk(service, deployment_id), "REPORT")


def task_shard_key(task_id: str) -> Key:
    """The summary item holding ``task_id``'s facts (a stable hash, not Python's ``hash``)."""
    shard = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big") % TASK_SHARDS
    return (f"TASKS#{shard}", "SUMMARY")


TASK_SHARD_KEYS: Final[tuple[Key, ...]] = tuple(
    (f"TASKS#{n}", "SUMMARY") for n in range(TASK_SHARDS)
)


# --- deployment windows: "svc|dep|t" starts and "svc|dep|t|outcome" ends in two string sets --


def window_entry(obs: DeploymentObserved) -> tuple[str, str]:
    """The windows item's set attribute (``starts``/``ends``) and the member for ``obs``."""
    if obs.ended:
        return "ends", f"{obs.service}|{obs.deployment_id}|{obs.at!r}|{obs.outcome}"
    return "starts", f"{obs.service}|{obs.deployment_id}|{obs.at!r}"


def _split_entry(attr: str, raw: str) -> list[str]:
    # From the right: the time (and outcome) are the last fields whatever the names before hold.
    return raw.rsplit("|", 3 if attr == "ends" else 2)


def window_is_stale(window: DeploymentWindow, before: float) -> bool:
    """Ended (or, if open, started) before ``before``: the reporter forgets such windows."""
    return (window.ended_at if window.ended_at is not None else window.started_at) < before


def stale_window_entries(item: Mapping[str, Any] | None, before: float) -> dict[str, list[str]]:
    """The members to delete, per set attribute, so that exactly the stale windows go.

    Whole windows, never single entries by their own time: a long deployment that began
    before the cutoff and ended after it would otherwise lose its start, and so its window.
    An end whose start was never seen makes no window; it goes once its own time is stale.
    """
    windows = windows_from_item(item)
    stale = {(w.service, w.deployment_id) for w in windows if window_is_stale(w, before)}
    known = {(w.service, w.deployment_id) for w in windows}
    out: dict[str, list[str]] = {}
    for attr, raw in window_entries(item):
        parts = _split_entry(attr, raw)
        ident = (parts[0], parts[1])
        if ident in stale or (ident not in known and float(parts[2]) < before):
            out.setdefault(attr, []).append(raw)
    return out


def window_entries(item: Mapping[str, Any] | None) -> Iterable[tuple[str, str]]:
    """Every (attribute, member) of the windows item."""
    for attr in ("starts", "ends"):
        for raw in (item or {}).get(attr, {}).get("SS", []):
            yield attr, raw


def windows_from_item(item: Mapping[str, Any] | None) -> list[DeploymentWindow]:
    starts, ends = [], []
    for attr, raw in window_entries(item):
        parts = _split_entry(attr, raw)
        if attr == "starts":
            starts.append((parts[0], parts[1], float(parts[2])))
        else:
            ends.append((parts[0], parts[1], float(parts[2]), parts[3]))
    return merge_windows(starts, ends)


# --- sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionSpan:
    """A session seen on a task, for at-risk counts: created/closed times where known."""

    fingerprint: str
    created_at: float | None
    closed_at: float | None


def origin_from_item(item: Mapping[str, Any] | None) -> SessionOrigin | None:
    if not item:
        return None
    task, at = get_s(item, "task_id"), get_n(item, "at")
    return SessionOrigin(task, at) if task and at is not None else None


def spans_from_items(items: Iterable[Mapping[str, Any]]) -> list[SessionSpan]:
    """A task's ``OPEN#``/``CLOSED#`` items as one span per session."""
    created: dict[str, float | None] = {}
    closed: dict[str, float | None] = {}
    for item in items:
        sk = item["sk"]["S"]
        if sk.startswith(OPEN_PREFIX):
            created[sk.removeprefix(OPEN_PREFIX)] = get_n(item, "at")
        elif sk.startswith(CLOSED_PREFIX):
            closed[sk.removeprefix(CLOSED_PREFIX)] = get_n(item, "at")
    return [SessionSpan(fp, created.get(fp), closed.get(fp)) for fp in sorted({*created, *closed})]


# --- task facts as tagged strings ---------------------------------------------------------


def task_tags(obs: TaskFacts) -> list[str]:
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
            tags.append(f"{tag}={v[:_MAX_TAG_TEXT]}")
    marks = reason_marks(obs.stopped_reason)
    if marks:
        tags.append(f"{_REASON_TAG}={marks}")
    return tags


def tag_time(tag: str) -> float | None:
    """The time a ``start=``/``stopping=``/``stopped=`` tag carries; None for other tags."""
    name, _, value = tag.partition("=")
    return float(value) if name in _TAG_TIMES else None


def task_from_tags(task_id: str, tags: Iterable[str]) -> TaskFacts:
    """Earliest time and smallest string per tag: the same facts whatever order they came in."""
    times: dict[str, float] = {}
    texts: dict[str, str] = {}
    for raw in tags:
        tag, _, value = raw.partition("=")
        if tag in _TAG_TIMES:
            t = float(value)
            times[tag] = min(t, times.get(tag, t))
        elif tag in _TAG_TEXTS or tag == _REASON_TAG:
            texts[tag] = min(value, texts.get(tag, value))
    return TaskFacts(
        task_id=task_id,
        service=texts.get("svc"),
        started_by=texts.get("by"),
        started_at=times.get("start"),
        stopping_at=times.get("stopping"),
        stopped_at=times.get("stopped"),
        stop_code=texts.get("code"),
        stopped_reason=texts.get(_REASON_TAG),
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


def stale_tasks(shard: Mapping[str, Any], before: float) -> list[str]:
    """Task attributes of one shard whose latest known time is before ``before``.

    A task seen with no time at all is kept: there is nothing to age it by.
    """
    stale = []
    for name, value in shard.items():
        if name.startswith(TASK_ATTR_PREFIX):
            times = [t for t in map(tag_time, value.get("SS", [])) if t is not None]
            if times and max(times) < before:
                stale.append(name)
    return stale
