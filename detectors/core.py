"""The pure correlation core: given the facts known, decide the cause of each session_not_found.

Plain functions over the plain frozen dataclasses of ``detectors.facts``, no AWS calls, so the
same code runs in the handlers, the reporter, the property tests and the benchmark. Times are
epoch seconds (float).

Attribution follows lineage (docs/architecture.md, the causes): every task belongs to the
deployment that started it (``startedBy``). A loss is a deployment's when a *later* deployment
D of the same service replaced the origin task's lineage: for ROLLING, D stopped the origin
task (D is the latest such deployment whose window holds the stop); for traffic-shifting
strategies, also while the origin still runs, when the 404 came from a task of D inside D's
window. A deployment never replaces its own tasks, so a scale-in of a current task after
COMPLETED is ``scale_in`` and a rollback's losses are the rollback's.

Order independence comes from three rules:
- a verdict belongs to ONE occurrence (fingerprint, serving task, time): ``decide`` reads only
  that occurrence and the stored facts, never the session's other 404s;
- a verdict is *final* only when no fact that could still arrive can change it; otherwise it is
  ``pending`` and decided again later, at the latest once the grace period has passed;
- the facts themselves only accumulate (earliest time wins), so the same facts in any order and
  with duplicates always merge to the same state.
Counting (one per session and cause) is the caller's: see ``detectors.classify``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sessionwatch.contract import Cause
from sessionwatch.detectors.facts import (
    CLOCK_SKEW_S,
    HEALTH_REASON_WORDS,
    INFRA_REASON_WORDS,
    SCHEDULER_STOP,
    SUPERSEDED,
    DeploymentWindow,
    NotFound,
    SessionOrigin,
    TaskFacts,
    Verdict,
    close_superseded,
    reason_marks,
    rollback_target,
)

__all__ = [
    "CLOCK_SKEW_S",
    "SCHEDULER_STOP",
    "SUPERSEDED",
    "DeploymentWindow",
    "NotFound",
    "SessionOrigin",
    "TaskFacts",
    "Verdict",
    "close_superseded",
    "decide",
    "merge_windows",
    "reason_marks",
    "replaces",
    "rollback_target",
    "stop_category",
    "stopper",
]

_FAILURE_STOP_CODES = frozenset({"EssentialContainerExited", "TaskFailedToStart"})
_INFRA_STOP_CODES = frozenset({"SpotInterruption", "TerminationNotice"})


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
    windows = [
        DeploymentWindow(
            service,
            dep,
            start,
            first_end[(service, dep)][0] if (service, dep) in first_end else None,
            first_end[(service, dep)][1] if (service, dep) in first_end else None,
        )
        for (service, dep), start in first_start.items()
    ]
    return close_superseded(windows)


def stop_category(task: TaskFacts) -> Cause | None:
    """Map a stop code/reason to a cause; ``None`` means the service scheduler stopped it.

    Health-check kills come with code ServiceSchedulerInitiated but are failures, so the
    reason is read before the code. Unrecognised codes (e.g. UserInitiated) count as
    task_failure: the task went away for a reason that is neither a rollout nor the platform.
    """
    reason = (task.stopped_reason or "").lower()
    code = task.stop_code
    if code in _INFRA_STOP_CODES or (
        code != SCHEDULER_STOP and any(w in reason for w in INFRA_REASON_WORDS)
    ):
        return Cause.INFRASTRUCTURE
    if code in _FAILURE_STOP_CODES or any(w in reason for w in HEALTH_REASON_WORDS):
        return Cause.TASK_FAILURE
    if code == SCHEDULER_STOP or code is None:
        return None  # None: no code seen (decide() waits for it until the grace period ends)
    return Cause.TASK_FAILURE


def _pending(service: str | None, origin: str | None, basis: str) -> Verdict:
    return Verdict(Cause.PENDING, service, origin, basis=basis)


def belongs_to(task: TaskFacts, window: DeploymentWindow) -> bool | None:
    """True when ``window``'s deployment started ``task``; None when the facts do not say."""
    if task.started_by is not None:
        return task.started_by == window.deployment_id
    if task.task_definition and window.task_definition:
        return task.task_definition == window.task_definition
    return None


def replaces(window: DeploymentWindow, task: TaskFacts) -> bool:
    """``window``'s deployment replaces ``task``: same service, another, older lineage.

    A deployment never replaces its own tasks; a task started after the deployment began
    belongs to it or to a later one, so it is not replaced by it either.
    """
    if task.service != window.service or belongs_to(task, window):
        return False
    if task.started_at is not None:
        return task.started_at < window.started_at + CLOCK_SKEW_S
    return task.started_by is not None


def stopper(
    task: TaskFacts, windows: Sequence[DeploymentWindow], grace_s: float
) -> DeploymentWindow | None:
    """The deployment that stopped ``task``: the latest one replacing it whose window holds
    the stop (with overlapping rollouts the newest one is in charge of the service).

    The stop and the deployment's start are both ECS's own timestamps, so no skew is allowed
    between them: a stop 3 s before the next deployment began is still the previous one's.
    """
    began = task.stop_began
    if began is None:
        return None
    candidates = [
        w
        for w in windows
        if replaces(w, task) and w.contains(began, grace_s) and w.started_at <= began
    ]
    return max(candidates, key=lambda w: (w.started_at, w.deployment_id), default=None)


def _shift(
    origin_task: TaskFacts | None,
    serving: TaskFacts | None,
    windows: Sequence[DeploymentWindow],
    t: float,
    grace_s: float,
    now: float,
) -> tuple[DeploymentWindow | None, str | None]:
    """A traffic-shifting deployment that moved this session's traffic, or why it may yet.

    Returns (deployment, None) for a shift loss, (None, reason) when facts still missing could
    make it one (so a stickiness verdict must wait), (None, None) when it cannot be one.
    """
    if origin_task is None or serving is None or serving.started_by is None:
        return None, "serving task's deployment not known yet"
    if serving.started_by == origin_task.started_by:
        return None, None  # same lineage: a routing slip inside one revision
    mine = [w for w in windows if w.deployment_id == serving.started_by]
    if not mine:
        # Its IN_PROGRESS came before the task started, so past the task's start + grace it
        # is not coming: a deployment older than the ledger (or than the query's newest few).
        if serving.started_at is not None and now >= serving.started_at + grace_s:
            return None, None
        return None, "serving task's deployment not seen yet"
    w = mine[0]
    if not w.contains(t, grace_s) or not replaces(w, origin_task):
        return None, None
    if w.strategy_source is None and not w.hooks:
        return None, "deployment strategy not known yet"
    if w.traffic_shifting:
        return w, None
    return None, None


def decide(
    nf: NotFound,
    origin: SessionOrigin | None,
    origin_task: TaskFacts | None,
    serving_task: TaskFacts | None,
    windows: Sequence[DeploymentWindow],
    grace_s: float,
    now: float,
) -> Verdict:
    """Decide the cause of one not-found from the facts known at ``now``.

    Only this occurrence is judged: the session's other 404s are not inputs, so a verdict does
    not depend on which of them arrived first, and it is known as soon as the facts are.
    ``windows`` are the deployments known around the 404 (any services; others are ignored).
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
    stopped_before = stop_began is not None and stop_began <= nf.at + CLOCK_SKEW_S
    if origin_task is not None and stopped_before:
        if origin_task.stop_code is None and not settled:
            return _pending(service, o, "origin task stop code not known yet")
        category = stop_category(origin_task)
        if category is not None:
            return Verdict(
                category, service, o, basis=f"origin task stop code {origin_task.stop_code}"
            )
        d = stopper(origin_task, windows, grace_s)
        if d is not None:
            return Verdict(
                Cause.DEPLOYMENT,
                service,
                o,
                d.deployment_id,
                basis="origin task stopped by a later deployment of its service",
                deployment_started_at=d.started_at,
            )
        if settled:  # stop_began <= nf.at + skew, so late deployment events had their grace
            return Verdict(
                Cause.SCALE_IN, service, o, basis="scheduler stop by no deployment replacing it"
            )
        return _pending(service, o, "waiting for a late deployment event")
    # The origin task was alive at the 404 (or its state is not known yet).
    shifted, wait = _shift(origin_task, serving_task, windows, nf.at, grace_s, now)
    if shifted is not None:
        return Verdict(
            Cause.DEPLOYMENT,
            service,
            o,
            shifted.deployment_id,
            basis=f"{shifted.strategy} traffic shift to the deployment's tasks",
            deployment_started_at=shifted.started_at,
        )
    if wait is not None and not settled:
        return _pending(service, o, wait)
    if stop_began is None:
        if settled:
            return Verdict(Cause.STICKINESS, service, o, basis="origin task never seen stopping")
        return _pending(service, o, "origin task state not known yet")
    assert origin_task is not None
    if origin_task.stopping_at is not None and origin_task.stopping_at > nf.at + CLOCK_SKEW_S:
        return Verdict(Cause.STICKINESS, service, o, basis="origin task alive at the 404")
    # Only the final stop is known; a draining start before the 404 may still arrive.
    if settled:
        return Verdict(Cause.STICKINESS, service, o, basis="origin task alive at the 404")
    return _pending(service, o, "origin task draining start not known yet")
