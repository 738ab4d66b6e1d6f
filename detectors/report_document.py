"""The per-deployment session-loss report: the document (fields, text, JSON), from plain facts.

What the reporter sends (docs/architecture.md, detector outputs); ``reporter_run`` gathers the
facts and publishes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sessionwatch.detectors.facts import (
    CANARY,
    LINEAR,
    SUPERSEDED,
    DeploymentWindow,
    SessionSpan,
    TaskFacts,
)
from sessionwatch.detectors.rules import replaces, stop_category, stopper
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
    """A task this deployment replaces: another, older lineage of the same service."""
    return replaces(window, task)


def replaced_tasks(
    window: DeploymentWindow,
    tasks: Sequence[TaskFacts],
    windows: Sequence[DeploymentWindow],
    grace_s: float,
) -> list[TaskFacts]:
    """Tasks whose scheduler stop this deployment made (``core.stopper`` among ``windows``)."""
    out = []
    for t in tasks:
        if stop_category(t) is not None or t.stop_began is None:
            continue
        d = stopper(t, windows, grace_s)
        if d is not None and d.deployment_id == window.deployment_id:
            out.append(t)
    return out


def how_it_ended(
    window: DeploymentWindow, windows: Sequence[DeploymentWindow], grace_s: float
) -> str:
    """COMPLETED, FAILED, rolled back (by the circuit breaker or an alarm), superseded, or
    in progress, from this deployment's end and the service's next deployment."""
    end = window.ended_at
    later = sorted(
        (
            w
            for w in windows
            if w.service == window.service
            and w.started_at > window.started_at
            and (end is None or w.started_at <= end + grace_s)
        ),
        key=lambda w: w.started_at,
    )
    rollback = next((w for w in later if w.rollback_to), None)
    if rollback is not None:
        why = (rollback.reason or "").lower()
        by = "circuit breaker" if "circuit breaker" in why else "alarm" if "alarm" in why else "ECS"
        by = "stop request" if "stop request" in why else by  # StopServiceDeployment
        # A rollback means this deployment failed, even while its FAILED event is still on its
        # way (until then the window is closed by the rollback's start, as SUPERSEDED).
        failed = window.outcome if window.outcome not in (None, SUPERSEDED) else "FAILED"
        return f"{failed}, rolled back by the {by} ({rollback.deployment_id})"
    if window.outcome:
        if window.outcome == SUPERSEDED and later:
            return f"SUPERSEDED by {later[0].deployment_id}"
        return window.outcome
    return "IN_PROGRESS"


def losses_per_step(window: DeploymentWindow, losses: Sequence[float]) -> list[int] | None:
    """For LINEAR/CANARY with a known production shift start and step bake time: the losses
    in each traffic step (step k = shift start + k x step bake time); else None."""
    shift = window.stage_at("PRODUCTION_TRAFFIC_SHIFT")
    step = window.step_bake_s
    if window.strategy not in (LINEAR, CANARY) or shift is None or not step:
        return None
    counts: dict[int, int] = {}
    for t in losses:
        k = max(0, int((t - shift) // step))
        counts[k] = counts.get(k, 0) + 1
    return [counts.get(k, 0) for k in range(max(counts, default=-1) + 1)]


def bake_time_s(window: DeploymentWindow) -> float | None:
    """The configured bake time, else the hooks' BAKE_TIME to CLEAN_UP span."""
    if window.bake_s is not None:
        return window.bake_s
    bake, clean = window.stage_at("BAKE_TIME"), window.stage_at("CLEAN_UP")
    return clean - bake if bake is not None and clean is not None else None


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
    strategy: str | None = None
    ended: str | None = None
    production_shift_at: float | None = None
    bake_time_s: float | None = None
    losses_per_step: list[int] | None = None
    # Lost sessions per client (clientInfo.name): who holds sessions, whom going stateless spares.
    clients_lost: dict[str, int] | None = None
    followup: bool = False
    drain_gate: str | None = None  # what the drain gate did (detectors/drain_gate.py)
    stopped: str | None = None  # stopped by SessionWatch on loss (detectors/stop_on_loss.py)
    advice: str = ADVICE
    lock_out: dict[str, Any] | None = None  # detectors.lockout.LockOut.to_json(), if any

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["started_at"] = _iso(self.started_at)
        doc["ended_at"] = _iso(self.ended_at)
        doc["first_loss_at"] = _iso(self.first_loss_at)
        doc["production_shift_at"] = _iso(self.production_shift_at)
        doc["spike_detected"] = any(s.spiked for s in self.spike)
        return doc

    def subject(self) -> str:
        what = "follow-up: " if self.followup else ""
        subject = (
            f"SessionWatch: {what}{self.service} deployment lost {self.sessions_lost} session(s)"
        )
        if self.lock_out:
            subject += f", {self.lock_out['refused']} request(s) refused by the ALB"
        return subject[:100]

    def to_text(self) -> str:
        lines = [
            f"Deployment report for service {self.service}",
            f"Deployment: {self.deployment_id} ({self.ended or self.outcome or 'unknown outcome'})",
            f"Strategy: {self.strategy or 'not known (decided as ROLLING)'}",
            f"Window: {_iso(self.started_at)} to {_iso(self.ended_at)}",
            "Production traffic shift: " + (_iso(self.production_shift_at) or "not known"),
            "Bake time: " + _secs(None if self.bake_time_s is None else int(self.bake_time_s)),
            f"Tasks replaced: {len(self.tasks_replaced)}",
            f"Sessions at risk (open on replaced tasks when they began draining): "
            f"{self.sessions_at_risk}",
            f"Sessions lost (cause=deployment): {self.sessions_lost}",
            "Session cliff (deployment start to first loss): "
            + (f"{self.session_cliff_s:.0f} s" if self.session_cliff_s is not None else "none"),
            *(
                [f"Losses per traffic step: {self.losses_per_step}"]
                if self.losses_per_step is not None
                else []
            ),
            *([f"Drain gate: {self.drain_gate}"] if self.drain_gate else []),
            *([f"Stop on loss: {self.stopped}"] if self.stopped else []),
            *(
                [
                    "Clients whose sessions were lost (they negotiate a handshake-era protocol; "
                    "served as 2026-07-28 they would hold none): "
                    + ", ".join(f"{name}={n}" for name, n in self.clients_lost.items())
                ]
                if self.clients_lost
                else []
            ),
            *(
                ["Follow-up: losses decided after this deployment's report was sent"]
                if self.followup
                else []
            ),
            "Deregistration delay: " + _secs(self.deregistration_delay_s),
            "Stop timeout: " + _secs(self.stop_timeout_s),
            *(
                ["Refused by the load balancer: " + str(self.lock_out["sentence"])]
                if self.lock_out
                else []
            ),
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
