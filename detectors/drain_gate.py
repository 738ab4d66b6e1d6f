"""The drain gate: an ECS lifecycle hook on POST_PRODUCTION_TRAFFIC_SHIFT that holds the blue
tasks' clean-up while they still hold live sessions, up to ``max_hold``.

ECS facts it rests on (developer guide, "Lambda hooks for Amazon ECS service deployments" and
"Lifecycle hooks for Amazon ECS service deployments"): the hook answers ``{"hookStatus":
"SUCCEEDED" | "FAILED" | "IN_PROGRESS"}``; IN_PROGRESS is invoked again after ``callBackDelay``
seconds (default 30); ``hookDetails`` returned with IN_PROGRESS comes back on the next call; a
hook that answers FAILED, answers no valid status or fails rolls the deployment back. BAKE_TIME
and CLEAN_UP follow POST_PRODUCTION_TRAFFIC_SHIFT, so holding this hook holds blue's clean-up.
Every call's payload carries ``serviceArn`` and ``hookDetails``.

Decisions (each one logged, and summed up in the deployment's report):
- Which sessions hold it: sessions open in the ledger (created, no close: the server logs a close
  when the SDK expires one idle for its ``session_idle_timeout``) on the tasks the deployment
  replaces (blue), created BEFORE the gate's first call, i.e. before the production traffic
  had shifted. Sessions that blue's sticky clients open after the shift do not hold it: else
  a client that reconnects on blue would hold the gate until ``max_hold`` every time.
- SUCCEEDED when none is left, when ``max_hold`` has passed since the first call, or when the
  deployment is still unknown to the ledger ``facts_wait`` after the first call.
- When SessionWatch itself is broken (the ledger unreadable, a bug, a malformed payload) the
  gate answers SUCCEEDED, logs it and counts ``DrainGateFailed``: the gate only delays a
  clean-up, so failing open gives the deployment it would have had without the gate, where
  FAILED (or raising) would roll back a good deployment.

``decide`` is pure; ``gate_view`` reads the ledger's typed records (``LedgerStore``);
``run_gate`` ties them together and records what the gate did (``update_guard``), for the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sessionwatch.contract import HOOK_DETAILS_KEY
from sessionwatch.detectors.facts import DeploymentWindow
from sessionwatch.detectors.ledger import Guard, GuardValue, LedgerStore
from sessionwatch.detectors.rules import replaces

SUCCEEDED, IN_PROGRESS = "SUCCEEDED", "IN_PROGRESS"
HOLDING, DRAINED, MAX_HOLD, NO_FACTS, BROKEN = (
    "holding",
    "drained",
    "max_hold",
    "deployment_unknown",
    "sessionwatch_failed",
)
# How far back a deployment is looked for in the service's index (one bounded Query).
LOOKBACK_S = 86400.0


class BadHookPayload(ValueError):
    """The hook payload is not what ECS documents (no service ARN)."""


@dataclass(frozen=True)
class GateSettings:
    max_hold_s: float
    callback_s: float
    facts_wait_s: float  # how long an unknown deployment may be waited for (the grace period)


@dataclass(frozen=True)
class GateState:
    """What the gate carries between calls, in ``hookDetails``."""

    first_at: float
    held: int
    calls: int = 1
    deployment_id: str | None = None

    def to_details(self) -> dict[str, Any]:
        return {
            HOOK_DETAILS_KEY: {
                "first_at": self.first_at,
                "held": self.held,
                "calls": self.calls,
                "deployment_id": self.deployment_id,
            }
        }

    @staticmethod
    def from_details(details: object) -> GateState | None:
        """The state a previous call returned; None on a first call or anything malformed
        (a malformed state restarts the hold, bounded by max_hold again: never a failure)."""
        if not isinstance(details, Mapping):
            return None
        raw = details.get(HOOK_DETAILS_KEY)
        if not isinstance(raw, Mapping):
            return None
        first, held = _number(raw.get("first_at")), _number(raw.get("held"))
        calls, dep = _number(raw.get("calls", 1)), raw.get("deployment_id")
        if first is None or held is None or calls is None:
            return None
        if dep is not None and not isinstance(dep, str):
            return None
        return GateState(first, int(held), int(calls), dep)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class GateView:
    """What the ledger says now: the deployment in progress and blue's live sessions."""

    deployment_id: str | None
    live: frozenset[str] = frozenset()  # fingerprints


@dataclass(frozen=True)
class GateDecision:
    status: str
    reason: str
    state: GateState
    live: int
    callback_s: int | None = None

    def response(self) -> dict[str, Any]:
        """The hook's answer to ECS."""
        out: dict[str, Any] = {"hookStatus": self.status}
        if self.status == IN_PROGRESS:
            out["callBackDelay"] = self.callback_s
            out["hookDetails"] = self.state.to_details()
        return out

    def held_s(self, now: float) -> float:
        return max(0.0, now - self.state.first_at)


def decide(
    state: GateState | None, view: GateView, now: float, settings: GateSettings
) -> GateDecision:
    """The gate's answer for this call (pure)."""
    if state is None:
        state = GateState(now, len(view.live), 1, view.deployment_id)
    elif state.deployment_id is None:  # the deployment's first sight: what blue holds now
        state = GateState(state.first_at, len(view.live), state.calls + 1, view.deployment_id)
    else:
        state = GateState(state.first_at, state.held, state.calls + 1, state.deployment_id)
    held = now - state.first_at
    if view.deployment_id is None:
        if held >= settings.facts_wait_s:
            return GateDecision(SUCCEEDED, NO_FACTS, state, 0)
        return _hold(state, 0, settings.facts_wait_s - held, settings)
    if not view.live:
        return GateDecision(SUCCEEDED, DRAINED, state, 0)
    if held >= settings.max_hold_s:
        return GateDecision(SUCCEEDED, MAX_HOLD, state, len(view.live))
    return _hold(state, len(view.live), settings.max_hold_s - held, settings)


def _hold(state: GateState, live: int, left_s: float, settings: GateSettings) -> GateDecision:
    # Called back no later than the hold's end, and at least 1 s later (a whole number).
    delay = max(1, math.ceil(min(settings.callback_s, left_s)))
    return GateDecision(IN_PROGRESS, HOLDING, state, live, delay)


def failed_open(state: GateState | None, now: float) -> GateDecision:
    """The answer when SessionWatch itself failed: go on (see the module docstring)."""
    return GateDecision(SUCCEEDED, BROKEN, state or GateState(now, 0), 0)


def service_of(event: object) -> tuple[str, str]:
    """``(cluster, service)`` from the payload's ``serviceArn``
    (``arn:aws:ecs:region:account:service/cluster/service``)."""
    arn = event.get("serviceArn") if isinstance(event, Mapping) else None
    if not isinstance(arn, str) or not arn.startswith("arn:") or len(arn) > 1600:
        raise BadHookPayload("no serviceArn in the hook payload")
    parts = arn.split(":", 5)[-1].split("/")
    if len(parts) != 3 or parts[0] != "service" or not parts[1] or not parts[2]:
        raise BadHookPayload("serviceArn is not service/<cluster>/<service>")
    return parts[1], parts[2]


def current_deployment(windows: list[DeploymentWindow], now: float) -> DeploymentWindow | None:
    """The service's newest deployment that began by now and has not ended."""
    open_ = [w for w in windows if w.ended_at is None and w.started_at <= now + 5]
    return max(open_, key=lambda w: (w.started_at, w.deployment_id), default=None)


def gate_view(
    ledger: LedgerStore, service: str, cutoff: float, now: float, horizon: float
) -> GateView:
    """Blue's live sessions: open, created in [horizon, cutoff], on live tasks the deployment
    in progress replaces. Reads: one index Query, one Query of live tasks, one BatchGetItem of
    their facts, one Query per blue task (its sessions)."""
    window = current_deployment(ledger.windows_of(service, now - LOOKBACK_S, now + 5), now)
    if window is None:
        return GateView(None)
    facts = ledger.tasks(ledger.live_tasks(service))
    blue = [t for t in facts.values() if t.stop_began is None and replaces(window, t)]
    live = set()
    for task in blue:
        for span in ledger.task_sessions(task.task_id):
            created = span.created_at
            if span.closed_at is None and created is not None and horizon <= created <= cutoff:
                live.add(span.fingerprint)
    return GateView(window.deployment_id, frozenset(live))


def run_gate(
    event: Mapping[str, Any],
    ledger: LedgerStore,
    settings: GateSettings,
    now: float,
    horizon: float,
    cluster_name: str | None = None,
) -> tuple[str, GateDecision]:
    """One hook call: read, decide, record. Raises on any failure (the handler fails open)."""
    cluster, service = service_of(event)
    if cluster_name is not None and cluster != cluster_name:
        raise BadHookPayload("the hook's service is in another cluster than SessionWatch's")
    state = GateState.from_details(event.get("hookDetails"))
    cutoff = now if state is None else state.first_at
    view = gate_view(ledger, service, cutoff, now, horizon)
    decision = decide(state, view, now, settings)
    dep = decision.state.deployment_id
    if dep is not None:
        fields: dict[str, GuardValue] = {
            "first_at": decision.state.first_at,
            "held": decision.state.held,
            "calls": decision.state.calls,
            "live": decision.live,
            "reason": decision.reason,
        }
        if state is None or state.deployment_id is None:  # first call that knew it
            fields["held_fps"] = sorted(view.live)
        if decision.status == SUCCEEDED:
            fields |= {"released_at": now, "open_fps": sorted(view.live)}
        ledger.update_guard(service, dep, Guard.GATE, fields)
    return service, decision


def report_line(gate: Mapping[str, GuardValue], lost: set[str]) -> str | None:
    """What the gate did, for the deployment's report: "held 7 min for 12 session(s): 11
    ended, 1 lost at clean-up (max_hold)". None when it never ran for this deployment."""
    first, held = gate.get("first_at"), gate.get("held")
    if not isinstance(first, float) or not isinstance(held, float):
        return None
    released = gate.get("released_at")
    reason = str(gate.get("reason") or HOLDING)
    if not isinstance(released, float):
        return f"drain gate holding for {int(held)} session(s) (not released yet)"
    still = set(_strings(gate.get("open_fps")))
    held_fps = set(_strings(gate.get("held_fps")))
    n = int(held)
    still_held = still & held_fps if held_fps else still
    lost_held = len(still_held & lost)
    ended = n - len(still_held)
    rest = len(still_held) - lost_held
    text = (
        f"drain gate held {_minutes(released - first)} for {n} session(s): {ended} ended, "
        f"{lost_held} lost at clean-up"
    )
    if rest:
        text += f", {rest} open at release and not lost"
    return f"{text} (released: {reason})"


def _strings(value: GuardValue | None) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
