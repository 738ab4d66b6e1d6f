"""The lab's scenarios: what each one does, and the verdict SessionWatch must reach.

Plain data and one pure function (``check``) that compares an ``Outcome`` with the scenario's
``Expectation``; the orchestration (``lab.run``) produces the outcome. A wrong verdict is a
non-zero exit of ``python -m lab``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sessionwatch.contract import Cause
from sessionwatch.ops.client import ProbeMode

ALARM_DEPLOYMENT = "deployment"
ALARM_STICKINESS = "stickiness"
ALARM_SPIKE = "spike"
ALARM_SESSION_CAP = "session_cap"  # a task at 80% of its SDK session cap (server metrics)
ALARM_LB_REFUSED = "load balancer 503"  # ALB's own HTTPCode_ELB_503_Count (infra.alarms)
ALARM_ERRORS_PREFIX = "errors:"  # the detectors' own health alarms: never fire in any scenario
DEMO_STICKINESS_S = 86_400.0  # the demo stack's lb_cookie stickiness duration (infra/demo.py)
# The listener rule's target group stickiness duration (AWSALBTG) in the blue/green scenarios:
# 5 minutes, longer than their 60 s bake time (15 s at 20x, 10 s at 30x: a lock-out a run sees
# from start to end). ALB takes 1 s to 7 days.
GROUP_STICKINESS_S = 300.0
LOCK_OUT_TOLERANCE_S = 2.5


@dataclass(frozen=True)
class Expectation:
    """What must be true at the end: ``loss_cause`` None means no session may be lost.

    ``report_spike``: the deployment report's metric check (``mcp.server.session.not_found``
    against its pre-deployment baseline) must find a spike (True) or none (False); None: not
    checked. The spike check and its alarm concern deployment windows only
    (docs/architecture.md §6), so scenarios without a deployment expect the spike alarm silent
    and send no report.
    """

    loss_cause: Cause | None
    alarms_fire: frozenset[str] = frozenset()
    alarms_silent: frozenset[str] = frozenset()
    report_expected: bool = False
    report_spike: bool | None = None
    rolled_back_by: str | None = None  # "alarm" / "circuit breaker": how the rollout ended
    # True: clients must be refused at the SDK's cap and every refusal the clients saw must be
    # a session_refused line; None: not checked.
    refusals: bool | None = None
    # The load balancer itself answered 503 (clients locked out on an empty target group), the
    # ALB's metric and the deployment report say so (True); nothing refused (False); None: not
    # checked.
    lb_refused: bool | None = None


# What the lab's "ECS" does in a scenario (``lab.ecs_play``); ``wait_loss``: nothing, until a
# client lost a session (the stale and cookie-less clients lose theirs on their own).
DEPLOYING_ACTIONS = frozenset(
    {"rolling", "blue_green", "circuit_breaker", "rollback_on_alarm", "rolling_stop_on_loss"}
)
# SessionWatch's deployment guards a scenario turns on (issue 21).
GUARD_DRAIN_GATE = "drain_gate"
GUARD_STOP_ON_LOSS = "stop_on_loss"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    sessions: int
    mode: ProbeMode
    action: str = "none"
    stale_clients: int = 0  # extra clients in stale_cookie mode, on top of ``sessions``
    # The target group's stickiness duration (seconds, unscaled): the demo's 1 day unless the
    # scenario configures a short one to show what a stale cookie does.
    stickiness_duration_s: float = DEMO_STICKINESS_S
    tasks: int | None = None  # None: --tasks
    min_healthy_percent: int = 100
    max_percent: int = 200
    group_stickiness: bool | None = None  # None: one target group; else blue/green, AWSALBTG
    group_stickiness_s: float = GROUP_STICKINESS_S  # its duration (seconds, unscaled)
    late_clients: int = 0  # extra clients that start after the production traffic shift
    hooks: tuple[str, ...] = ()  # lifecycle stages the service has hooks on
    steps: tuple[int, ...] = (100,)  # production traffic shift steps (canary / linear)
    capacity_provider: str = "FARGATE"
    on_lost: str = "reconnect"  # what a client does after a loss (see ops.client.drive)
    # "python": the reference server, instrumented in process. "typescript": a TypeScript SDK
    # server with the SessionWatch sidecar in front (lab.task_process.SidecarTask).
    server: str = "python"
    max_sessions: int | None = None  # the server's SDK cap per task (None: the SDK's 10,000)
    sessions_never_expire: bool = False  # session_idle_timeout=None on the server
    expect: Expectation = field(default_factory=lambda: Expectation(None))
    guard: str = ""  # GUARD_DRAIN_GATE / GUARD_STOP_ON_LOSS: SessionWatch acts on the rollout
    lifetimes: tuple[int, ...] = ()  # per client: cycles, then DELETE (empty: until the end)
    max_hold_s: float = 600.0  # the drain gate's max_hold, AWS seconds (scaled in the lab)
    stop_threshold: int = 2  # stop on loss: deployment losses that roll it back
    # Variants (VARIANTS) run right after this one and shown beside it, e.g. without the gate.
    side_by_side: tuple[str, ...] = ()

    @property
    def deploy(self) -> bool:
        return self.action in DEPLOYING_ACTIONS


_DEPLOYMENT_LOSS = Expectation(
    Cause.DEPLOYMENT,
    alarms_fire=frozenset({ALARM_DEPLOYMENT, ALARM_SPIKE}),
    alarms_silent=frozenset({ALARM_STICKINESS, ALARM_LB_REFUSED}),
    report_expected=True,
    report_spike=True,
    lb_refused=False,
)
# Blue/green with AWSALBTG: clients pinned to blue are refused by the load balancer after
# clean-up until their cookie expires, then lose their session on green. Those losses come
# after the deployment ended (by the lock-out's length): the spike check, which reads the
# deployment window, need not see them; the per-session verdicts and the follow-up report do.
_LOCK_OUT = Expectation(
    Cause.DEPLOYMENT,
    alarms_fire=frozenset({ALARM_DEPLOYMENT, ALARM_LB_REFUSED}),
    alarms_silent=frozenset({ALARM_STICKINESS}),
    report_expected=True,
    report_spike=None,
    lb_refused=True,
)
_QUIET = frozenset({ALARM_DEPLOYMENT, ALARM_STICKINESS, ALARM_SPIKE, ALARM_LB_REFUSED})


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "rolling-deploy",
            "sessions open on the old tasks while a rolling deployment replaces them",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="rolling",
            expect=_DEPLOYMENT_LOSS,
        ),
        Scenario(
            "typescript-server",
            "rolling-deploy with TypeScript SDK tasks, each behind the SessionWatch sidecar",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="rolling",
            server="typescript",
            expect=_DEPLOYMENT_LOSS,
        ),
        Scenario(
            "stateless-clients",
            "clients on protocol 2026-07-28 (no sessions) through the same deployment",
            sessions=4,
            mode=ProbeMode.STATELESS,
            action="rolling",
            expect=Expectation(
                None,
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_STICKINESS, ALARM_SPIKE}),
                report_expected=True,
                report_spike=False,
            ),
        ),
        Scenario(
            "stale-cookie-client",
            "one client keeps its first AWSALB value past the stickiness duration (80 s here, "
            "4 s at 20x); no deployment at all",
            sessions=1,
            mode=ProbeMode.SESSION,
            stale_clients=1,
            action="wait_loss",
            stickiness_duration_s=80.0,
            expect=Expectation(
                Cause.STICKINESS,
                alarms_fire=frozenset({ALARM_STICKINESS}),
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_SPIKE}),
            ),
        ),
        Scenario(
            "task-crash",
            "a task's container dies (SIGKILL) outside any deployment",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="crash",
            expect=Expectation(
                Cause.TASK_FAILURE,
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_STICKINESS, ALARM_SPIKE}),
            ),
        ),
        Scenario(
            "quiet-deploy",
            "a rolling deployment with no session open",
            sessions=0,
            mode=ProbeMode.SESSION,
            action="rolling",
            expect=Expectation(
                None,
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_STICKINESS, ALARM_SPIKE}),
                report_expected=True,
                report_spike=False,
            ),
        ),
        Scenario(
            "blue-green",
            "ECS native blue/green with target-group stickiness (AWSALBTG, 5 min, longer "
            "than the 60 s bake): clients stay on blue through the traffic shift and the bake "
            "time; after clean-up the load balancer refuses them (503) until their AWSALBTG "
            "expires, then they lose their session on green; 2 clients that arrive after the "
            "shift are pinned to green and survive; hooks on the production traffic shift "
            "and the bake time",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="blue_green",
            group_stickiness=True,
            late_clients=2,
            hooks=("PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME"),
            expect=_LOCK_OUT,
        ),
        Scenario(
            "blue-green-short-tg-stickiness",
            "the same blue/green with a 60 s target-group stickiness duration (the bake is "
            "60 s too): each answer refreshes an active client's AWSALBTG, so clients still "
            "stay on blue through the bake, and the lock-out after clean-up lasts at most "
            "the 60 s (3 s at 20x) before they move to green and lose their session there",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="blue_green",
            group_stickiness=True,
            group_stickiness_s=60.0,
            late_clients=2,
            hooks=("PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME"),
            expect=_LOCK_OUT,
        ),
        Scenario(
            "blue-green-no-tg-stickiness",
            "ECS native blue/green without target-group stickiness: the production traffic "
            "shift moves every client to green while blue still RUNS (bake time); a hook on "
            "the production traffic shift",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="blue_green",
            group_stickiness=False,
            hooks=("PRODUCTION_TRAFFIC_SHIFT",),
            expect=_DEPLOYMENT_LOSS,
        ),
        Scenario(
            "canary",
            "ECS native canary, 25 % then 100 %, no target-group stickiness: each request of "
            "a blue session lands on green with the step's weight; a client stops at its loss",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="blue_green",
            group_stickiness=False,
            steps=(25, 100),
            hooks=("PRODUCTION_TRAFFIC_SHIFT",),
            on_lost="stop",
            expect=_DEPLOYMENT_LOSS,
        ),
        Scenario(
            "rollback",
            "revision 2 hangs at start: its tasks fail their health checks, the circuit "
            "breaker fails the deployment and a rollback deployment replaces the old tasks",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="circuit_breaker",
            expect=Expectation(
                Cause.DEPLOYMENT,
                alarms_fire=frozenset({ALARM_DEPLOYMENT}),
                alarms_silent=frozenset({ALARM_STICKINESS}),
                report_expected=True,
                rolled_back_by="circuit breaker",
            ),
        ),
        Scenario(
            "rollback-on-alarm",
            "4 tasks, rolling with minimumHealthyPercent 50 (two waves): the first wave loses "
            "sessions, the deployment alarm goes to ALARM, ECS rolls back; the second wave is "
            "never replaced",
            sessions=8,
            mode=ProbeMode.SESSION,
            action="rollback_on_alarm",
            tasks=4,
            min_healthy_percent=50,
            max_percent=100,
            expect=Expectation(
                Cause.DEPLOYMENT,
                alarms_fire=frozenset({ALARM_DEPLOYMENT}),
                alarms_silent=frozenset({ALARM_STICKINESS}),
                report_expected=True,
                rolled_back_by="alarm",
            ),
        ),
        Scenario(
            "scale-in",
            "service auto scaling removes one of 3 tasks (the scheduler stops it) outside "
            "any deployment",
            sessions=6,
            mode=ProbeMode.SESSION,
            action="scale_in",
            tasks=3,
            expect=Expectation(Cause.SCALE_IN, alarms_silent=_QUIET),
        ),
        Scenario(
            "spot",
            "a Fargate Spot interruption stops one of the service's Spot tasks; ECS starts a "
            "replacement",
            sessions=4,
            mode=ProbeMode.SESSION,
            action="spot",
            capacity_provider="FARGATE_SPOT",
            expect=Expectation(Cause.INFRASTRUCTURE, alarms_silent=_QUIET),
        ),
        Scenario(
            "session-cap",
            "one task whose sessions never expire (session_idle_timeout=None) with an SDK cap "
            "of 3 (max_sessions): 5 clients, the first 3 hold sessions, the other 2 get 503 "
            "'Too many open sessions' at every try; no deployment",
            sessions=5,
            mode=ProbeMode.SESSION,
            tasks=1,
            max_sessions=3,
            sessions_never_expire=True,
            expect=Expectation(
                None,
                alarms_fire=frozenset({ALARM_SESSION_CAP}),
                alarms_silent=_QUIET,
                refusals=True,
            ),
        ),
        Scenario(
            "cookieless-clients",
            "clients that never return the AWSALB cookie (like most MCP clients today), "
            "2 tasks, no deployment",
            sessions=4,
            mode=ProbeMode.NO_COOKIES,
            action="wait_loss",
            expect=Expectation(
                Cause.STICKINESS,
                alarms_fire=frozenset({ALARM_STICKINESS}),
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_SPIKE}),
            ),
        ),
    )
}


_GUARDED_LOSS = Expectation(
    Cause.DEPLOYMENT,
    alarms_fire=frozenset({ALARM_DEPLOYMENT}),
    alarms_silent=frozenset({ALARM_STICKINESS}),
    report_expected=True,
)
# Sessions of varied lifetimes (client cycles of 1 s): six end within the gate's hold (20 s at
# 30x, 30 s at 20x, from the production shift), two outlive it and are lost at clean-up.
DRAIN_GATE_LIFETIMES = (10, 13, 16, 19, 22, 26, 400, 400)
_DRAIN_GATE = Scenario(
    "blue-green-drain-gate",
    "ECS native blue/green with AWSALBTG and SessionWatch's drain gate on "
    "POST_PRODUCTION_TRAFFIC_SHIFT (max_hold 600 s): sessions of varied lifetimes end on blue "
    "while the gate holds its clean-up; shown beside the same rollout without the gate",
    sessions=8,
    mode=ProbeMode.SESSION,
    action="blue_green",
    group_stickiness=True,
    hooks=("PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"),
    on_lost="stop",
    guard=GUARD_DRAIN_GATE,
    lifetimes=DRAIN_GATE_LIFETIMES,
    expect=_GUARDED_LOSS,
    side_by_side=("blue-green-drain-gate-off",),
)
_STOP_ON_LOSS = Scenario(
    "rolling-stop-on-loss",
    "4 tasks, rolling 50/100 (two waves); SessionWatch stops the deployment "
    "(StopServiceDeployment, ROLLBACK) after 2 lost sessions; shown beside the alarm "
    "rollback and no stop at all",
    sessions=8,
    mode=ProbeMode.SESSION,
    action="rolling_stop_on_loss",
    tasks=4,
    min_healthy_percent=50,
    max_percent=100,
    guard=GUARD_STOP_ON_LOSS,
    expect=replace(_GUARDED_LOSS, rolled_back_by="stop request"),
    side_by_side=("rolling-stop-on-loss-alarm", "rolling-stop-on-loss-none"),
)
SCENARIOS[_DRAIN_GATE.name] = _DRAIN_GATE
SCENARIOS[_STOP_ON_LOSS.name] = _STOP_ON_LOSS
# Run only beside their scenario (``side_by_side``), not on their own in ``--scenario all``.
VARIANTS: dict[str, Scenario] = {
    v.name: v
    for v in (
        replace(
            _DRAIN_GATE,
            name="blue-green-drain-gate-off",
            summary="the same blue/green rollout and sessions, without the drain gate",
            guard="",
            side_by_side=(),
        ),
        replace(
            _STOP_ON_LOSS,
            name="rolling-stop-on-loss-alarm",
            summary="the same rollout with the deployment alarm's rollback (rollback-on-alarm)",
            action="rollback_on_alarm",
            guard="",
            expect=replace(_GUARDED_LOSS, rolled_back_by="alarm"),
            side_by_side=(),
        ),
        replace(
            _STOP_ON_LOSS,
            name="rolling-stop-on-loss-none",
            summary="the same rollout with no stop: both waves replaced",
            action="rolling",
            guard="",
            expect=_GUARDED_LOSS,
            side_by_side=(),
        ),
    )
}


def compare(results: dict[str, dict[str, object]]) -> list[str]:
    """What the side-by-side runs must show: the guard saved sessions (or at worst lost no
    more than the alternative). ``results``: scenario name -> its summary.json."""

    def lost(name: str) -> int:
        value = results.get(name, {}).get("lost")
        return value if isinstance(value, int) else -1

    problems = []
    gate = {"blue-green-drain-gate", "blue-green-drain-gate-off"} <= set(results)
    if gate and not 0 <= lost("blue-green-drain-gate") < lost("blue-green-drain-gate-off"):
        problems.append("the drain gate did not save sessions")
    if {"rolling-stop-on-loss", "rolling-stop-on-loss-none"} <= set(results):
        stop, alarm = lost("rolling-stop-on-loss"), lost("rolling-stop-on-loss-alarm")
        if not 0 <= stop < lost("rolling-stop-on-loss-none"):
            problems.append("stop on loss did not save sessions against no stop")
        if alarm >= 0 and stop > alarm:
            problems.append("stop on loss lost more sessions than the alarm rollback")
    return problems


@dataclass(frozen=True)
class Outcome:
    """What the run observed, client side and SessionWatch side."""

    lost_sessions: frozenset[str]  # fingerprints the server said were gone, at least once
    causes: dict[str, str]  # fingerprint -> decided cause (absent: no verdict)
    alarms_fired: frozenset[str]
    reports: int
    report_lost: int | None = None  # "sessions lost" summed over the deployment reports
    report_spike: bool | None = None  # a report's metric check found a spike (None: no check)
    # Per deployment id: the lab's ground truth (lost sessions whose origin task that
    # deployment replaced) and what its SNS report says; None: compare the sums only.
    truth_by_deployment: dict[str, int] | None = None
    report_lost_by: dict[str, int] | None = None
    rolled_back_by: str | None = None
    refused_answers: int = 0  # initialize answers the clients saw refused at the cap
    refusals_logged: int = 0  # session_refused lines the servers wrote
    lb_503: int = 0  # 503s the load balancer itself sent (HTTPCode_ELB_503_Count, summed)
    # The longest run of 503s one client saw, against the AWSALBTG lifetime in lab seconds
    # (None: no group stickiness): a lock-out must end when the cookie expires.
    longest_lock_out_s: float = 0.0
    group_cookie_lifetime_s: float | None = None
    report_refused: int | None = None  # the lock-out paragraph's count (None: no paragraph)


def check(scenario: Scenario, outcome: Outcome) -> list[str]:
    """Every way the outcome differs from the scenario's expectation (empty: verdict right)."""
    problems: list[str] = []
    expect = scenario.expect
    lost = outcome.lost_sessions
    if expect.loss_cause is None:
        if lost:
            problems.append(f"{len(lost)} session(s) lost where none should be")
    else:
        if not lost:
            problems.append("no session was lost: the scenario did not reproduce its failure")
        unattributed = sorted(fp for fp in lost if fp not in outcome.causes)
        if unattributed:
            problems.append(f"{len(unattributed)} lost session(s) without a verdict")
        wrong = sorted(
            f"{fp}={outcome.causes[fp]}"
            for fp in lost
            if fp in outcome.causes and outcome.causes[fp] != expect.loss_cause.value
        )
        if wrong:
            problems.append(f"cause is not {expect.loss_cause.value} for: {', '.join(wrong)}")
    for alarm in sorted(expect.alarms_fire - outcome.alarms_fired):
        problems.append(f"alarm {alarm} did not fire")
    for alarm in sorted(expect.alarms_silent & outcome.alarms_fired):
        problems.append(f"alarm {alarm} fired but should stay silent")
    for alarm in sorted(a for a in outcome.alarms_fired if a.startswith(ALARM_ERRORS_PREFIX)):
        problems.append(f"alarm {alarm} fired: a detector raised")
    if expect.refusals:
        if not outcome.refused_answers:
            problems.append("no client was refused: the scenario did not reach the cap")
        elif outcome.refusals_logged != outcome.refused_answers:
            problems.append(
                f"clients were refused {outcome.refused_answers} time(s), SessionWatch logged "
                f"{outcome.refusals_logged} session_refused"
            )
    if expect.rolled_back_by != outcome.rolled_back_by:
        problems.append(
            f"the rollout ended {outcome.rolled_back_by or 'without a rollback'}, expected "
            f"{expect.rolled_back_by or 'no rollback'}"
        )
    problems += _refused_problems(expect.lb_refused, outcome)
    if expect.report_expected and outcome.reports and outcome.truth_by_deployment is not None:
        problems += _per_deployment(outcome.truth_by_deployment, outcome.report_lost_by or {})
        problems += _spike_problems(expect.report_spike, outcome.report_spike)
    elif expect.report_expected:
        if outcome.reports == 0:
            problems.append("no deployment report reached the SNS topic's subscriber")
        else:
            wanted = (
                sum(1 for fp in lost if outcome.causes.get(fp) == Cause.DEPLOYMENT.value)
                if expect.loss_cause is Cause.DEPLOYMENT
                else 0
            )
            if outcome.report_lost != wanted:
                problems.append(
                    f"the deployment report says {outcome.report_lost} lost, the lab saw {wanted}"
                )
            problems += _spike_problems(expect.report_spike, outcome.report_spike)
    return problems


def _per_deployment(truth: dict[str, int], reported: dict[str, int]) -> list[str]:
    """Each deployment's report must count exactly the losses of the tasks it replaced."""
    problems = []
    for dep in sorted(set(truth) | set(reported)):
        want, said = truth.get(dep, 0), reported.get(dep)
        if said is None:
            if want:
                problems.append(f"no report for {dep}, which the lab saw lose {want}")
        elif said != want:
            problems.append(f"the report of {dep} says {said} lost, the lab saw {want}")
    return problems


def _refused_problems(expected: bool | None, outcome: Outcome) -> list[str]:
    if expected is None:
        return []
    if not expected:
        if outcome.lb_503:
            return [f"the load balancer refused {outcome.lb_503} request(s) where none should be"]
        return []
    problems = []
    if not outcome.lb_503:
        problems.append("the load balancer refused nothing: no client was locked out")
    # One request interval plus HAProxy's whole-second dates beyond the cookie's lifetime.
    bound = (outcome.group_cookie_lifetime_s or 0.0) + LOCK_OUT_TOLERANCE_S
    if outcome.group_cookie_lifetime_s is not None and outcome.longest_lock_out_s > bound:
        problems.append(
            f"a client was refused for {outcome.longest_lock_out_s:.1f} s, longer than its "
            f"AWSALBTG lives ({outcome.group_cookie_lifetime_s:g} s)"
        )
    if not outcome.report_refused:
        problems.append("no deployment report names the requests the load balancer refused")
    elif outcome.report_refused > outcome.lb_503:
        problems.append(
            f"the report says {outcome.report_refused} refused, the load balancer sent "
            f"{outcome.lb_503}"
        )
    return problems


def _spike_problems(expected: bool | None, found: bool | None) -> list[str]:
    if expected is None or found is expected:
        return []
    if found is None:
        return ["the deployment report has no metric spike check"]
    if expected:
        return ["the deployment report's metric check found no spike"]
    return ["the deployment report's metric check found a spike where none should be"]
