"""The attribution rules, in one place: the cause of each session_not_found, and who owns a loss.

One small function per cause (``rule_unknown`` ... ``rule_stickiness``, in the order of the
README's cause table), each answering "mine" (a verdict), "wait for facts" (``pending``) or
"not mine" (None); ``decide`` asks them in order. Around the count: which deployment a loss
belongs to (``stopper`` for a stop, ``_shift`` for a traffic shift, ``lock_tiebreak`` for the
same 404 decided twice, ``owned_losses`` for a report), whether a task's sessions owe a
second look (``revisit_due``). Every other module calls these and decides nothing itself.

Plain functions over the plain frozen dataclasses of ``detectors.facts``, no AWS calls, so the
same code runs in the handlers, the reporter, the property tests and the benchmark. Times are
epoch seconds (float).

Attribution follows lineage (docs/architecture.md, the causes): every task belongs to the
deployment that started it (``startedBy``). A loss is a deployment's when a *later* deployment
D of the same service replaced the origin task's lineage: for ROLLING, D stopped the origin
task (D is the latest such deployment whose window holds the stop); for traffic-shifting
strategies, also while the origin still runs, when the 404 came from a task of D inside D's
window (and the session's next 404s on tasks of its own lineage, ``repinned_by``: that 404's
answer moved the client's cookie). A deployment never replaces its own tasks, so a scale-in of a
current task after COMPLETED is ``scale_in`` and a rollback's losses are the rollback's.

Order independence comes from three rules:
- a verdict belongs to ONE occurrence (fingerprint, serving task, time): ``decide`` reads only
  that occurrence and the stored facts, of the session's other 404s only the earliest charged
  to a deployment (``repinned_by``), and waits for it while it could still arrive;
- a verdict is *final* only when no fact that could still arrive can change it; otherwise it is
  ``pending`` and decided again later, at the latest once the grace period has passed;
- the facts themselves only accumulate (earliest time wins), so the same facts in any order and
  with duplicates always merge to the same state.
Counting (one per session and cause) is the caller's: see ``detectors.classify``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sessionwatch.contract import CLOSE_CLIENT_DELETE, CLOSE_IDLE_TIMEOUT, Cause
from sessionwatch.detectors.facts import (
    BEFORE_DRAIN_S,
    CLOCK_SKEW_S,
    HEALTH_REASON_WORDS,
    INFRA_REASON_WORDS,
    SCHEDULER_STOP,
    DeploymentWindow,
    NotFound,
    SessionClosed,
    SessionOrigin,
    TaskFacts,
    Verdict,
    close_superseded,
)
from sessionwatch.detectors.ledger.records import DeploymentLoss, LockClaim, LossLock, TaskMerge

# How long a 404 on a live-looking origin waits for ECS facts when a rollout may be under way.
ROLLOUT_WAIT_S = 600.0
# session_closed reasons that end a session on a live task (not the task's own shutdown).
SESSION_END_REASONS = frozenset({CLOSE_CLIENT_DELETE, CLOSE_IDLE_TIMEOUT})
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
    back = _drawn_back(origin_task, serving, windows, t, grace_s)
    if back is not None:
        return back
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


def _drawn_back(
    origin_task: TaskFacts,
    serving: TaskFacts,
    windows: Sequence[DeploymentWindow],
    t: float,
    grace_s: float,
) -> tuple[DeploymentWindow | None, str | None] | None:
    """The origin's own deployment D is shifting traffic and its weighted forward drew this
    request back to a task of the lineage D replaces (a LINEAR or CANARY step, a blue/green
    shift without target-group stickiness: "requests are routed based on the weight of each
    target group", ELB guide, forward actions). The split is D's, so the loss is D's. None:
    not such a case (the other direction is ``_shift``'s)."""
    mine = [w for w in windows if w.deployment_id == origin_task.started_by]
    if not mine:
        return None
    w = mine[0]
    if not w.contains(t, grace_s) or not replaces(w, serving):
        return None
    if w.strategy_source is None and not w.hooks:
        return None, "deployment strategy not known yet"
    return (w, None) if w.traffic_shifting else None


def repinned_by(
    origin_task: TaskFacts | None,
    lost: LossLock | None,
    nf: NotFound,
    windows: Sequence[DeploymentWindow],
    grace_s: float,
) -> DeploymentWindow | None:
    """The traffic-shifting deployment D whose weighted forward already cost this session a
    404 on another task, no later than this one (``lost``: the session's ``deployment`` count
    lock, its earliest 404 charged to a deployment). The load balancer's answer to that
    request (the 404) set the client's stickiness cookie to the task that gave it, in the
    other target group; the client's next request drawn to its origin's group finds no target
    of its cookie there and lands on any of the group's targets ("requests are routed based on
    the weight of each target group", ELB guide, forward actions; without target-group
    stickiness the documentation is silent on the cookie across groups, and the lab's HAProxy
    re-pins it as the accuracy benchmark's model does). So a 404 on another task of the
    origin's own lineage while the origin still runs is the same loss, D's, not a client that
    dropped its cookie.

    Only in the stamps' order: a lock's 404 later than this one cannot have set its cookie (and
    a verdict of this 404 never moves the lock to an earlier time, so re-deciding it gives the
    same answer). None: not such a case."""
    if origin_task is None or lost is None or lost.deployment_id is None:
        return None
    if lost.retracted_at is not None or lost.serving_task == nf.task_id or lost.at > nf.at:
        return None
    w = next((x for x in windows if x.deployment_id == lost.deployment_id), None)
    if w is None or not w.traffic_shifting or not w.contains(nf.at, grace_s):
        return None
    if not (replaces(w, origin_task) or belongs_to(origin_task, w)):
        return None  # D neither replaces the origin nor started it: not D's split
    return w


def shift_may_explain(
    origin_task: TaskFacts | None, windows: Sequence[DeploymentWindow], t: float, grace_s: float
) -> bool:
    """A deployment known to shift traffic (its strategy read) between the origin's lineage
    and another holds ``t``: an earlier 404 of the session on the other group's tasks
    (``repinned_by``) may still be on its way in another task's log stream. A deployment whose
    strategy is not known yet is not waited for here (its shift 404 waits for the read)."""
    if origin_task is None:
        return False
    return any(
        w.traffic_shifting
        and w.contains(t, grace_s)
        and (replaces(w, origin_task) or belongs_to(origin_task, w) is True)
        for w in windows
    )


def rollout_may_explain(
    origin_task: TaskFacts | None, serving: TaskFacts | None, nf: NotFound, now: float
) -> bool:
    """The server's own lines say a rollout may be under way, so a 404 on a live-looking
    origin waits (at most ``ROLLOUT_WAIT_S`` from the 404) for ECS facts before it may be
    called ``stickiness``: the serving task started (its ``task_started`` line, or ECS) after
    the origin task and less than ``ROLLOUT_WAIT_S`` before the 404 (or the origin task did, and
    ECS has not said yet which deployment started it), and ECS does not already say both are of
    one lineage. A rolling deployment's stop events delivered later than the
    grace period then still find the 404 undecided. (A newer task-definition revision would be
    a stronger hint, but a forced deployment keeps the revision: start times are what both
    kinds of rollout share.)"""
    if serving is None or now >= nf.at + ROLLOUT_WAIT_S:
        return False
    if (
        origin_task is not None
        and serving.started_by is not None
        and serving.started_by == origin_task.started_by
    ):
        return False  # one lineage: a routing slip, no rollout between them

    def recent(at: float | None) -> bool:
        return at is not None and nf.at - ROLLOUT_WAIT_S <= at <= nf.at + CLOCK_SKEW_S

    o_start = origin_task.started_at if origin_task else None
    s_start = serving.started_at
    if recent(s_start) and (o_start is None or (s_start is not None and s_start > o_start)):
        return True  # a rollout's new task answered
    # A session on a new task drawn back to an older one by a weighted shift, while ECS has
    # not said yet which deployment started its task (``_drawn_back`` decides once it has).
    return (
        origin_task is not None
        and origin_task.started_by is None
        and recent(o_start)
        and (s_start is None or (o_start is not None and o_start > s_start))
    )


def ended_before_its_task(
    closed: SessionClosed | None, nf: NotFound, stop_began: float | None
) -> bool:
    """The session was already over when its task went away: the server closed it for idle
    expiry (the SDK's own eviction included) or the client's DELETE, before the 404 and before
    its task began stopping. Its later 404 is the client returning to a dead session, on
    whatever task it lands: ``expired``, never a deployment's loss. A ``shutdown`` close is
    the task stopping, and stays the stop's."""
    if closed is None or closed.reason not in SESSION_END_REASONS:
        return False
    if closed.at > nf.at + CLOCK_SKEW_S:
        return False
    return stop_began is None or closed.at < stop_began


@dataclass(frozen=True)
class Case:
    """One 404 and the stored facts it is judged from, with what every rule reads."""

    nf: NotFound
    origin: SessionOrigin | None
    origin_task: TaskFacts | None
    serving: TaskFacts | None
    windows: Sequence[DeploymentWindow]
    grace_s: float
    now: float
    closed: SessionClosed | None = None
    # The clocks' error the deployment allows a 404 logged before its origin's drain
    # (``facts.BEFORE_DRAIN_S`` unless ``Config.clock_error_s`` says otherwise).
    before_drain_s: float = BEFORE_DRAIN_S
    # The session's earliest 404 charged to a deployment (its ``deployment`` count lock).
    lost: LossLock | None = None

    @property
    def settled(self) -> bool:
        """Past the grace period: every fact delivered on time is known."""
        return self.now >= self.nf.at + self.grace_s

    @property
    def fallback_service(self) -> str | None:
        return (self.serving.service if self.serving else None) or self.nf.log_service

    @property
    def service(self) -> str | None:
        """The metric's ServiceName: the origin task's ECS service, else the serving task's."""
        o = self.origin_task.service if self.origin_task else None
        return o or self.fallback_service

    @property
    def stop_began(self) -> float | None:
        return self.origin_task.stop_began if self.origin_task else None

    @property
    def origin_stopped(self) -> bool:
        """The origin task had stopped (or begun draining) by the 404: ECS's stop time no
        later than the 404's time plus the clocks' error (``before_drain_s``; the ALB routes
        elsewhere only after ECS recorded the stop)."""
        began = self.stop_began
        return began is not None and began <= self.nf.at + self.before_drain_s

    def mine(self, cause: Cause, basis: str, by: DeploymentWindow | None = None) -> Verdict:
        o = self.origin.task_id if self.origin else None
        if by is None:
            return Verdict(cause, self.service, o, basis=basis)
        return Verdict(cause, self.service, o, by.deployment_id, basis, by.started_at)

    def wait(self, why: str) -> Verdict:
        """Wait for facts: ``pending``, decided again by the reporter."""
        o = self.origin.task_id if self.origin else None
        return Verdict(Cause.PENDING, self.service, o, basis=why)


# A rule answers "mine" (a Verdict), "wait for facts" (a PENDING Verdict) or "not mine" (None).
Answer = Verdict | None


def rule_unknown(c: Case) -> Answer:
    """``unknown``: S was never seen created, once the grace period has passed."""
    if c.origin is not None:
        return None
    if c.settled:
        return Verdict(Cause.UNKNOWN, c.fallback_service, basis="session never seen created")
    return Verdict(Cause.PENDING, c.fallback_service, basis="session creation not seen yet")


def rule_expired(c: Case) -> Answer:
    """``expired``: the session was over before its task went away (closed by idle expiry or
    DELETE before the 404 and before its task began stopping), or the 404 is on its own task."""
    assert c.origin is not None
    if ended_before_its_task(c.closed, c.nf, c.stop_began):
        assert c.closed is not None
        known = (c.origin_task and c.origin_task.service) or (c.serving and c.serving.service)
        if not known and not c.settled:
            return c.wait("ECS service of the session's tasks not known yet")
        return c.mine(Cause.EXPIRED, f"session closed ({c.closed.reason}) before its task")
    if c.origin.task_id != c.nf.task_id:
        return None
    if (c.serving is None or c.serving.service is None) and not c.settled:
        # The ECS service is the metric's ServiceName and decides the scope: wait for it.
        return c.wait("serving task's ECS service not known yet")
    return Verdict(
        Cause.EXPIRED, c.fallback_service, c.origin.task_id, basis="created on the serving task"
    )


def rule_stop_code(c: Case) -> Answer:
    """``task_failure`` / ``infrastructure``: the origin stopped by the 404, for that reason."""
    if not c.origin_stopped:
        return None
    assert c.origin_task is not None
    if c.origin_task.stop_code is None and not c.settled:
        return c.wait("origin task stop code not known yet")
    category = stop_category(c.origin_task)
    if category is None:
        return None
    return c.mine(category, f"origin task stop code {c.origin_task.stop_code}")


def rule_deployment_stop(c: Case) -> Answer:
    """``deployment`` (ROLLING, and any strategy once O stopped): a later deployment that
    replaces O has O's scheduler stop in its window (``owner_of_stop``)."""
    if not c.origin_stopped:
        return None
    assert c.origin_task is not None
    d = stopper(c.origin_task, c.windows, c.grace_s)
    if d is None:
        return None
    return c.mine(Cause.DEPLOYMENT, "origin task stopped by a later deployment of its service", d)


def rule_scale_in(c: Case) -> Answer:
    """``scale_in``: a scheduler stop no replacing deployment holds, once the grace period has
    passed (stop <= 404 + skew, so a late deployment event had its grace)."""
    if not c.origin_stopped:
        return None
    if c.settled:
        return c.mine(Cause.SCALE_IN, "scheduler stop by no deployment replacing it")
    return c.wait("waiting for a late deployment event")


def rule_deployment_shift(c: Case) -> Answer:
    """``deployment`` (BLUE_GREEN, LINEAR, CANARY, EXTERNAL): O still runs, and inside the window
    of a deployment D either T was started by D and D replaces O, or O was started by D and the
    weighted forward drew the request back to a task D replaces (``_shift``)."""
    shifted, wait = _shift(c.origin_task, c.serving, c.windows, c.nf.at, c.grace_s, c.now)
    if shifted is not None:
        return c.mine(
            Cause.DEPLOYMENT, f"{shifted.strategy} traffic shift to the deployment's tasks", shifted
        )
    if wait is not None and not c.settled:
        return c.wait(wait)
    return None


def rule_deployment_repinned(c: Case) -> Answer:
    """``deployment`` (traffic shift, the session's next 404s): O still runs, and the session
    already had a 404 on another task, at or before t, charged to a traffic-shifting D whose
    window holds t; that 404's answer moved the client's cookie (``repinned_by``). Final once
    O's state is known (a stop before t would make it that stop's, by the rules above)."""
    d = repinned_by(c.origin_task, c.lost, c.nf, c.windows, c.grace_s)
    if d is None:
        return None
    if c.stop_began is None and not c.settled:
        return c.wait("origin task state not known yet")
    return c.mine(
        Cause.DEPLOYMENT,
        f"{d.strategy} traffic shift: the session's earlier 404 there moved its cookie",
        d,
    )


def rule_stickiness(c: Case) -> Answer:
    """``stickiness``: O alive at the 404 and nothing else explains it; a rollout the server's
    lines hint at is waited for first (``rollout_may_explain``), and so, within the grace
    period, is a traffic shift's earlier 404 of the session (``shift_may_explain``)."""
    if c.stop_began is None:
        if not c.settled:
            return c.wait("origin task state not known yet")
        if rollout_may_explain(c.origin_task, c.serving, c.nf, c.now):
            return c.wait("serving task started recently: waiting for ECS facts")
        return c.mine(Cause.STICKINESS, "origin task never seen stopping")
    assert c.origin_task is not None
    if c.settled:
        return c.mine(Cause.STICKINESS, "origin task alive at the 404")
    stopping = c.origin_task.stopping_at
    if stopping is None or stopping <= c.nf.at + c.before_drain_s:
        # Only the final stop is known; a draining start before the 404 may still arrive.
        return c.wait("origin task draining start not known yet")
    if shift_may_explain(c.origin_task, c.windows, c.nf.at, c.grace_s):
        return c.wait("traffic shift in effect: the session's 404 on its tasks may yet arrive")
    return c.mine(Cause.STICKINESS, "origin task alive at the 404")


# In the order of the README's cause table; the first rule that answers decides.
RULES: tuple[Callable[[Case], Answer], ...] = (
    rule_unknown,
    rule_expired,
    rule_stop_code,
    rule_deployment_stop,
    rule_scale_in,
    rule_deployment_shift,
    rule_deployment_repinned,
    rule_stickiness,
)


def decide(
    nf: NotFound,
    origin: SessionOrigin | None,
    origin_task: TaskFacts | None,
    serving_task: TaskFacts | None,
    windows: Sequence[DeploymentWindow],
    grace_s: float,
    now: float,
    closed: SessionClosed | None = None,
    before_drain_s: float = BEFORE_DRAIN_S,
    lost: LossLock | None = None,
) -> Verdict:
    """Decide the cause of one not-found from the facts known at ``now``: the first rule of
    ``RULES`` that answers "mine" or "wait for facts".

    Only this occurrence is judged, from the stored facts: the session's other 404s are not
    inputs, except the one fact of them a traffic shift leaves (``lost``, the session's
    earliest 404 charged to a deployment: ``repinned_by``), which a verdict that could depend
    on it waits for until the grace period has passed; so a verdict does not depend on which
    of them arrived first. ``windows`` are the deployments known around the 404 (any services;
    others are ignored). ``before_drain_s``: the deployment's bound on a server stamp's error
    against ECS's.
    """
    case = Case(
        nf, origin, origin_task, serving_task, windows, grace_s, now, closed, before_drain_s, lost
    )
    for rule in RULES:
        answer = rule(case)
        if answer is not None:
            return answer
    raise AssertionError("rule_stickiness always answers")  # pragma: no cover


# Two times the ledger stored as the same 404 (stored floats; server lines have milliseconds).
SAME_TIME_S = 1e-3


def revisit_due(merge: TaskMerge) -> bool:
    """A task's counted 404s owe another look once its stop times are known and differ from
    the ones last revisited: a first-seen stop is due, and stays due if the revisit failed
    (the retried event finds it unmarked); a re-delivery after a successful revisit is not."""
    return merge.facts.stop_began is not None and merge.stop_mark != merge.revisited


def lock_tiebreak(verdict: Verdict) -> float | None:
    """Which deployment owns a loss: the lock keeps the session's earliest 404, and for the
    same 404 decided twice the deployment that began later (a premature verdict charged the
    previous rollout while the next one's start, which stopped the origin, was on its way:
    ``core.stopper`` only gains candidates with facts). None: no deployment to rank."""
    return verdict.deployment_started_at if verdict.deployment_id else None


def loss_lock(nf: NotFound, verdict: Verdict) -> LossLock:
    return LossLock(
        fingerprint=nf.fingerprint,
        cause=verdict.cause,
        serving_task=nf.task_id,
        at=nf.at,
        service=verdict.service,
        origin_task=verdict.origin_task,
        deployment_id=verdict.deployment_id,
        deployment_started_at=verdict.deployment_started_at,
        basis=verdict.basis,
    )


def followups_after(verdict: Verdict, claim: LockClaim) -> list[str]:
    """Deployments whose sent report a lock write changed: the one it names when the loss is
    new or moved to it, and the one it moved from."""
    if not (verdict.deployment_id and verdict.service):
        return []
    moved_from = claim.previous.deployment_id if claim.previous else None
    moved = moved_from is not None and moved_from != verdict.deployment_id
    out = [verdict.deployment_id] if claim.counted or moved else []
    if moved and moved_from is not None:
        out.append(moved_from)
    return out


def owned_entries(losses: Iterable[DeploymentLoss], deployment_id: str) -> list[DeploymentLoss]:
    """The loss entries a deployment's report counts: an entry whose lock names another
    deployment is that one's (a corrected attribution); one whose lock a later verdict took
    back (the session was closed before its task stopped, say) is no deployment's."""
    return [x for x in losses if x.owner in (None, deployment_id) and not x.retracted]


def owned_losses(losses: Iterable[DeploymentLoss], deployment_id: str) -> list[float]:
    """The earliest 404 times of the sessions a deployment's report counts, sorted."""
    return sorted(x.at for x in owned_entries(losses, deployment_id))


def owned_fingerprints(losses: Iterable[DeploymentLoss], deployment_id: str) -> set[str]:
    """The sessions of the loss entries a deployment's report counts (``owned_entries``)."""
    return {x.fingerprint for x in owned_entries(losses, deployment_id)}


def previous_deployment(
    windows: Sequence[DeploymentWindow], deployment_id: str, at: float
) -> str | None:
    """The service's newest deployment that began before ``deployment_id`` (at ``at``)."""
    earlier = [w for w in windows if w.deployment_id != deployment_id and w.started_at <= at]
    latest = max(earlier, key=lambda w: (w.started_at, w.deployment_id), default=None)
    return None if latest is None else latest.deployment_id


def same_occurrence(lock: LossLock, nf: NotFound) -> bool:
    """The lock's earliest 404 is this 404 (same serving task and time)."""
    return lock.serving_task == nf.task_id and abs(lock.at - nf.at) < SAME_TIME_S


def repeats(at: float, earliest: float) -> bool:
    """A 404 at ``at`` repeats a session lost at ``earliest``: a session is lost once, to its
    earliest 404 (what ended it); a later 404 of another cause (a client's retry after its
    origin began draining, say) is not a second loss. The same 404 decided again is not."""
    return at - earliest >= SAME_TIME_S
