"""The in-memory ledger: ``LedgerStore`` over Python dicts, with DynamoDB's semantics.

For the tests, the lab's fast paths and the accuracy benchmark: the same merges (``codec``),
the same conditional writes (earliest wins, tie-break, ALL_OLD answers), the same report
transitions (``detectors.report_state``) and the same index order as ``DynamoDBLedger``; the
contract suite (tests/detectors/test_detectors_ledger_contract.py) runs against both. One lock
serialises every call, as DynamoDB serialises writes to one item. Not modelled: item size
limits and TTL deletion (neither changes a verdict; the benchmarks model sizes on their own).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from sessionwatch.contract import Cause
from sessionwatch.detectors import report_state
from sessionwatch.detectors.facts import (
    DeploymentObserved,
    DeploymentSettings,
    DeploymentWindow,
    HookObserved,
    HookStage,
    NotFound,
    SessionClosed,
    SessionCreated,
    SessionOrigin,
    SessionSpan,
    TaskFacts,
)
from sessionwatch.detectors.ledger.codec import (
    StoredGuardValue,
    deployment_from_tags,
    deployment_tags,
    guard_fields,
    has_settings,
    settings_tags,
    sortable,
    task_from_tags,
    task_tags,
    windows_from_entries,
)
from sessionwatch.detectors.ledger.records import (
    DeploymentLoss,
    DeploymentRecord,
    Guard,
    GuardRecord,
    GuardValue,
    IndexEntry,
    IndexRequest,
    LockClaim,
    LossLock,
    ReadWave,
    TaskMerge,
    WaveResult,
)
from sessionwatch.detectors.report_state import ReportState

__all__ = ["InMemoryLedger"]

_HOOK_MARK = "~hook"


@dataclass
class _Task:
    tags: set[str] = field(default_factory=set)
    revisited: str | None = None


@dataclass
class _Deployment:
    tags: set[str] = field(default_factory=set)
    report: ReportState = field(default_factory=ReportState)


class InMemoryLedger:
    """``LedgerStore`` in memory; ``read_width`` plays the DynamoDB client's connection pool
    (how many calls one read wave holds), so ``read_round_trips`` counts alike."""

    def __init__(self, read_width: int = 50) -> None:
        self._lock = threading.RLock()
        self._width = max(1, read_width)
        self.read_round_trips = 0
        self._tasks: dict[str, _Task] = {}
        self._deployments: dict[tuple[str, str], _Deployment] = {}
        # A service's deployment index, by the same position DynamoDB sorts on.
        self._index: dict[str, dict[str, IndexEntry]] = {}
        self._live: dict[str, set[str]] = {}
        self._stops: dict[str, dict[str, str]] = {}  # service -> {position: task id}
        self._active: set[tuple[str, str]] = set()
        self._origins: dict[str, SessionOrigin] = {}
        self._opened: dict[str, dict[str, float]] = {}  # task -> {fp: created at}
        self._closed: dict[str, dict[str, SessionClosed]] = {}  # task -> {fp: the close}
        self._pending: dict[str, NotFound] = {}
        self._locks: dict[tuple[str, Cause], LossLock] = {}
        self._dep_losses: dict[tuple[str, str], dict[str, float]] = {}
        self._guards: dict[tuple[str, str, Guard], dict[str, StoredGuardValue]] = {}

    def _trips(self, calls: int) -> None:
        if calls:
            self.read_round_trips += -(-calls // self._width)

    # --- ECS facts ------------------------------------------------------------------------

    def record_deployment(self, obs: DeploymentObserved) -> DeploymentRecord:
        return self._merge_deployment(obs.service, obs.deployment_id, deployment_tags(obs))

    def record_settings(
        self, service: str, deployment_id: str, settings: DeploymentSettings
    ) -> DeploymentRecord:
        return self._merge_deployment(service, deployment_id, settings_tags(settings))

    def _merge_deployment(
        self, service: str, deployment_id: str, tags: list[str]
    ) -> DeploymentRecord:
        with self._lock:
            dep = self._deployments.setdefault((service, deployment_id), _Deployment())
            dep.tags.update(tags)
            record = self._record(service, deployment_id, dep)
            if record.window is not None:
                pos = f"{sortable(record.window.started_at)}#{deployment_id}"
                index = self._index.setdefault(service, {})
                old = index.get(pos)
                merged = frozenset(dep.tags) | (old.facts if old else frozenset())
                at = float(sortable(record.window.started_at))
                index[pos] = IndexEntry(service, at, deployment_id, merged)
            if not record.report.sent:
                self._active.add((service, deployment_id))
            return record

    @staticmethod
    def _record(service: str, deployment_id: str, dep: _Deployment) -> DeploymentRecord:
        return DeploymentRecord(
            service,
            deployment_id,
            deployment_from_tags(service, deployment_id, dep.tags),
            has_settings(dep.tags),
            dep.report,
        )

    def record_hook(self, hook: HookObserved) -> None:
        pos = f"{sortable(hook.at)}#{_HOOK_MARK}#{hook.stage}#{hook.status}"
        entry = IndexEntry(
            hook.service,
            float(sortable(hook.at)),
            hook=HookStage(hook.stage, hook.status, float(hook.at)),
        )
        with self._lock:
            self._index.setdefault(hook.service, {})[pos] = entry

    def record_task(self, obs: TaskFacts) -> TaskMerge | None:
        tags = task_tags(obs)
        if not tags:
            return None
        with self._lock:
            task = self._tasks.setdefault(obs.task_id, _Task())
            result = TaskMerge(task_from_tags(obs.task_id, [*task.tags, *tags]), task.revisited)
            task.tags.update(tags)
            merged = result.facts
            if merged.service is None:
                return result
            began = merged.stop_began
            if began is None:
                self._live.setdefault(merged.service, set()).add(merged.task_id)
            else:
                stops = self._stops.setdefault(merged.service, {})
                stops[f"{sortable(began)}#{merged.task_id}"] = merged.task_id
                self._live.get(merged.service, set()).discard(merged.task_id)
            return result

    def mark_revisited(self, task_id: str, stop_mark: str) -> None:
        with self._lock:
            self._tasks.setdefault(task_id, _Task()).revisited = stop_mark

    def drop_live(self, service: str, task_id: str) -> None:
        with self._lock:
            self._live.get(service, set()).discard(task_id)

    # --- session facts --------------------------------------------------------------------

    def record_sessions(
        self, created: Iterable[SessionCreated], closed: Iterable[SessionClosed]
    ) -> None:
        with self._lock:
            for c in created:  # immutable puts: the last identical put changes nothing
                self._origins[c.fingerprint] = SessionOrigin(
                    c.task_id, float(c.at), c.client_name or None
                )
                self._opened.setdefault(c.task_id, {})[c.fingerprint] = float(c.at)
            for x in closed:
                close = SessionClosed(x.fingerprint, x.task_id, float(x.at), x.reason or None)
                self._closed.setdefault(x.task_id, {})[x.fingerprint] = close

    def store_pending(self, occurrences: Iterable[NotFound]) -> None:
        with self._lock:
            for nf in occurrences:
                self._pending[nf.key] = nf

    def drop_pending(self, occurrences: Iterable[NotFound]) -> None:
        with self._lock:
            for nf in occurrences:
                self._pending.pop(nf.key, None)

    def pending(self) -> list[NotFound]:
        with self._lock:
            self._trips(1)
            return [self._pending[k] for k in sorted(self._pending)]

    # --- losses ---------------------------------------------------------------------------

    def record_deployment_loss(
        self, service: str, deployment_id: str, fingerprint: str, at: float
    ) -> None:
        with self._lock:
            losses = self._dep_losses.setdefault((service, deployment_id), {})
            losses[fingerprint] = min(float(at), losses.get(fingerprint, float(at)))

    def claim_lock(self, lock: LossLock, tiebreak: float | None, now: float) -> LockClaim | None:
        key = (lock.fingerprint, lock.cause)
        with self._lock:
            old = self._locks.get(key)
            if old is not None:
                earlier = old.at < lock.at
                same = old.at == lock.at
                wins_tie = (
                    same
                    and tiebreak is not None
                    and (old.deployment_started_at is None or old.deployment_started_at < tiebreak)
                )
                if earlier or (same and not wins_tie):
                    return None
            stored = replace(
                lock,
                at=float(lock.at),
                deployment_started_at=tiebreak,
                decided_at=float(now),
            )
            if old is not None:  # DynamoDB's SET: attributes not written keep their values
                stored = replace(
                    stored,
                    service=stored.service or old.service,
                    origin_task=stored.origin_task or old.origin_task,
                    deployment_id=stored.deployment_id or old.deployment_id,
                    basis=stored.basis or old.basis,
                    deployment_started_at=(
                        tiebreak if tiebreak is not None else old.deployment_started_at
                    ),
                    decided_at=old.decided_at,
                    retracted_at=old.retracted_at,
                )
            self._locks[key] = stored
            return LockClaim(counted=old is None, previous=old)

    def retract_lock(
        self, fingerprint: str, cause: Cause, now: float, at: float | None = None
    ) -> bool:
        with self._lock:
            old = self._locks.get((fingerprint, cause))
            if old is None or old.retracted_at is not None:
                return False
            if at is not None and old.at != float(at):
                return False
            self._locks[(fingerprint, cause)] = replace(old, retracted_at=float(now))
            return True

    def reinstate_lock(self, fingerprint: str, cause: Cause, at: float) -> bool:
        with self._lock:
            old = self._locks.get((fingerprint, cause))
            if old is None or old.retracted_at is None or old.at != float(at):
                return False
            self._locks[(fingerprint, cause)] = replace(old, retracted_at=None)
            return True

    def session_locks(self, fingerprint: str) -> list[LossLock]:
        with self._lock:
            return [
                v for (fp, _), v in sorted(self._locks.items(), key=_by_cause) if fp == fingerprint
            ]

    def task_locks(self, task_id: str) -> list[LossLock]:
        fps = [span.fingerprint for span in self.task_sessions(task_id)]
        with self._lock:
            keys = [(f, c) for f in fps for c in Cause if c is not Cause.PENDING]
            self._trips(-(-len(keys) // 100))
            found = {k: self._locks[k] for k in keys if k in self._locks}
            return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1].value))]

    def deployment_losses(self, service: str, deployment_id: str) -> list[DeploymentLoss]:
        with self._lock:
            self._trips(1)
            losses = dict(self._dep_losses.get((service, deployment_id), {}))
            self._trips(-(-len(losses) // 100))
            out = []
            for fp in sorted(losses):
                lock = self._locks.get((fp, Cause.DEPLOYMENT))
                out.append(
                    DeploymentLoss(
                        fp,
                        losses[fp],
                        lock.deployment_id if lock else None,
                        lock is not None and lock.retracted_at is not None,
                    )
                )
            return out

    # --- deployments and their reports ----------------------------------------------------

    def active(self) -> list[tuple[str, str]]:
        with self._lock:
            self._trips(1)
            return sorted(self._active, key=lambda sd: f"{sd[0]}#{sd[1]}")

    def deployments(
        self, ids: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], DeploymentRecord]:
        wanted = list(dict.fromkeys(ids))
        with self._lock:
            self._trips(-(-len(wanted) // 100))
            return {
                sd: self._record(*sd, self._deployments[sd])
                for sd in wanted
                if sd in self._deployments
            }

    def drop_active(self, service: str, deployment_id: str) -> None:
        with self._lock:
            self._active.discard((service, deployment_id))

    def flag_followup(self, service: str, deployment_id: str, now: float) -> None:
        with self._lock:
            dep = self._deployments.get((service, deployment_id))
            if dep is not None and report_state.can_flag_followup(dep.report):
                dep.report = report_state.flagged(dep.report, now)
                self._active.add((service, deployment_id))

    def claim_report(self, service: str, deployment_id: str, now: float, stale_s: float) -> bool:
        with self._lock:
            dep = self._deployments.get((service, deployment_id))
            if dep is None or not report_state.can_claim(dep.report, now, stale_s):
                return False
            dep.report = report_state.claimed(dep.report, now)
            return True

    def release_report(self, service: str, deployment_id: str) -> None:
        with self._lock:
            dep = self._deployments.setdefault((service, deployment_id), _Deployment())
            dep.report = report_state.released(dep.report)

    def mark_sent(self, service: str, deployment_id: str, now: float, end: str) -> None:
        with self._lock:
            dep = self._deployments.setdefault((service, deployment_id), _Deployment())
            dep.report = report_state.marked_sent(dep.report, now, end)
            self._active.discard((service, deployment_id))

    def claim_followup(
        self, service: str, deployment_id: str, now: float, every_s: float, end: str
    ) -> bool:
        with self._lock:
            dep = self._deployments.get((service, deployment_id))
            if dep is None or not report_state.can_claim_followup(dep.report, now, every_s):
                return False
            dep.report = report_state.followup_claimed(dep.report, now, end)
            return True

    # --- the deployment guards' records ---------------------------------------------------

    def claim_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> bool:
        stored = {k: v for k, v in guard_fields(fields).items() if v is not None}
        with self._lock:
            key = (service, deployment_id, guard)
            if key in self._guards:
                return False
            self._guards[key] = stored
            return True

    def release_guard(self, service: str, deployment_id: str, guard: Guard) -> None:
        with self._lock:
            self._guards.pop((service, deployment_id, guard), None)

    def update_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> None:
        values = guard_fields(fields)
        with self._lock:
            record = self._guards.setdefault((service, deployment_id, guard), {})
            for name, value in values.items():
                if value is None:
                    record.pop(name, None)
                else:
                    record[name] = value

    def guards_of(self, service: str, deployment_id: str) -> dict[Guard, GuardRecord]:
        with self._lock:
            self._trips(1)
            return {
                g: GuardRecord(service, deployment_id, g, dict(fields))
                for (s, d, g), fields in sorted(self._guards.items())
                if (s, d) == (service, deployment_id)
            }

    # --- reads ----------------------------------------------------------------------------

    def read(self, wave: ReadWave) -> WaveResult:
        keys = len(dict.fromkeys(wave.sessions)) + len(dict.fromkeys(wave.tasks))
        keys += len(dict.fromkeys(wave.closes)) + len(dict.fromkeys(wave.deployment_locks))
        requests = list(dict.fromkeys(wave.indexes))
        with self._lock:
            self._trips(-(-keys // 100) + len(requests))
            origins = {fp: self._origins[fp] for fp in wave.sessions if fp in self._origins}
            tasks = {t: self._facts(t) for t in wave.tasks if t in self._tasks}
            indexes = {r: self._index_read(r) for r in requests}
            closes = {
                fp: self._closed[t][fp] for t, fp in wave.closes if fp in self._closed.get(t, {})
            }
            locks = {
                fp: self._locks[(fp, Cause.DEPLOYMENT)]
                for fp in wave.deployment_locks
                if (fp, Cause.DEPLOYMENT) in self._locks
            }
        return WaveResult(origins, tasks, indexes, closes, locks)

    def _facts(self, task_id: str) -> TaskFacts:
        return task_from_tags(task_id, self._tasks[task_id].tags)

    def _index_read(self, req: IndexRequest) -> list[IndexEntry]:
        """DynamoDB's Query over ``D#{position}``: [since, upto] in sort order, newest first
        when there is no lower bound, at most ``limit``."""
        hi = f"{sortable(req.upto)}~"
        lo = "" if req.since is None else sortable(req.since)
        index = self._index.get(req.service, {})
        positions = sorted(p for p in index if lo <= p <= hi)
        if req.since is None:
            positions.reverse()
        if req.limit:
            positions = positions[: req.limit]
        return [index[p] for p in positions]

    def tasks(self, task_ids: Iterable[str]) -> dict[str, TaskFacts]:
        wanted = list(dict.fromkeys(task_ids))
        with self._lock:
            self._trips(-(-len(wanted) // 100))
            return {t: self._facts(t) for t in wanted if t in self._tasks}

    def live_tasks(self, service: str) -> list[str]:
        with self._lock:
            self._trips(1)
            return sorted(self._live.get(service, set()))

    def stops_between(self, service: str, lo: float, hi: float) -> list[str]:
        with self._lock:
            self._trips(1)
            a, b = sortable(lo), sortable(hi) + "~"
            stops = self._stops.get(service, {})
            return sorted({task for pos, task in stops.items() if a <= pos <= b})

    def task_sessions(self, task_id: str) -> list[SessionSpan]:
        with self._lock:
            self._trips(1)
            opened = self._opened.get(task_id, {})
            closed = {fp: c.at for fp, c in self._closed.get(task_id, {}).items()}
            return [
                SessionSpan(fp, opened.get(fp), closed.get(fp)) for fp in sorted({*opened, *closed})
            ]

    def deployments_before(self, service: str, at: float, limit: int) -> list[DeploymentWindow]:
        with self._lock:
            self._trips(1)
            return windows_from_entries(self._index_read(IndexRequest(service, at, limit)))

    def windows_of(self, service: str, lo: float, hi: float) -> list[DeploymentWindow]:
        with self._lock:
            self._trips(1)
            entries = self._index_read(IndexRequest(service, hi, None, since=lo))
            return windows_from_entries(entries)


def _by_cause(item: tuple[tuple[str, Cause], LossLock]) -> str:
    return item[0][1].value
