"""The ledger's item layout: keys, attribute encoding, and facts read back from items (pure).

One DynamoDB table (``pk``/``sk`` strings, TTL attribute ``expires_at``, no GSIs). Every item
describes ONE entity (a task, a session, a deployment, one loss, one pending 404), so no item
grows with the cluster or its history (the full table and its costs: detectors/README.md):

| pk                | sk                           | what                                  |
|-------------------|------------------------------|---------------------------------------|
| ``TASK#{id}``     | ``FACTS``                    | one task's facts (tagged string set)  |
| ``TASK#{id}``     | ``OPEN#{fp}``/``CLOSED#{fp}``| sessions per task, for at-risk counts |
| ``SESS#{fp}``     | ``CREATED``                  | session created: task, at, client     |
| ``SESS#{fp}``     | ``LOST#{cause}``             | count lock: one per session and cause |
| ``DEP#{svc}#{d}`` | ``FACTS``                    | one deployment's facts, its ECS read, |
|                   |                              | the report's claim/sent state         |
| ``DEP#{svc}#{d}`` | ``LOST#{fp}``                | one loss of that deployment           |
| ``SVC#{svc}``     | ``D#{start}#{d}``            | deployments by start (facts copied)   |
| ``SVC#{svc}``     | ``D#{t}#~hook#{stage}#{st}`` | a lifecycle hook stage, by time       |
| ``SVC#{svc}``     | ``L#{task}``                 | a live task of the service (at-risk)  |
| ``SVC#{svc}``     | ``S#{stop}#{task}``          | a task stop, by time (the report)     |
| ``ACTIVE``        | ``{svc}#{d}``                | a deployment not yet reported         |
| ``PENDING``       | ``{NotFound.key}``           | a not-found awaiting its verdict      |

Merges are order-free: task and deployment facts are ``ADD``-ed to a string set of tagged
observations (``start=``, ``end=``...), read back as the earliest time and the smallest string
per tag; one entity has a bounded number of observations (ECS sends a handful of events per
task and per deployment), so a set stays a few hundred bytes. Everything here is plain
functions over plain data; ``detectors.ledger`` (the DynamoDB calls) is about I/O alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any, Final

from sessionwatch.contract import Cause
from sessionwatch.detectors.core import close_superseded, reason_marks, rollback_target
from sessionwatch.detectors.facts import (
    DeploymentObserved,
    DeploymentSettings,
    DeploymentWindow,
    HookObserved,
    HookStage,
    NotFound,
    SessionOrigin,
    SessionSpan,
    TaskFacts,
)

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

FACTS_SK: Final = "FACTS"
PENDING_PK: Final = "PENDING"
ACTIVE_PK: Final = "ACTIVE"
LOST_PREFIX: Final = "LOST#"
OPEN_PREFIX: Final = "OPEN#"
CLOSED_PREFIX: Final = "CLOSED#"
DEP_INDEX_PREFIX: Final = "D#"
HOOK_MARK: Final = "~hook"
LIVE_PREFIX: Final = "L#"
STOP_PREFIX: Final = "S#"
TAGS_ATTR: Final = "f"
# How many index items (deployments and hook stages) one decision query reads, newest first:
# enough for overlapping rollouts with their hook stages; an older stop takes one more query.
DEPLOYMENT_QUERY_LIMIT: Final = 25
# Hook stages that date a deployment's traffic: the only ones stored.
HOOK_STAGES: Final = frozenset(
    {"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}
)
_MAX_TAG_TEXT = 256  # ECS names, ARNs and codes are shorter; bounds an entity's item


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


def sortable(t: float) -> str:
    """A time as a fixed-width string, so sort keys order like the numbers (t >= 0)."""
    return f"{max(t, 0.0):017.3f}"


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


def task_key(task_id: str) -> Key:
    return (task_sessions_pk(task_id), FACTS_SK)


def deployment_pk(service: str, deployment_id: str) -> str:
    return f"DEP#{service}#{deployment_id}"


def deployment_key(service: str, deployment_id: str) -> Key:
    return (deployment_pk(service, deployment_id), FACTS_SK)


def deployment_loss_key(service: str, deployment_id: str, fp: str) -> Key:
    return (deployment_pk(service, deployment_id), LOST_PREFIX + fp)


def service_pk(service: str) -> str:
    return f"SVC#{service}"


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


# --- task facts as tagged strings ---------------------------------------------------------

_TASK_TIMES = {"start": "started_at", "stopping": "stopping_at", "stopped": "stopped_at"}
_TASK_TEXTS = {"svc": "service", "by": "started_by", "code": "stop_code", "td": "task_definition"}
_REASON_TAG = "why"


def task_tags(obs: TaskFacts) -> list[str]:
    """One observation as tagged facts (times, texts, the reason's marks)."""
    tags = []
    for tag, name in _TASK_TIMES.items():
        t = getattr(obs, name)
        if t is not None:
            tags.append(f"{tag}={float(t)!r}")
    for tag, name in _TASK_TEXTS.items():
        text = getattr(obs, name)
        if text:
            tags.append(f"{tag}={text[:_MAX_TAG_TEXT]}")
    marks = reason_marks(obs.stopped_reason)
    if marks:
        tags.append(f"{_REASON_TAG}={marks}")
    return tags


def _fold(tags: Iterable[str], times: Iterable[str]) -> tuple[dict[str, float], dict[str, str]]:
    """Earliest time and smallest string per tag: the same whatever order the tags came in."""
    time_tags = set(times)
    out_t: dict[str, float] = {}
    out_s: dict[str, str] = {}
    for raw in tags:
        tag, _, value = raw.partition("=")
        if tag in time_tags:
            try:
                t = float(value)
            except ValueError:
                continue
            out_t[tag] = min(t, out_t.get(tag, t))
        else:
            out_s[tag] = min(value, out_s.get(tag, value))
    return out_t, out_s


def task_from_tags(task_id: str, tags: Iterable[str]) -> TaskFacts:
    times, texts = _fold(tags, _TASK_TIMES)
    return TaskFacts(
        task_id=task_id,
        service=texts.get("svc"),
        started_by=texts.get("by"),
        started_at=times.get("start"),
        stopping_at=times.get("stopping"),
        stopped_at=times.get("stopped"),
        stop_code=texts.get("code"),
        stopped_reason=texts.get(_REASON_TAG),
        task_definition=texts.get("td"),
    )


def task_from_item(item: Mapping[str, Any] | None) -> TaskFacts | None:
    if not item:
        return None
    task_id = item["pk"]["S"].removeprefix("TASK#")
    return task_from_tags(task_id, tags_of(item))


# --- deployment facts as tagged strings ---------------------------------------------------

_DEP_TIMES = ("start",)
_DEP_NUMBERS = {"bake": "bake_s", "step_pct": "step_percent", "step_bake": "step_bake_s"}


def deployment_tags(obs: DeploymentObserved) -> list[str]:
    tags = [f"end={obs.at!r}|{obs.outcome}" if obs.ended else f"start={obs.at!r}"]
    if obs.reason:
        tags.append(f"why={obs.reason[:_MAX_TAG_TEXT]}")
    return tags


def settings_tags(settings: DeploymentSettings) -> list[str]:
    tags = [f"src={settings.source}"]
    if settings.strategy:
        tags.append(f"strategy={settings.strategy}")
    if settings.task_definition:
        tags.append(f"td={settings.task_definition[:_MAX_TAG_TEXT]}")
    for tag, name in _DEP_NUMBERS.items():
        value = getattr(settings, name)
        if value is not None:
            tags.append(f"{tag}={float(value)!r}")
    return tags


def deployment_from_tags(
    service: str, deployment_id: str, tags: Iterable[str]
) -> DeploymentWindow | None:
    """The merged deployment; None while its start (IN_PROGRESS) has not been seen."""
    tags = list(tags)
    times, texts = _fold(tags, _DEP_TIMES)
    if "start" not in times:
        return None
    ends = []
    for raw in tags:
        if raw.startswith("end="):
            at, _, outcome = raw[4:].partition("|")
            try:
                ends.append((float(at), outcome))
            except ValueError:
                continue
    end = min(ends) if ends else None
    reason = texts.get("why")
    numbers: dict[str, float | None] = {}
    for tag, name in _DEP_NUMBERS.items():
        try:
            numbers[name] = float(texts[tag]) if tag in texts else None
        except ValueError:
            numbers[name] = None
    return DeploymentWindow(
        service=service,
        deployment_id=deployment_id,
        started_at=times["start"],
        ended_at=end[0] if end else None,
        outcome=end[1] if end else None,
        reason=reason,
        rollback_to=rollback_target(reason),
        strategy=texts.get("strategy"),
        strategy_source=texts.get("src"),
        task_definition=texts.get("td"),
        bake_s=numbers["bake_s"],
        step_percent=numbers["step_percent"],
        step_bake_s=numbers["step_bake_s"],
    )


def end_mark(ended_at: float | None, outcome: str | None) -> str:
    """How a deployment ended, as a sent report said it (``sent_end`` on its item): a later
    end event that differs (a FAILED after a report that said SUPERSEDED) needs a follow-up."""
    return f"{ended_at!r}|{outcome}"


def deployment_from_item(item: Mapping[str, Any] | None) -> DeploymentWindow | None:
    if not item:
        return None
    service, dep = get_s(item, "svc"), get_s(item, "dep")
    if not service or not dep:
        return None
    return deployment_from_tags(service, dep, tags_of(item))


def deployment_has_settings(item: Mapping[str, Any] | None) -> bool:
    """True once the deployment's one ECS read was made (or found unavailable)."""
    return any(t.startswith("src=") for t in tags_of(item))


def windows_from_index(items: Iterable[Mapping[str, Any]]) -> list[DeploymentWindow]:
    """Deployments of one service's index items, each hook attached to the deployment that
    began last before it; windows left open are closed by the next start (SUPERSEDED)."""
    by_dep: dict[tuple[str, str], list[str]] = {}
    hooks: list[tuple[str, HookStage]] = []
    for item in items:
        sk = item["sk"]["S"]
        service = item["pk"]["S"].removeprefix("SVC#")
        if HOOK_MARK in sk:
            stage, status, at = get_s(item, "stage"), get_s(item, "status"), get_n(item, "at")
            if stage and status and at is not None:
                hooks.append((service, HookStage(stage, status, at)))
            continue
        dep = get_s(item, "dep")
        if dep:
            by_dep.setdefault((service, dep), []).extend(tags_of(item))
    windows = [
        w for (svc, dep), tags in by_dep.items() if (w := deployment_from_tags(svc, dep, tags))
    ]
    out = []
    for w in windows:
        mine = tuple(
            sorted(
                (h for svc, h in hooks if svc == w.service and _hook_owner(h, windows) is w),
                key=lambda h: (h.at, h.stage, h.status),
            )
        )
        out.append(replace(w, hooks=mine) if mine else w)
    return close_superseded(out)


def _hook_owner(hook: HookStage, windows: list[DeploymentWindow]) -> DeploymentWindow | None:
    before = [w for w in windows if w.started_at <= hook.at]
    return max(before, key=lambda w: (w.started_at, w.deployment_id), default=None)


# --- sessions -----------------------------------------------------------------------------


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


def pending_from_item(item: Mapping[str, Any]) -> NotFound | None:
    fp, task, at = get_s(item, "fp"), get_s(item, "task_id"), get_n(item, "at")
    if fp and task and at is not None:
        return NotFound(fp, task, at, get_s(item, "log_service"))
    return None
