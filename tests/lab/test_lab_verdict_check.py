"""The verdict check that decides the lab's exit status: every wrong outcome is named."""

from __future__ import annotations

from lab.scenarios import (
    ALARM_DEPLOYMENT,
    ALARM_LB_REFUSED,
    ALARM_SESSION_CAP,
    ALARM_SPIKE,
    ALARM_STICKINESS,
    SCENARIOS,
    Outcome,
    check,
)
from lab.truth import refusals_logged, refused_answers

ROLLING = SCENARIOS["rolling-deploy"]
QUIET = SCENARIOS["quiet-deploy"]
STALE = SCENARIOS["stale-cookie-client"]


def outcome(**kw: object) -> Outcome:
    base: dict[str, object] = {
        "lost_sessions": frozenset({"a", "b"}),
        "causes": {"a": "deployment", "b": "deployment"},
        "alarms_fired": frozenset({ALARM_DEPLOYMENT, ALARM_SPIKE}),
        "reports": 1,
        "report_lost": 2,
        "report_spike": True,
    }
    base.update(kw)
    return Outcome(**base)  # type: ignore[arg-type]


def test_right_rolling_deploy_verdict_passes() -> None:
    assert check(ROLLING, outcome()) == []


def test_wrong_verdicts_are_each_reported() -> None:
    assert check(ROLLING, outcome(lost_sessions=frozenset(), causes={}, report_lost=0)) == [
        "no session was lost: the scenario did not reproduce its failure"
    ]
    assert check(ROLLING, outcome(causes={"a": "deployment"})) == [
        "1 lost session(s) without a verdict",
        "the deployment report says 2 lost, the lab saw 1",
    ]
    assert check(
        ROLLING, outcome(causes={"a": "deployment", "b": "stickiness"}, report_lost=1)
    ) == ["cause is not deployment for: b=stickiness"]
    assert check(ROLLING, outcome(alarms_fired=frozenset({ALARM_STICKINESS}))) == [
        "alarm deployment did not fire",
        "alarm spike did not fire",
        "alarm stickiness fired but should stay silent",
    ]
    assert check(ROLLING, outcome(reports=0, report_lost=None)) == [
        "no deployment report reached the SNS topic's subscriber"
    ]


def test_no_loss_scenarios_fail_on_any_loss_or_alarm() -> None:
    clean = outcome(
        lost_sessions=frozenset(),
        causes={},
        alarms_fired=frozenset(),
        report_lost=0,
        report_spike=False,
    )
    assert check(QUIET, clean) == []
    assert check(QUIET, outcome(report_lost=0, alarms_fired=frozenset(), report_spike=False)) == [
        "2 session(s) lost where none should be"
    ]
    assert "alarm deployment fired but should stay silent" in check(
        QUIET, outcome(lost_sessions=frozenset(), causes={}, report_lost=0)
    )


def test_stale_cookie_expects_stickiness_and_no_deployment_alarm() -> None:
    good = outcome(
        causes={"a": "stickiness", "b": "stickiness"},
        alarms_fired=frozenset({ALARM_STICKINESS}),
        reports=0,
        report_lost=None,
    )
    assert check(STALE, good) == []
    assert check(STALE, outcome(reports=0, report_lost=None)) == [
        "cause is not stickiness for: a=deployment, b=deployment",
        "alarm stickiness did not fire",
        "alarm deployment fired but should stay silent",
        "alarm spike fired but should stay silent",
    ]


def test_the_spike_verdict_is_checked_in_the_report_and_the_alarm() -> None:
    assert check(ROLLING, outcome(report_spike=False)) == [
        "the deployment report's metric check found no spike"
    ]
    assert check(ROLLING, outcome(report_spike=None)) == [
        "the deployment report has no metric spike check"
    ]
    quiet = outcome(lost_sessions=frozenset(), causes={}, report_lost=0)
    assert check(QUIET, quiet) == [
        "alarm deployment fired but should stay silent",
        "alarm spike fired but should stay silent",
        "the deployment report's metric check found a spike where none should be",
    ]
    # No deployment, no deployment window: the spike alarm must stay silent.
    stale = outcome(
        causes={"a": "stickiness", "b": "stickiness"},
        alarms_fired=frozenset({ALARM_STICKINESS, ALARM_SPIKE}),
        reports=0,
        report_lost=None,
        report_spike=None,
    )
    assert check(STALE, stale) == ["alarm spike fired but should stay silent"]


def test_a_detector_error_alarm_fails_every_scenario() -> None:
    fired = frozenset({ALARM_DEPLOYMENT, ALARM_SPIKE, "errors:sessionwatch-lab-session_events"})
    assert check(ROLLING, outcome(alarms_fired=fired)) == [
        "alarm errors:sessionwatch-lab-session_events fired: a detector raised"
    ]


def test_session_cap_needs_refusals_each_logged_and_its_alarm() -> None:
    cap = SCENARIOS["session-cap"]
    quiet = {"lost_sessions": frozenset(), "causes": {}, "reports": 0, "report_lost": None}
    right = outcome(
        **quiet,
        alarms_fired=frozenset({ALARM_SESSION_CAP}),
        refused_answers=4,
        refusals_logged=4,
    )
    assert check(cap, right) == []
    assert check(cap, outcome(**quiet, alarms_fired=frozenset({ALARM_SESSION_CAP}))) == [
        "no client was refused: the scenario did not reach the cap"
    ]
    unlogged = outcome(**quiet, alarms_fired=frozenset(), refused_answers=4, refusals_logged=3)
    assert check(cap, unlogged) == [
        f"alarm {ALARM_SESSION_CAP} did not fire",
        "clients were refused 4 time(s), SessionWatch logged 3 session_refused",
    ]


def test_refused_answers_are_read_by_the_one_recognizer() -> None:
    calls = [
        {"tool": "initialize", "http_status": 503, "jsonrpc_code": -32603,
         "jsonrpc_message": "Too many open sessions"},
        # The load balancer's own 503 (no JSON-RPC error) and a tool call's error are not.
        {"tool": "initialize", "http_status": 503, "jsonrpc_code": None},
        {"tool": "whoami", "http_status": 503, "jsonrpc_code": -32603,
         "jsonrpc_message": "Too many open sessions"},
    ]  # fmt: skip
    assert refused_answers(calls) == 1
    records = [[{"event": "session_refused"}, {"event": "session_created"}], [{"event": "x"}]]
    assert refusals_logged(records) == 1


def test_the_blue_green_lock_out_must_be_seen_named_and_bounded() -> None:
    blue_green = SCENARIOS["blue-green"]
    seen = {
        "alarms_fired": frozenset({ALARM_DEPLOYMENT, ALARM_LB_REFUSED}),
        "report_spike": None,
        "group_cookie_lifetime_s": 15.0,
    }
    right = outcome(**seen, lb_503=116, report_refused=116, longest_lock_out_s=14.3)
    assert check(blue_green, right) == []
    # the stand-in that trades the lock-out for a milder failure refuses nothing
    assert check(blue_green, outcome(**seen, lb_503=0, report_refused=None)) == [
        "the load balancer refused nothing: no client was locked out",
        "no deployment report names the requests the load balancer refused",
    ]
    # a refusal that outlives the cookie is not what ALB does
    long = outcome(**seen, lb_503=200, report_refused=200, longest_lock_out_s=30.0)
    assert check(blue_green, long) == [
        "a client was refused for 30.0 s, longer than its AWSALBTG lives (15 s)"
    ]
    assert check(blue_green, outcome(**seen, lb_503=10, report_refused=11))[0].startswith(
        "the report says 11 refused"
    )


def test_no_refusal_where_nothing_pins_clients_to_an_empty_group() -> None:
    no_tg = SCENARIOS["blue-green-no-tg-stickiness"]
    assert check(no_tg, outcome(lb_503=3)) == [
        "the load balancer refused 3 request(s) where none should be"
    ]
    assert check(no_tg, outcome()) == []
