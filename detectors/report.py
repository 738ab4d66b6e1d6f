"""The per-deployment session-loss report (DESIGN section 6), built from plain facts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sessionwatch.detectors.core import DeploymentWindow, TaskFacts, stop_category
from sessionwatch.detectors.ledger_items import SessionSpan
from sessionwatch.detectors.spike import SeriesSpike

ADVICE = (
    "Sessions live in the memory of the task that created them, so a rolling deployment loses "
    "every session still open on a replaced task. To lose fewer: raise the target group's "
    "deregistration delay and the container stop timeout above your sessions' typical idle "
    "gap so clients finish or re-initialise while the old task still answers; drain sessions "
    "on SIGTERM; make clients re-initialise on HTTP 404 / JSON-RPC -32600; or keep session "
    "state outside the task (or serve the stateless protocol)."
)


def is_replaced_by(task: TaskFacts, window: DeploymentWindow) -> bool:
    """A task this deployment replaces: not started by it, and older than it."""
    if task.service != window.service:
        return False
    if task.started_by is not None:
        return task.started_by != window.deployment_id
    return task.started_at is not None and task.started_at < window.started_at


def replaced_tasks(
    window: DeploymentWindow, tasks: Sequence[TaskFacts], grace_s: float
) -> list[TaskFacts]:
    """Old tasks the scheduler stopped (or began draining) inside the window."""
    return [
        t
        for t in tasks
        if is_replaced_by(t, window)
        and t.stop_began is not None
        and window.contains(t.stop_began, grace_s)
        and stop_category(t) is None
    ]


def open_at(spans: Sequence[SessionSpan], t: float) -> int:
    """Sessions open at ``t``: created by then and not closed before it."""
    return sum(
        1
        for s in spans
        if (s.created_at is None or s.created_at <= t) and (s.closed_at is None or s.closed_at >= t)
    )


def open_now(spans: Sequence[SessionSpan]) -> int:
    return sum(1 for s in spans if s.created_at is not None and s.closed_at is None)


@dataclass(frozen=True)
class DeploymentReport:
    service: str
    deployment_id: str
    outcome: str | None
    started_at: float
    ended_at: float | None
    tasks_replaced: list[str]
    sessions_at_risk: int
    sessions_lost: int
    first_loss_at: float | None
    session_cliff_s: float | None
    deregistration_delay_s: int | None
    stop_timeout_s: int | None
    spike: list[SeriesSpike]
    verdict_basis: str
    advice: str = ADVICE

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["started_at"] = _iso(self.started_at)
        doc["ended_at"] = _iso(self.ended_at)
        doc["first_loss_at"] = _iso(self.first_loss_at)
        doc["spike_detected"] = any(s.spiked for s in self.spike)
        return doc

    def subject(self) -> str:
        return f"SessionWatch: {self.service} deployment lost {self.sessions_lost} session(s)"[:100]

    def to_text(self) -> str:
        lines = [
            f"Deployment report for service {self.service}",
            f"Deployment: {self.deployment_id} ({self.outcome or 'unknown outcome'})",
            f"Window: {_iso(self.started_at)} to {_iso(self.ended_at)}",
            f"Tasks replaced: {len(self.tasks_replaced)}",
            f"Sessions at risk (open on replaced tasks when they began draining): "
            f"{self.sessions_at_risk}",
            f"Sessions lost (cause=deployment): {self.sessions_lost}",
            "Session cliff (deployment start to first loss): "
            + (f"{self.session_cliff_s:.0f} s" if self.session_cliff_s is not None else "none"),
            "Deregistration delay: " + _secs(self.deregistration_delay_s),
            "Stop timeout: " + _secs(self.stop_timeout_s),
        ]
        for s in self.spike:
            state = "SPIKE" if s.spiked else "no spike"
            lines.append(
                f"Metric check {s.label}: {s.window_total:g} in window vs {s.expected:g} "
                f"expected from baseline: {state}"
            )
        lines += [f"Verdict rests on: {self.verdict_basis}", "", "What to do: " + self.advice]
        lines += ["", "Facts as JSON:", json.dumps(self.to_json(), sort_keys=True)]
        return "\n".join(lines)


def verdict_basis(has_session_facts: bool, spike: Sequence[SeriesSpike]) -> str:
    """Per-session attribution wins where the ledger has session facts (issue 3)."""
    if has_session_facts:
        return "per-session attribution (server session events matched to ECS task stops)"
    if spike:
        return "metrics only (spike correlation against the pre-deployment baseline)"
    return "no session events and no metrics configured: nothing to attribute"


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _secs(v: int | None) -> str:
    return "not configured" if v is None else f"{v} s"
