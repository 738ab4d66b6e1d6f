"""Facts the handlers extract from their inputs and the ledger stores idempotently.

Each fact is keyed by its own identity (see ``detectors.ledger``), so storing it twice is a
no-op and storing facts in any order converges to the same ledger. A task observation has no
type here: it is a ``core.TaskFacts`` holding what one event said (see its docstring).
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
