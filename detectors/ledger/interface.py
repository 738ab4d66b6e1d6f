"""The ledger's interface: what the detectors store and read, in typed records.

Like Powertools' idempotency persistence layer, the storage sits behind one small interface
with two implementations of the same semantics: ``DynamoDBLedger`` (the Lambdas) and
``InMemoryLedger`` (tests, the lab's fast paths, the benchmark). Both pass the same contract
suite (tests/detectors/test_detectors_ledger_contract.py).

Semantics every implementation keeps:
- merges are idempotent and order-free: task and deployment facts accumulate (earliest time,
  smallest string per fact), session facts are immutable puts;
- ``claim_lock`` is a conditional write: the lock keeps the earliest 404, a same-time write
  wins only with a larger ``tiebreak``; ``counted`` is True for exactly the one write that
  created the lock, and ``previous`` is the lock as it was just before the write (ALL_OLD);
  ``retract_lock`` marks a lock taken back exactly once (and only while it holds the 404
  named, when one is), ``reinstate_lock`` clears that mark exactly once;
- the report's transitions (``detectors.report_state``) are conditional: a claim succeeds
  once (or again when stale), a follow-up is flagged only on a sent report;
- a guard's record (``claim_guard``) is created once: exactly one caller wins it, whatever
  the overlap or re-delivery; ``update_guard`` sets fields (creating the record if absent);
- the ledger decides nothing: which deployment owns a loss, whether a task's sessions owe a
  second look, which loss entries a report counts are the rules' (``detectors.rules``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

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
from sessionwatch.detectors.ledger.records import (
    DeploymentLoss,
    DeploymentRecord,
    Guard,
    GuardRecord,
    GuardValue,
    LockClaim,
    LossLock,
    ReadWave,
    TaskMerge,
    WaveResult,
)


class LedgerStore(Protocol):
    """Every call the detectors make to their ledger."""

    read_round_trips: int  # read waves made (tests and the benchmark count them)

    # --- ECS facts ----------------------------------------------------------------------
    def record_deployment(self, obs: DeploymentObserved) -> DeploymentRecord: ...
    def record_settings(
        self, service: str, deployment_id: str, settings: DeploymentSettings
    ) -> DeploymentRecord: ...
    def record_hook(self, hook: HookObserved) -> None: ...
    def record_task(self, obs: TaskFacts) -> TaskMerge | None:
        """Merge; keep the service's live-task and stop indexes. None: nothing to store."""
        ...

    def mark_revisited(self, task_id: str, stop_mark: str) -> None: ...
    def drop_live(self, service: str, task_id: str) -> None: ...

    # --- session facts and pending 404s --------------------------------------------------
    def record_sessions(
        self, created: Iterable[SessionCreated], closed: Iterable[SessionClosed]
    ) -> None: ...
    def store_pending(self, occurrences: Iterable[NotFound]) -> None: ...
    def drop_pending(self, occurrences: Iterable[NotFound]) -> None: ...
    def pending(self) -> list[NotFound]: ...

    # --- losses ---------------------------------------------------------------------------
    def claim_lock(self, lock: LossLock, tiebreak: float | None, now: float) -> LockClaim | None:
        """Write the (session, cause) lock unless it holds an earlier 404 (or the same one
        with a tiebreak at least as large); None when nothing was written."""
        ...

    def retract_lock(
        self, fingerprint: str, cause: Cause, now: float, at: float | None = None
    ) -> bool:
        """Mark the (session, cause) lock as taken back (a later verdict of the same 404, or
        an earlier 404 of the session that owns it): a conditional write, True only for the
        one call that marked it (so its -1 is emitted once, however many later facts revise
        it); False when absent, already marked, or (``at`` given) holding another 404."""
        ...

    def reinstate_lock(self, fingerprint: str, cause: Cause, at: float) -> bool:
        """Clear the mark of a taken-back lock that now holds the 404 at ``at`` (moved there,
        the session's earliest): a conditional write, True only for the one call that cleared
        it (so its +1 is emitted once); False when not marked or holding another 404."""
        ...

    def record_deployment_loss(
        self, service: str, deployment_id: str, fingerprint: str, at: float
    ) -> None:
        """The deployment's loss entry for the session; the earliest time wins."""
        ...

    def session_locks(self, fingerprint: str) -> list[LossLock]: ...
    def task_locks(self, task_id: str) -> list[LossLock]:
        """The count locks of the sessions created on a task (one query, one read wave)."""
        ...

    def deployment_losses(self, service: str, deployment_id: str) -> list[DeploymentLoss]:
        """The deployment's loss entries with their locks' owners (one query, one read wave)."""
        ...

    # --- deployments and their reports ---------------------------------------------------
    def active(self) -> list[tuple[str, str]]: ...
    def deployments(
        self, ids: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], DeploymentRecord]: ...
    def drop_active(self, service: str, deployment_id: str) -> None: ...
    def flag_followup(self, service: str, deployment_id: str, now: float) -> None: ...
    def claim_report(
        self, service: str, deployment_id: str, now: float, stale_s: float
    ) -> bool: ...
    def release_report(self, service: str, deployment_id: str) -> None: ...
    def mark_sent(self, service: str, deployment_id: str, now: float, end: str) -> None: ...
    def claim_followup(
        self, service: str, deployment_id: str, now: float, every_s: float, end: str
    ) -> bool: ...

    # --- the deployment guards' records ----------------------------------------------------
    def claim_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> bool:
        """Create the guard's record if absent; True only for the one call that created it."""
        ...

    def release_guard(self, service: str, deployment_id: str, guard: Guard) -> None:
        """Give a claim back (its action failed): the next caller may claim it again."""
        ...

    def update_guard(
        self, service: str, deployment_id: str, guard: Guard, fields: Mapping[str, GuardValue]
    ) -> None:
        """Set these fields (the others keep their values); creates the record if absent."""
        ...

    def guards_of(self, service: str, deployment_id: str) -> dict[Guard, GuardRecord]:
        """Every guard record of a deployment (one query)."""
        ...

    # --- reads ----------------------------------------------------------------------------
    def read(self, wave: ReadWave) -> WaveResult:
        """One read round trip: session origins, task facts and index reads, at once."""
        ...

    def tasks(self, task_ids: Iterable[str]) -> dict[str, TaskFacts]: ...
    def live_tasks(self, service: str) -> list[str]: ...
    def stops_between(self, service: str, lo: float, hi: float) -> list[str]: ...
    def task_sessions(self, task_id: str) -> list[SessionSpan]: ...
    def deployments_before(self, service: str, at: float, limit: int) -> list[DeploymentWindow]:
        """The newest ``limit`` index entries up to ``at``, as windows."""
        ...

    def windows_of(self, service: str, lo: float, hi: float) -> list[DeploymentWindow]: ...
