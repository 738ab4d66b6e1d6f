"""The pure correlation core: given the facts known, decide the cause of each session_not_found.

Plain functions over plain frozen dataclasses, no AWS calls, so the same code runs in the
handlers, the reporter, the property tests and the benchmark. Times are epoch seconds (float).

Order independence (DESIGN section 5) comes from three rules:
- a verdict belongs to ONE occurrence (fingerprint, serving task, time): ``decide`` reads only
  that occurrence and the stored facts, never the session's other 404s, so which 404 arrived
  first cannot change it;
- a verdict is *final* only when no fact that could still arrive can change it; otherwise it is
  ``pending`` and decided again later, at the latest once the grace period has passed;
- the facts themselves only accumulate (sets of observations, earliest time wins), so the
  same facts in any order and with duplicates always merge to the same state.
Counting (one per session and cause) is the caller's: see ``detectors.classify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sessionwatch.contract import Cause

# The server clock and ECS's clock disagree a little; a 404 logged a moment before ECS says
# the origin task began draining is still a loss caused by that drain.
CLOCK_SKEW_S = 5.0

SCHEDULER_STOP = "ServiceSchedulerInitiated"
SUPERSEDED = "SUPERSEDED"
_FAILURE_STOP_CODES = frozenset({"EssentialContainerExited", "TaskFailedToStart"})
_INFRA_STOP_CODES = frozenset({"SpotInterruption", "TerminationNotice"})
_INFRA_REASON_WORDS = ("spot", "retire", "retirement", "maintenance", "host", "underlying")
_HEALTH_REASON_WORDS = ("health check", "health-check", "healthcheck")


@dataclass(frozen=True)
class DeploymentWindow:
    """One ECS deployment of a service: IN_PROGRESS until COMPLETED/FAILED (None = open)."""

    service: str
    deployment_id: str
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None

    def contains(self, t: float, grace_s: float) -> bool:
        """True when ``t`` falls in [start, end + grace]; an open window extends to now."""
        if t < self.started_at - CLOCK_SKEW_S:
            return False
        return self.ended_at is None or t <= self.ended_at + grace_s


@dataclass(frozen=True)
class TaskFacts:
    """Facts about one ECS task: what one event said, or everything the ledger has merged.

    One type serves both on purpose: an observation and the merge of many have the same
    fields, and the merge (``ledger_items.task_from_tags``: earliest time, smallest string per
    field) maps observations to facts of the same shape, so a single observation is simply
    the facts as that event saw them. ``None`` = not said (an observation) or not yet known.
    In merged facts ``stopped_reason`` holds the reason's marks (``reason_marks``) only.
    """

    task_id: str
    service: str | None = None
    started_by: str | None = None
    started_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None

    @property
    def stop_began(self) -> float | None:
        """When the task stopped serving: draining start if seen, else the stop itself."""
        times = [t for t in (self.stopping_at, self.stopped_at) if t is not None]
        return min(times) if times else None


@dataclass(frozen=True)
class SessionOrigin:
    """Where and when a session was created (from ``session_created``)."""

    task_id: str
    created_at: float


@dataclass(frozen=True)
class NotFound:
    """One ``session_not_found`` occurrence: fingerprint, serving task, time.

    ``key`` is its identity: a re-delivered log line collapses onto it, a later 404 of the same
    session is a new occurrence with its own verdict (the session is still counted once per
    cause, see ``detectors.classify``).
    """

    fingerprint: str
    task_id: str
    at: float
    log_service: str | None = None

    @property
    def key(self) -> str:
        return f"{self.fingerprint}|{self.task_id}|{self.at:.3f}"


@dataclass(frozen=True)
class Verdict:
    """The decided cause, the service it is counted for, and what it rests on."""

    cause: Cause
    service: str | None
    origin_task: str | None = None
    deployment_id: str | None = None
    basis: str = ""

    @property
    def final(self) -> bool:
        return self.cause is not Cause.PENDING


def merge_windows(
    starts: Iterable[tuple[str, str, float]], ends: Iterable[tuple[str, str, float, str]]
) -> list[DeploymentWindow]:
    """Fold start/end observations (service, deployment, time[, outcome]) into windows.

    Earliest start and earliest end win, so duplicates and order do not matter. An end
    without a start (the IN_PROGRESS event not seen) gives no window: nothing to bound it.
    A window whose end never arrived is closed by the next deployment of the same service
    (outcome SUPERSEDED): otherwise one lost event would make every later scheduler stop a
    "deployment" loss and keep DeploymentsInProgress at 1 forever.
    """
    first_start: dict[tuple[str, str], float] = {}
    first_end: dict[tuple[str, str], tuple[float, str]] = {}
    for service, dep, t in starts:
        key = (service, dep)
        first_start[key] = min(t, first_start.get(key, t))
    for service, dep, t, outcome in ends:
        key = (service, dep)
        if key not in first_end or (t, outcome) < first_end[key]:
            first_end[key] = (t, outcome)
    ordered = sorted(first_start.items(), key=lambda kv: (kv[0][0], kv[1], kv[0][1]))
    windows = []
    for i, ((service, dep), start) in enumerate(ordered):
        end = first_end.get((service, dep))
        if end is None:
            later = [s for (svc, _), s in ordered[i + 1 :] if svc == service and s > start]
            if later:
                end = (later[0], SUPERSEDED)
        windows.append(
            DeploymentWindow(service, dep, start, end[0] if end else None, end[1] if end else None)
        )
    return sorted(windows, key=lambda w: (w.started_at, w.service, w.deployment_id))


def reason_marks(reason: str | None) -> str | None:
    """The words of a stopped reason that ``stop_category`` reads, in a fixed order.

    The ledger stores these instead of the reason (up to 1 KiB) to keep each task's summary
    small; ``stop_category`` gives the same answer for the marks as for the full reason.
    """
    text = (reason or "").lower()
    found = [w for w in (*_INFRA_REASON_WORDS, *_HEALTH_REASON_WORDS) if w in text]
    return " ".join(found) or None


def stop_category(task: TaskFacts) -> Cause | None:
    """Map a stop code/reason to a cause; ``None`` means the service scheduler stopped it.

    Health-check kills come with code ServiceSchedulerInitiated but are failures, so the
    reason is read before the code. Unrecognised codes (e.g. UserInitiated) count as
    task_failure: the task went away for a reason that is neither a rollout nor the platform.
    """
    reason = (task.stopped_reason or "").lower()
    code = task.stop_code
    if code in _INFRA_STOP_CODES or (
        code != SCHEDULER_STOP and any(w in reason for w in _INFRA_REASON_WORDS)
    ):
        return Cause.INFRASTRUCTURE
    if code in _FAILURE_STOP_CODES or any(w in reason for w in _HEALTH_REASON_WORDS):
        return Cause.TASK_FAILURE
    if code == SCHEDULER_STOP or code is None:
        return None  # None: no code seen (decide() waits for it until the grace period ends)
    return Cause.TASK_FAILURE


def _pending(service: str | None, origin: str | None, basis: str) -> Verdict:
    return Verdict(Cause.PENDING, service, origin, basis=basis)


def decide(
    nf: NotFound,
    origin: SessionOrigin | None,
    origin_task: TaskFacts | None,
    serving_task: TaskFacts | None,
    windows: Sequence[DeploymentWindow],
    grace_s: float,
    now: float,
) -> Verdict:
    """Decide the cause of one not-found from the facts known at ``now`` (DESIGN section 5).

    Only this occurrence is judged: the session's other 404s are not inputs, so a verdict does
    not depend on which of them arrived first, and it is known as soon as the facts are.
    """
    fallback_service = (serving_task.service if serving_task else None) or nf.log_service
    settled = now >= nf.at + grace_s
    if origin is None:
        if settled:
            return Verdict(Cause.UNKNOWN, fallback_service, basis="session never seen created")
        return _pending(fallback_service, None, "session creation not seen yet")
    o = origin.task_id
    if o == nf.task_id:
        if (serving_task is None or serving_task.service is None) and not settled:
            # The ECS service is the metric's ServiceName and decides the scope: wait for it.
            return _pending(fallback_service, o, "serving task's ECS service not known yet")
        return Verdict(Cause.EXPIRED, fallback_service, o, basis="created on the serving task")
    service = (origin_task.service if origin_task else None) or fallback_service
    stop_began = origin_task.stop_began if origin_task else None
    if stop_began is None:
        if settled:
            return Verdict(Cause.STICKINESS, service, o, basis="origin task never seen stopping")
        return _pending(service, o, "origin task state not known yet")
    assert origin_task is not None
    if origin_task.stopping_at is not None and origin_task.stopping_at > nf.at + CLOCK_SKEW_S:
        return Verdict(Cause.STICKINESS, service, o, basis="origin task alive at the 404")
    if stop_began > nf.at + CLOCK_SKEW_S:
        # Only the final stop is known; a draining start before the 404 may still arrive.
        if settled:
            return Verdict(Cause.STICKINESS, service, o, basis="origin task alive at the 404")
        return _pending(service, o, "origin task draining start not known yet")
    if origin_task.stop_code is None and not settled:
        return _pending(service, o, "origin task stop code not known yet")
    category = stop_category(origin_task)
    if category is not None:
        return Verdict(category, service, o, basis=f"origin task stop code {origin_task.stop_code}")
    for window in windows:
        if window.service == service and window.contains(stop_began, grace_s):
            return Verdict(
                Cause.DEPLOYMENT,
                service,
                o,
                window.deployment_id,
                basis="origin task stopped by the scheduler inside the deployment window",
            )
    if settled:  # stop_began <= nf.at + skew, so late deployment events had their grace
        return Verdict(Cause.SCALE_IN, service, o, basis="scheduler stop outside any deployment")
    return _pending(service, o, "waiting for a late deployment event")
