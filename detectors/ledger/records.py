"""What goes into the ledger and comes out of it: typed records, no storage names.

Both implementations (``DynamoDBLedger``, ``InMemoryLedger``) take and return these; the
callers never see an item, an attribute name or a sort key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from sessionwatch.contract import Cause
from sessionwatch.detectors.facts import (
    DeploymentWindow,
    HookStage,
    SessionClosed,
    SessionOrigin,
    TaskFacts,
)
from sessionwatch.detectors.report_state import ReportState

# How many index entries (deployments and hook stages) one decision read returns, newest
# first: enough for overlapping rollouts with their hook stages; an older stop takes one more.
DEPLOYMENT_QUERY_LIMIT = 25


@dataclass(frozen=True)
class TaskMerge:
    """A task's facts after merging one observation, and the stop times its sessions were
    last decided again for (``revisited``; ``LedgerStore.mark_revisited``)."""

    facts: TaskFacts
    revisited: str | None = None

    @property
    def stop_mark(self) -> str:
        """The task's stop times as one value, to tell whether they changed since a revisit."""
        return f"{self.facts.stopping_at}|{self.facts.stopped_at}"


@dataclass(frozen=True)
class DeploymentRecord:
    """A deployment as stored: its window (None until its IN_PROGRESS was seen), whether its
    one ECS read was made, and its report's state (``detectors.report_state``)."""

    service: str
    deployment_id: str
    window: DeploymentWindow | None = None
    has_settings: bool = False
    report: ReportState = field(default_factory=ReportState)


@dataclass(frozen=True)
class LossLock:
    """One (session, cause) count lock as stored: the earliest 404 counted under that cause."""

    fingerprint: str
    cause: Cause
    serving_task: str
    at: float
    service: str | None = None
    origin_task: str | None = None
    deployment_id: str | None = None
    deployment_started_at: float | None = None
    basis: str = ""
    decided_at: float | None = None
    # When a later verdict of the same 404 took this count back (``LedgerStore.retract_lock``).
    retracted_at: float | None = None


@dataclass(frozen=True)
class LockClaim:
    """What writing a count lock did: ``counted`` when this write created it (emit the metric);
    ``previous`` is the lock as it was before (None when new)."""

    counted: bool
    previous: LossLock | None = None


@dataclass(frozen=True)
class DeploymentLoss:
    """One loss entry of a deployment: the session, its earliest 404 charged to it, and the
    deployment its ``deployment`` count lock names now (``owner``; None: no lock yet)."""

    fingerprint: str
    at: float
    owner: str | None = None
    retracted: bool = False  # its ``deployment`` lock was taken back (a later verdict)


@dataclass(frozen=True)
class IndexRequest:
    """A read of one service's deployment index (deployments and hook stages by time):
    entries at or before ``upto`` (and from ``since`` when set), newest first, at most
    ``limit`` (None: all)."""

    service: str
    upto: float
    limit: int | None = DEPLOYMENT_QUERY_LIMIT
    since: float | None = None


@dataclass(frozen=True)
class IndexEntry:
    """One entry of a service's deployment index: a deployment's facts copied at its start
    (``deployment_id`` and its encoded ``facts``), or a lifecycle ``hook`` stage; ``at`` is
    its place in the index. Read back into windows by ``windows_from_entries``."""

    service: str
    at: float
    deployment_id: str | None = None
    facts: frozenset[str] = frozenset()
    hook: HookStage | None = None


@dataclass(frozen=True)
class ReadWave:
    """What one read round trip fetches: session origins, task facts, index reads, whether
    sessions were closed on a task (``closes``: (task id, fingerprint) pairs), and sessions'
    ``deployment`` count locks (``deployment_locks``: fingerprints)."""

    sessions: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    indexes: tuple[IndexRequest, ...] = ()
    closes: tuple[tuple[str, str], ...] = ()
    deployment_locks: tuple[str, ...] = ()


@dataclass(frozen=True)
class WaveResult:
    origins: dict[str, SessionOrigin]  # by fingerprint
    tasks: dict[str, TaskFacts]
    indexes: dict[IndexRequest, list[IndexEntry]]
    closes: dict[str, SessionClosed] = field(default_factory=dict)  # by fingerprint
    deployment_locks: dict[str, LossLock] = field(default_factory=dict)  # by fingerprint


class Guard(StrEnum):
    """The deployment guards that keep a record per deployment (``detectors.guards``)."""

    GATE = "GATE"  # the drain gate (detectors/drain_gate.py)
    STOP = "STOP"  # stop on loss (detectors/stop_on_loss.py)
    ALERT = "ALERT"  # the first-loss alert (detectors/first_loss.py)


# A guard's field as written: numbers, strings or fingerprint lists; read back as
# ``float``, ``str`` or a sorted ``list[str]`` (an empty list reads back as absent).
GuardValue = str | float | int | Sequence[str]
# At most this many fingerprints per list: one DynamoDB item stays far under its 400 KB.
MAX_GUARD_FINGERPRINTS = 500


@dataclass(frozen=True)
class GuardRecord:
    """What one guard recorded for one deployment (its claim and what it did)."""

    service: str
    deployment_id: str
    guard: Guard
    fields: Mapping[str, GuardValue] = field(default_factory=dict)
