"""The lab's scenarios: what each one does, and the verdict SessionWatch must reach.

Plain data and one pure function (``check``) that compares an ``Outcome`` with the scenario's
``Expectation``; the orchestration (``lab.run``) produces the outcome. A wrong verdict is a
non-zero exit of ``python -m lab``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sessionwatch.contract import Cause
from sessionwatch.ops.client import ProbeMode

ALARM_DEPLOYMENT = "deployment"
ALARM_STICKINESS = "stickiness"
ALARM_SPIKE = "spike"
ALARM_ERRORS_PREFIX = "errors:"  # the detectors' own health alarms: never fire in any scenario


@dataclass(frozen=True)
class Expectation:
    """What must be true at the end: ``loss_cause`` None means no session may be lost.

    ``report_spike``: the deployment report's metric check (``mcp.server.session.not_found``
    against its pre-deployment baseline) must find a spike (True) or none (False); None: not
    checked. The spike check and its alarm concern deployment windows only (DESIGN section 6),
    so scenarios without a deployment expect the spike alarm silent and send no report.
    """

    loss_cause: Cause | None
    alarms_fire: frozenset[str] = frozenset()
    alarms_silent: frozenset[str] = frozenset()
    report_expected: bool = False
    report_spike: bool | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    sessions: int
    mode: ProbeMode
    deploy: bool = False
    crash: bool = False
    stale_clients: int = 0  # extra clients in stale_cookie mode, on top of ``sessions``
    expect: Expectation = field(default_factory=lambda: Expectation(None))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "rolling-deploy",
            "sessions open on the old tasks while a rolling deployment replaces them",
            sessions=4,
            mode=ProbeMode.SESSION,
            deploy=True,
            expect=Expectation(
                Cause.DEPLOYMENT,
                alarms_fire=frozenset({ALARM_DEPLOYMENT, ALARM_SPIKE}),
                alarms_silent=frozenset({ALARM_STICKINESS}),
                report_expected=True,
                report_spike=True,
            ),
        ),
        Scenario(
            "stateless-clients",
            "clients on protocol 2026-07-28 (no sessions) through the same deployment",
            sessions=4,
            mode=ProbeMode.STATELESS,
            deploy=True,
            expect=Expectation(
                None,
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_STICKINESS, ALARM_SPIKE}),
                report_expected=True,
                report_spike=False,
            ),
        ),
        Scenario(
            "stale-cookie-client",
            "one client keeps its first AWSALB value; no deployment at all",
            sessions=1,
            mode=ProbeMode.SESSION,
            stale_clients=1,
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
            crash=True,
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
            deploy=True,
            expect=Expectation(
                None,
                alarms_silent=frozenset({ALARM_DEPLOYMENT, ALARM_STICKINESS, ALARM_SPIKE}),
                report_expected=True,
                report_spike=False,
            ),
        ),
    )
}


@dataclass(frozen=True)
class Outcome:
    """What the run observed, client side and SessionWatch side."""

    lost_sessions: frozenset[str]  # fingerprints that got 404 -32600 at least once
    causes: dict[str, str]  # fingerprint -> decided cause (absent: no verdict)
    alarms_fired: frozenset[str]
    reports: int
    report_lost: int | None = None  # "sessions lost" summed over the deployment reports
    report_spike: bool | None = None  # a report's metric check found a spike (None: no check)


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
    if expect.report_expected:
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


def _spike_problems(expected: bool | None, found: bool | None) -> list[str]:
    if expected is None or found is expected:
        return []
    if found is None:
        return ["the deployment report has no metric spike check"]
    if expected:
        return ["the deployment report's metric check found no spike"]
    return ["the deployment report's metric check found a spike where none should be"]
