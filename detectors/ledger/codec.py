"""How task and deployment facts are merged in storage: tagged strings, order-free (pure).

Task and deployment facts are kept as a set of tagged observations (``start=``, ``end=``...)
and read back as the earliest time and the smallest string per tag, so the same observations
in any order and duplicated merge to the same facts. Both ledgers store these sets (DynamoDB
``ADD`` to a string set; the in-memory ledger a Python set): one encoding, the same merges.
One entity has a bounded number of observations (a handful of ECS events per task and per
deployment), so a set stays a few hundred bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Final

from sessionwatch.detectors.facts import (
    DeploymentObserved,
    DeploymentSettings,
    DeploymentWindow,
    HookStage,
    TaskFacts,
    close_superseded,
    reason_marks,
    rollback_target,
)
from sessionwatch.detectors.ledger.records import (
    MAX_GUARD_FINGERPRINTS,
    GuardValue,
    IndexEntry,
)

# Hook stages that date a deployment's traffic: the only ones stored.
HOOK_STAGES: Final = frozenset(
    {"TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP"}
)
_MAX_TAG_TEXT = 256  # ECS names, ARNs and codes are shorter; bounds an entity's item


def sortable(t: float) -> str:
    """A time as a fixed-width string, so index positions order like the numbers (t >= 0)."""
    return f"{max(t, 0.0):017.3f}"


# --- task facts ---------------------------------------------------------------------------

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


# --- deployment facts ---------------------------------------------------------------------

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


def has_settings(tags: Iterable[str]) -> bool:
    """True once the deployment's one ECS read was made (or found unavailable)."""
    return any(t.startswith("src=") for t in tags)


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


def windows_from_entries(entries: Iterable[IndexEntry]) -> list[DeploymentWindow]:
    """Deployments of index entries, each hook attached to the deployment that began last
    before it; windows left open are closed by the next start (SUPERSEDED)."""
    by_dep: dict[tuple[str, str], set[str]] = {}
    hooks: list[tuple[str, HookStage]] = []
    for e in entries:
        if e.hook is not None:
            hooks.append((e.service, e.hook))
        elif e.deployment_id:
            by_dep.setdefault((e.service, e.deployment_id), set()).update(e.facts)
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


# --- the guards' fields -------------------------------------------------------------------

StoredGuardValue = str | float | list[str]


def guard_fields(fields: Mapping[str, GuardValue]) -> dict[str, StoredGuardValue | None]:
    """A guard's fields as both ledgers store them: numbers as floats, lists as sorted unique
    fingerprints (at most ``MAX_GUARD_FINGERPRINTS``), an empty list as None (absent)."""
    out: dict[str, StoredGuardValue | None] = {}
    for name, value in fields.items():
        if not name.isidentifier() or len(name) > 64:
            raise ValueError(f"bad guard field name {name[:64]!r}")
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, int | float):
            out[name] = float(value)
        else:
            out[name] = sorted({str(v) for v in value})[:MAX_GUARD_FINGERPRINTS] or None
    return out
