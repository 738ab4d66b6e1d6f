"""The DynamoDB ledger's item layout: keys, attribute names and values, items <-> records.

One table (``pk``/``sk`` strings, TTL attribute ``expires_at``, no GSIs). Every item
describes ONE entity (a task, a session, a deployment, one loss, one pending 404), so no item
grows with the cluster or its history (the full table and its costs: detectors/README.md):

| pk                | sk                           | what                                  |
|-------------------|------------------------------|---------------------------------------|
| ``TASK#{id}``     | ``FACTS``                    | one task's facts (tagged string set)  |
| ``TASK#{id}``     | ``OPEN#{fp}``/``CLOSED#{fp}``| sessions per task, for at-risk counts |
| ``SESS#{fp}``     | ``CREATED``                  | session created: task, at (immutable) |
| ``SESS#{fp}``     | ``LOST#{cause}``             | count lock: one per session and cause |
| ``DEP#{svc}#{d}`` | ``FACTS``                    | one deployment's facts, its ECS read, |
|                   |                              | the report's claim/sent state         |
| ``DEP#{svc}#{d}`` | ``LOST#{fp}``                | one loss of that deployment           |
| ``DEP#{svc}#{d}`` | ``GUARD#{GATE|STOP|ALERT}``  | a deployment guard's claim and record |
| ``SVC#{svc}``     | ``D#{start}#{d}``            | deployments by start (facts copied)   |
| ``SVC#{svc}``     | ``D#{t}#~hook#{stage}#{st}`` | a lifecycle hook stage, by time       |
| ``SVC#{svc}``     | ``L#{task}``                 | a live task of the service (at-risk)  |
| ``SVC#{svc}``     | ``S#{stop}#{task}``          | a task stop, by time (the report)     |
| ``ACTIVE``        | ``{svc}#{d}``                | a deployment not yet reported         |
| ``PENDING``       | ``{NotFound.key}``           | a not-found awaiting its verdict      |

Nothing outside ``detectors.ledger`` reads these names (tests/test_layout.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, Final

from sessionwatch.contract import Cause
from sessionwatch.detectors.facts import (
    HookObserved,
    HookStage,
    NotFound,
    SessionClosed,
    SessionOrigin,
    SessionSpan,
    TaskFacts,
)
from sessionwatch.detectors.ledger.codec import (
    StoredGuardValue,
    deployment_from_tags,
    has_settings,
    sortable,
    task_from_tags,
)
from sessionwatch.detectors.ledger.records import (
    DeploymentRecord,
    Guard,
    GuardRecord,
    IndexEntry,
    LossLock,
)
from sessionwatch.detectors.report_state import ReportState

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

SESSION_PREFIX: Final = "SESS#"
TASK_PREFIX: Final = "TASK#"
DEPLOYMENT_PREFIX: Final = "DEP#"
SERVICE_PREFIX: Final = "SVC#"
CREATED_SK: Final = "CREATED"
FACTS_SK: Final = "FACTS"
PENDING_PK: Final = "PENDING"
ACTIVE_PK: Final = "ACTIVE"
LOST_PREFIX: Final = "LOST#"
GUARD_PREFIX: Final = "GUARD#"
OPEN_PREFIX: Final = "OPEN#"
CLOSED_PREFIX: Final = "CLOSED#"
DEP_INDEX_PREFIX: Final = "D#"
HOOK_MARK: Final = "~hook"
LIVE_PREFIX: Final = "L#"
STOP_PREFIX: Final = "S#"
TAGS_ATTR: Final = "f"
# DynamoDB's TTL attribute (infra/ names the same one on the table).
EXPIRES_ATTR: Final = "expires_at"
# On a task item: the stop times its sessions were last decided again for.
REVISITED_ATTR: Final = "revisited"
# On a deployment count lock: when the deployment it names began (the lock's tie-break).
DEP_STARTED_ATTR: Final = "dep_started"
RETRACTED_ATTR: Final = "retracted_at"  # a count lock taken back by a later verdict
# The report's state on the deployment's FACTS item (``detectors.report_state``).
REPORT_ATTRS: Final = {
    "claim_at": "claim_at",
    "sent_at": "sent_at",
    "sent_end": "sent_end",
    "followup_due": "followup_due",
    "followup_at": "followup_at",
}


# --- attribute values ---------------------------------------------------------------------


def s_value(value: str) -> dict[str, str]:
    return {"S": value}


def n_value(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def key_item(key: Key) -> Item:
    pk, sk = key
    return {"pk": s_value(pk), "sk": s_value(sk)}


def item_key(item: Mapping[str, Any]) -> Key:
    return (item["pk"]["S"], item["sk"]["S"])


def get_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return value["S"] if value and "S" in value else None


def get_n(item: Mapping[str, Any], name: str) -> float | None:
    value = item.get(name)
    return float(value["N"]) if value and "N" in value else None


def tags_of(item: Mapping[str, Any] | None) -> list[str]:
    return list(((item or {}).get(TAGS_ATTR) or {}).get("SS", []))


# --- keys ---------------------------------------------------------------------------------


def session_pk(fp: str) -> str:
    return SESSION_PREFIX + fp


def session_key(fp: str) -> Key:
    return (session_pk(fp), CREATED_SK)


def lost_key(fp: str, cause: Cause) -> Key:
    """The count lock of one (session, cause): its earliest 404 (the session is counted once,
    to its earliest 404 over every cause: ``classify.owned_once``)."""
    return (session_pk(fp), LOST_PREFIX + cause.value)


def task_sessions_pk(task_id: str) -> str:
    return TASK_PREFIX + task_id


def task_key(task_id: str) -> Key:
    return (task_sessions_pk(task_id), FACTS_SK)


def deployment_pk(service: str, deployment_id: str) -> str:
    return f"{DEPLOYMENT_PREFIX}{service}#{deployment_id}"


def deployment_key(service: str, deployment_id: str) -> Key:
    return (deployment_pk(service, deployment_id), FACTS_SK)


def deployment_loss_key(service: str, deployment_id: str, fp: str) -> Key:
    return (deployment_pk(service, deployment_id), LOST_PREFIX + fp)


def service_pk(service: str) -> str:
    return SERVICE_PREFIX + service


def deployment_index_key(service: str, deployment_id: str, started_at: float) -> Key:
    return (service_pk(service), f"{DEP_INDEX_PREFIX}{sortable(started_at)}#{deployment_id}")


def hook_key(hook: HookObserved) -> Key:
    sk = f"{DEP_INDEX_PREFIX}{sortable(hook.at)}#{HOOK_MARK}#{hook.stage}#{hook.status}"
    return (service_pk(hook.service), sk)


def live_task_key(service: str, task_id: str) -> Key:
    return (service_pk(service), LIVE_PREFIX + task_id)


def stop_key(service: str, task_id: str, stop_began: float) -> Key:
    return (service_pk(service), f"{STOP_PREFIX}{sortable(stop_began)}#{task_id}")


def active_key(service: str, deployment_id: str) -> Key:
    return (ACTIVE_PK, f"{service}#{deployment_id}")


def pending_key(nf: NotFound) -> Key:
    return (PENDING_PK, nf.key)


def index_upper(t: float) -> str:
    """The largest deployment-index sort key at time ``t`` (inclusive)."""
    return f"{DEP_INDEX_PREFIX}{sortable(t)}~"


# --- items -> records ---------------------------------------------------------------------


def task_from_item(item: Mapping[str, Any] | None) -> TaskFacts | None:
    if not item:
        return None
    task_id = item["pk"]["S"].removeprefix(TASK_PREFIX)
    return task_from_tags(task_id, tags_of(item))


def report_from_item(item: Mapping[str, Any]) -> ReportState:
    return ReportState(
        claim_at=get_n(item, "claim_at"),
        sent_at=get_n(item, "sent_at"),
        sent_end=get_s(item, "sent_end"),
        followup_due=get_n(item, "followup_due"),
        followup_at=get_n(item, "followup_at"),
    )


def deployment_record(
    service: str, deployment_id: str, item: Mapping[str, Any]
) -> DeploymentRecord:
    tags = tags_of(item)
    return DeploymentRecord(
        service=service,
        deployment_id=deployment_id,
        window=deployment_from_tags(service, deployment_id, tags),
        has_settings=has_settings(tags),
        report=report_from_item(item),
    )


def index_entry(item: Mapping[str, Any]) -> IndexEntry | None:
    """A service index item (``D#{time}#...``) as an entry; None for a malformed one."""
    sk = item["sk"]["S"]
    service = item["pk"]["S"].removeprefix(SERVICE_PREFIX)
    try:
        at = float(sk[len(DEP_INDEX_PREFIX) :].split("#", 1)[0])
    except ValueError:
        return None
    if HOOK_MARK in sk:
        stage, status, t = get_s(item, "stage"), get_s(item, "status"), get_n(item, "at")
        if stage and status and t is not None:
            return IndexEntry(service, at, hook=HookStage(stage, status, t))
        return None
    dep = get_s(item, "dep")
    return IndexEntry(service, at, dep, frozenset(tags_of(item))) if dep else None


def origin_from_item(item: Mapping[str, Any] | None) -> SessionOrigin | None:
    if not item:
        return None
    task, at = get_s(item, "task_id"), get_n(item, "at")
    return SessionOrigin(task, at, get_s(item, "client_name")) if task and at is not None else None


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


def closed_from_item(item: Mapping[str, Any]) -> SessionClosed | None:
    """A ``TASK#{id}`` / ``CLOSED#{fp}`` item as the close it records."""
    sk, at = item["sk"]["S"], get_n(item, "at")
    if not sk.startswith(CLOSED_PREFIX) or at is None:
        return None
    task = item["pk"]["S"].removeprefix(TASK_PREFIX)
    return SessionClosed(sk.removeprefix(CLOSED_PREFIX), task, at, get_s(item, "reason") or None)


def closed_key(task_id: str, fp: str) -> Key:
    return (task_sessions_pk(task_id), CLOSED_PREFIX + fp)


def pending_from_item(item: Mapping[str, Any]) -> NotFound | None:
    fp, task, at = get_s(item, "fp"), get_s(item, "task_id"), get_n(item, "at")
    if fp and task and at is not None:
        return NotFound(fp, task, at, get_s(item, "log_service"))
    return None


def lock_values(lock: LossLock) -> Item:
    """A count lock's attributes (its time, tie-break and ``decided_at`` are written apart)."""
    fields = {
        "cause": lock.cause.value,
        "serving_task": lock.serving_task,
        "basis": lock.basis,
        "service": lock.service,
        "origin_task": lock.origin_task,
        "deployment_id": lock.deployment_id,
    }
    return {k: s_value(v) for k, v in fields.items() if v}


def lock_from_item(item: Mapping[str, Any]) -> LossLock | None:
    """A count lock item as a record; None for a malformed one (or not a lock)."""
    cause = None
    with contextlib.suppress(ValueError):
        cause = Cause(item["sk"]["S"].removeprefix(LOST_PREFIX))
    serving, at = get_s(item, "serving_task"), get_n(item, "at")
    if cause is None or serving is None or at is None:
        return None
    return LossLock(
        fingerprint=item["pk"]["S"].removeprefix(SESSION_PREFIX),
        cause=cause,
        serving_task=serving,
        at=at,
        service=get_s(item, "service"),
        origin_task=get_s(item, "origin_task"),
        deployment_id=get_s(item, "deployment_id"),
        deployment_started_at=get_n(item, DEP_STARTED_ATTR),
        basis=get_s(item, "basis") or "",
        decided_at=get_n(item, "decided_at"),
        retracted_at=get_n(item, RETRACTED_ATTR),
    )


# --- the deployment guards' records -------------------------------------------------------


def guard_key(service: str, deployment_id: str, guard: Guard) -> Key:
    return (deployment_pk(service, deployment_id), GUARD_PREFIX + guard.value)


def guard_attr(name: str, value: StoredGuardValue) -> tuple[str, dict[str, Any]]:
    """One guard field as an attribute (``g_`` keeps it apart from the key and TTL names)."""
    if isinstance(value, str):
        return "g_" + name, s_value(value)
    if isinstance(value, float):
        return "g_" + name, n_value(value)
    return "g_" + name, {"SS": list(value)}


def guard_from_item(service: str, dep: str, item: Mapping[str, Any]) -> GuardRecord | None:
    try:
        guard = Guard(item_key(item)[1].removeprefix(GUARD_PREFIX))
    except ValueError:
        return None
    fields: dict[str, str | float | list[str]] = {}
    for attr, value in item.items():
        if not attr.startswith("g_"):
            continue  # pk, sk, expires_at
        if "S" in value:
            fields[attr[2:]] = str(value["S"])
        elif "N" in value:
            fields[attr[2:]] = float(value["N"])
        elif "SS" in value:
            fields[attr[2:]] = sorted(value["SS"])
    return GuardRecord(service, dep, guard, fields)
