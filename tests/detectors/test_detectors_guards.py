"""The deployment guards over moto's DynamoDB: the drain gate (as ECS calls it), stop on loss
(a botocore Stubber checks the ECS calls against the service model), the first-loss alert."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from sessionwatch import contract
from sessionwatch.contract import Cause
from sessionwatch.detectors import drain_gate, stop_on_loss
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.drain_gate import (
    BROKEN,
    DRAINED,
    HOLDING,
    IN_PROGRESS,
    MAX_HOLD,
    NO_FACTS,
    SUCCEEDED,
    GateSettings,
    GateState,
    GateView,
    decide,
    run_gate,
)
from sessionwatch.detectors.guard_config import GuardConfig, load_guard_config
from sessionwatch.detectors.guard_report import guard_lines
from sessionwatch.detectors.guards import act_on_losses
from sessionwatch.detectors.ingest import ingest_ecs_events, ingest_log_payload
from sessionwatch.detectors.ledger import Guard
from sessionwatch.detectors.reporter_run import run_reporter
from tests.detectors.builders import CLUSTER, SERVICE, T0, deployment, fp, line, subscription, task
from tests.detectors.conftest import LedgerEnv
from world.ecs import STOP_SCHEDULER

OLD, NEW = "ecs-svc/old", "ecs-svc/new"
SERVICE_ARN = f"arn:aws:ecs:us-east-1:111122223333:service/{CLUSTER}/{SERVICE}"
SETTINGS = GateSettings(max_hold_s=600, callback_s=30, facts_wait_s=120)
SCHED = STOP_SCHEDULER


def hook(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A POST_PRODUCTION_TRAFFIC_SHIFT payload with the fields ECS documents for every stage."""
    rev = f"arn:aws:ecs:us-east-1:111122223333:service-revision/{CLUSTER}/{SERVICE}/"
    return {
        "serviceArn": SERVICE_ARN,
        "targetServiceRevisionArn": rev + "2",
        "testTrafficWeights": {},
        "productionTrafficWeights": {rev + "1": 0, rev + "2": 100},
        "hookDetails": details or {},
    }


def blue_green(env: LedgerEnv) -> None:
    """Blue (old) task with three sessions, the deployment in progress, green running."""
    events = [
        task("blue", "RUNNING", T0 - 900, started_by=OLD, started_at=T0 - 900),
        deployment(NEW, "IN_PROGRESS", T0),
        task("green", "RUNNING", T0 + 30, started_by=NEW, started_at=T0 + 30),
    ]
    assert not ingest_ecs_events(events, env.cfg, env.ledger, None, now=T0 + 31).failed
    logs = [line("session_created", "blue", T0 - 500 + i, session=fp(f"b{i}")) for i in range(3)]
    logs.append(line("session_created", "green", T0 + 40, session=fp("g")))
    assert not ingest_log_payload(subscription(logs), env.cfg, env.ledger, T0 + 41).failed


def close(env: LedgerEnv, name: str, t: float, task_id: str = "blue") -> None:
    payload = subscription(
        [line("session_closed", task_id, t, session=fp(name), reason="client_delete")]
    )
    assert not ingest_log_payload(payload, env.cfg, env.ledger, t).failed


def test_decide_holds_then_releases_when_drained_or_at_max_hold() -> None:
    first = decide(None, GateView(NEW, frozenset({"a", "b"})), T0, SETTINGS)
    assert (first.status, first.reason, first.state.held, first.callback_s) == (
        IN_PROGRESS,
        HOLDING,
        2,
        30,
    )
    # The callback never overshoots max_hold: 10 s before it, ECS is told to call in 10 s.
    near = decide(first.state, GateView(NEW, frozenset({"a"})), T0 + 590, SETTINGS)
    assert (near.status, near.callback_s, near.state.calls) == (IN_PROGRESS, 10, 2)
    assert (
        decide(first.state, GateView(NEW, frozenset({"a"})), T0 + 600, SETTINGS).reason == MAX_HOLD
    )
    assert decide(first.state, GateView(NEW), T0 + 60, SETTINGS).reason == DRAINED
    # A deployment the ledger does not know yet is waited for, for the grace period only.
    unknown = decide(None, GateView(None), T0, SETTINGS)
    assert (unknown.status, unknown.callback_s) == (IN_PROGRESS, 30)
    assert decide(unknown.state, GateView(None), T0 + 120, SETTINGS).reason == NO_FACTS
    # Known at the second call: what blue holds then is what the gate holds for.
    seen = decide(unknown.state, GateView(NEW, frozenset({"a"})), T0 + 30, SETTINGS)
    assert (seen.state.held, seen.state.deployment_id, seen.state.first_at) == (1, NEW, T0)
    # The response is what ECS reads: status, delay, and the state to hand back next time.
    assert first.response() == {
        "hookStatus": "IN_PROGRESS",
        "callBackDelay": 30,
        "hookDetails": first.state.to_details(),
    }
    assert decide(first.state, GateView(NEW), T0 + 60, SETTINGS).response() == {
        "hookStatus": "SUCCEEDED"
    }


@pytest.mark.parametrize(
    "details",
    [None, "x", {"sessionwatch": "x"}, {"sessionwatch": {"first_at": "now", "held": 1}},
     {"sessionwatch": {"first_at": float("nan"), "held": 1}}],
)  # fmt: skip
def test_malformed_hook_details_restart_the_hold(details: object) -> None:
    assert GateState.from_details(details) is None


def test_gate_holds_for_blue_sessions_opened_before_the_shift_only(ledger_env: LedgerEnv) -> None:
    blue_green(ledger_env)
    lg, horizon = ledger_env.ledger, T0 - 86400

    _, d1 = run_gate(hook(), lg, SETTINGS, T0 + 100, horizon)
    assert (d1.status, d1.live, d1.state.held, d1.state.deployment_id) == (IN_PROGRESS, 3, 3, NEW)
    # A sticky client opens a new session on blue after the shift: it does not hold the gate.
    payload = subscription([line("session_created", "blue", T0 + 110, session=fp("late"))])
    ingest_log_payload(payload, ledger_env.cfg, lg, T0 + 111)
    close(ledger_env, "b0", T0 + 120)
    close(ledger_env, "b1", T0 + 125)
    # ECS calls again after callBackDelay with the hookDetails it was given.
    _, d2 = run_gate(hook(d1.response()["hookDetails"]), lg, SETTINGS, T0 + 130, horizon)
    assert (d2.status, d2.live, d2.state.held, d2.state.calls) == (IN_PROGRESS, 1, 3, 2)
    close(ledger_env, "b2", T0 + 150)
    _, d3 = run_gate(hook(d2.response()["hookDetails"]), lg, SETTINGS, T0 + 160, horizon)
    assert (d3.status, d3.reason) == (SUCCEEDED, DRAINED)
    gate, stopped = guard_lines(lg, SERVICE, NEW)
    assert stopped is None
    assert (
        gate
        == "drain gate held 60 s for 3 session(s): 3 ended, 0 lost at clean-up (released: drained)"
    )


def test_gate_released_at_max_hold_reports_the_session_lost_at_clean_up(
    ledger_env: LedgerEnv,
) -> None:
    blue_green(ledger_env)
    lg, cfg = ledger_env.ledger, ledger_env.cfg
    _, d1 = run_gate(hook(), lg, SETTINGS, T0 + 100, T0 - 86400)
    close(ledger_env, "b0", T0 + 200)
    close(ledger_env, "b1", T0 + 300)
    _, d2 = run_gate(hook(d1.state.to_details()), lg, SETTINGS, T0 + 700, T0 - 86400)
    assert (d2.status, d2.reason, d2.live) == (SUCCEEDED, MAX_HOLD, 1)
    # Clean-up stops blue; b2's client comes back to green and its session is gone.
    stop = task("blue", "STOPPED", T0 + 760, started_by=OLD, stopping_at=T0 + 710,
                stopped_at=T0 + 760, stop_code=SCHED)  # fmt: skip
    ingest_ecs_events([stop], cfg, lg, None, now=T0 + 761)
    lost = subscription([line("session_not_found", "green", T0 + 720, session=fp("b2"))])
    decided = ingest_log_payload(lost, cfg, lg, T0 + 900).decisions
    assert [(d.verdict.cause, d.verdict.deployment_id) for d in decided] == [
        (Cause.DEPLOYMENT, NEW)
    ]
    gate, _ = guard_lines(lg, SERVICE, NEW)
    assert gate == (
        "drain gate held 10 min for 3 session(s): 2 ended, 1 lost at clean-up (released: max_hold)"
    )


def test_handler_fails_open_when_sessionwatch_is_broken(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture, lambda_context: Any, aws: None,
) -> None:  # fmt: skip
    from sessionwatch.detectors.handlers import drain_gate as handler_mod
    from sessionwatch.detectors.handlers import guard_runtime, runtime

    monkeypatch.setenv("LEDGER_TABLE_NAME", "no-such-table")
    monkeypatch.setenv("CLUSTER_NAME", CLUSTER)
    runtime.reset()
    guard_runtime.reset()
    try:
        # The ledger is unreadable: SUCCEEDED (a failure must not roll back a good deployment).
        assert handler_mod.handler(hook(), lambda_context) == {"hookStatus": "SUCCEEDED"}
        # So is a hook of a service in another cluster (a misconfiguration, counted).
        other = hook() | {"serviceArn": SERVICE_ARN.replace(f"/{CLUSTER}/", "/other/")}
        assert handler_mod.handler(other, lambda_context) == {"hookStatus": "SUCCEEDED"}
        # So is a payload that is not what ECS sends.
        assert handler_mod.handler({"serviceArn": 7}, lambda_context) == {"hookStatus": "SUCCEEDED"}
    finally:
        runtime.reset()
        guard_runtime.reset()
    decided = [r for r in caplog.records if r.getMessage() == contract.GATE_LOG_MESSAGE]
    assert [(r.reason, r.hook_status) for r in decided] == [(BROKEN, SUCCEEDED)] * 3  # type: ignore[attr-defined]
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    failed = [x for x in lines if contract.METRIC_DRAIN_GATE_FAILED in x]
    assert [x[contract.METRIC_DRAIN_GATE_FAILED] for x in failed] == [[1.0]] * 3


def rolling_losses(env: LedgerEnv, count: int, cfg: Config) -> list[Any]:
    """A rolling deployment that stopped the old task; ``count`` of its sessions come back."""
    events = [
        task("old", "RUNNING", T0 - 900, started_by=OLD, started_at=T0 - 900),
        deployment(NEW, "IN_PROGRESS", T0),
        task("new", "RUNNING", T0 + 20, started_by=NEW, started_at=T0 + 20),
        task("old", "STOPPED", T0 + 40, started_by=OLD, stopping_at=T0 + 30,
             stopped_at=T0 + 40, stop_code=SCHED),
    ]  # fmt: skip
    ingest_ecs_events(events, cfg, env.ledger, None, now=T0 + 41)
    made = [line("session_created", "old", T0 - 100, session=fp(f"s{i}")) for i in range(count)]
    ingest_log_payload(subscription(made), cfg, env.ledger, T0 - 99)
    lost = [
        line("session_not_found", "new", T0 + 35 + i, session=fp(f"s{i}")) for i in range(count)
    ]
    return ingest_log_payload(subscription(lost), cfg, env.ledger, T0 + 45).decisions


class Topic:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **request: Any) -> None:
        self.published.append(request)


def test_stop_on_loss_stops_once_and_the_alert_goes_once(ledger_env: LedgerEnv) -> None:
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": "arn:aws:sns:us-east-1:1:t"})
    gcfg = GuardConfig(stop_on_loss=2, first_loss_alert=True)
    decisions = rolling_losses(ledger_env, 3, cfg)
    assert sum(d.counted for d in decisions) == 3
    ecs = boto3.client("ecs", region_name="us-east-1")
    arn = f"arn:aws:ecs:us-east-1:111122223333:service-deployment/{CLUSTER}/{SERVICE}/abc"
    topic = Topic()
    with Stubber(ecs) as stub:
        created = datetime.fromtimestamp(T0 + 1, UTC)
        stub.add_response(
            "list_service_deployments",
            {"serviceDeployments": [{"serviceDeploymentArn": arn, "createdAt": created}]},
            {"cluster": CLUSTER, "service": SERVICE, "status": ["PENDING", "IN_PROGRESS"],
             "createdAt": ANY},
        )  # fmt: skip
        stub.add_response(
            "stop_service_deployment",
            {"serviceDeploymentArn": arn},
            {"serviceDeploymentArn": arn, "stopType": "ROLLBACK"},
        )
        out = act_on_losses(decisions, cfg, gcfg, ledger_env.ledger, ecs, topic, T0 + 46)
        # Again (a re-delivery, the reporter): no second stop (the stub has no more answers),
        # no second alert.
        again = act_on_losses(decisions, cfg, gcfg, ledger_env.ledger, ecs, topic, T0 + 50)
        stub.assert_no_pending_responses()
    assert out.failures == [] and again.failures == [] and again.logs == []
    assert [m for m, _ in out.logs] == [contract.ALERT_LOG_MESSAGE, contract.STOP_LOG_MESSAGE]
    assert out.logs[1][1]["first_loss_to_stop_s"] == pytest.approx(11.0)
    [alert] = topic.published
    text = f"deployment {NEW} of {SERVICE} is losing sessions: 3 so far"
    assert text in alert["Subject"] and text in json.loads(alert["Message"])["email"]
    chat = json.loads(json.loads(alert["Message"])["default"])
    from sessionwatch.detectors.chat import thread_id

    assert chat["metadata"]["threadId"] == thread_id(SERVICE, NEW)  # the report's thread
    _, stopped = guard_lines(ledger_env.ledger, SERVICE, NEW)
    assert (
        stopped
        == "stopped by SessionWatch (ROLLBACK) after 3 lost session(s), 11 s after the first"
    )


def test_a_failed_stop_gives_its_claim_back_and_is_tried_again(ledger_env: LedgerEnv) -> None:
    gcfg = GuardConfig(stop_on_loss=1)
    decisions = rolling_losses(ledger_env, 1, ledger_env.cfg)
    ecs = boto3.client("ecs", region_name="us-east-1")
    arn = f"arn:aws:ecs:us-east-1:111122223333:service-deployment/{CLUSTER}/{SERVICE}/abc"
    listed = {"serviceDeployments": [{"serviceDeploymentArn": arn,
                                      "createdAt": datetime.fromtimestamp(T0, UTC)}]}  # fmt: skip
    with Stubber(ecs) as stub:
        stub.add_response("list_service_deployments", listed)
        stub.add_client_error("stop_service_deployment", "AccessDeniedException")
        stub.add_response("list_service_deployments", listed)
        stub.add_response("stop_service_deployment", {"serviceDeploymentArn": arn})
        first = act_on_losses(
            decisions, ledger_env.cfg, gcfg, ledger_env.ledger, ecs, None, T0 + 46
        )
        second = act_on_losses(
            decisions, ledger_env.cfg, gcfg, ledger_env.ledger, ecs, None, T0 + 47
        )
        stub.assert_no_pending_responses()
    assert [f["error"] for f in first.failures] == ["AccessDeniedException"]
    assert second.failures == [] and [m for m, _ in second.logs] == [contract.STOP_LOG_MESSAGE]
    assert Guard.STOP in ledger_env.ledger.guards_of(SERVICE, NEW)


def test_stop_on_loss_spares_ended_deployments_and_rollbacks() -> None:
    from sessionwatch.detectors.facts import DeploymentWindow

    running = DeploymentWindow(SERVICE, NEW, T0)
    assert stop_on_loss.should_stop(running, 2, 2)
    assert not stop_on_loss.should_stop(running, 1, 2)
    assert not stop_on_loss.should_stop(running, 5, 0)  # off
    assert not stop_on_loss.should_stop(
        DeploymentWindow(SERVICE, NEW, T0, T0 + 9, "COMPLETED"), 5, 2
    )
    assert not stop_on_loss.should_stop(DeploymentWindow(SERVICE, NEW, T0, rollback_to=OLD), 5, 2)


def test_the_report_says_what_the_guards_did(ledger_env: LedgerEnv) -> None:
    sns = boto3.client("sns", region_name="us-east-1")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cfg = Config(**{**ledger_env.cfg.__dict__, "grace_period_s": 60,
                    "report_topic_arn": sns.create_topic(Name="g")["TopicArn"]})  # fmt: skip
    rolling_losses(ledger_env, 2, cfg)
    lg = ledger_env.ledger
    lg.claim_guard(
        SERVICE, NEW, Guard.STOP, {"stopped_at": T0 + 39, "losses": 2, "first_loss_at": T0 + 35}
    )
    lg.claim_guard(SERVICE, NEW, Guard.GATE, {"first_at": T0, "held": 0, "released_at": T0 + 1,
                                              "reason": DRAINED})  # fmt: skip
    ingest_ecs_events([deployment(NEW, "COMPLETED", T0 + 60)], cfg, ledger_env.ledger, None)
    [report] = run_reporter(cfg, ledger_env.ledger, sns, cw, T0 + 200).reports
    assert (
        report.stopped
        == "stopped by SessionWatch (ROLLBACK) after 2 lost session(s), 4 s after the first"
    )
    assert report.drain_gate and report.drain_gate.startswith(
        "drain gate held 1 s for 0 session(s)"
    )
    assert "Stop on loss: stopped by SessionWatch" in report.to_text()


def test_guard_config_is_off_by_default_and_refuses_nonsense() -> None:
    assert not load_guard_config({}).acts_on_losses
    assert load_guard_config({"STOP_ON_LOSS_THRESHOLD": "2"}).stop_on_loss == 2
    from sessionwatch.detectors.config import ConfigError

    for env in ({"STOP_ON_LOSS_THRESHOLD": "-1"}, {"FIRST_LOSS_ALERT": "yes"},
                {"DRAIN_GATE_CALLBACK_SECONDS": "0"}):  # fmt: skip
        with pytest.raises(ConfigError):
            load_guard_config(env)
    assert drain_gate.service_of(hook()) == (CLUSTER, SERVICE)
