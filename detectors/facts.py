"""Facts the handlers extract from their inputs and the ledger stores idempotently.

Each fact is keyed by its own identity (see ``detectors.ledger``), so storing it twice is a
no-op and storing facts in any order converges to the same ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DeploymentObserved:
    """An ECS deployment began (``ended`` False) or ended (COMPLETED/FAILED)."""

    service: str
    deployment_id: str
    at: float
    ended: bool
    outcome: str | None = None


@dataclass(frozen=True)
class TaskObserved:
    """One observation of a task: each time is what this event said (None = not said)."""

    task_id: str
    service: str | None = None
    started_by: str | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None


@dataclass(frozen=True)
class SessionCreated:
    fingerprint: str
    task_id: str
    at: float


@dataclass(frozen=True)
class SessionClosed:
    fingerprint: str
    task_id: str
    at: float
    reason: str | None = None


@dataclass(frozen=True)
class BadInput:
    """Something we could not use: counted as DetectorBadInput and logged with ``context``.

    ``context`` locates the input (event id, log stream, log event id) and never carries the
    raw payload, which could hold a raw session id.
    """

    reason: str
    context: dict[str, str] = field(default_factory=dict)
