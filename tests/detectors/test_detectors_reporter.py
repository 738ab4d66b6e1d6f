"""The reporter: spike correlation from CloudWatch metrics, report delivery exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sessionwatch import contract
from sessionwatch.contract import METRIC_DEPLOYMENT_LOSS_SPIKE
from sessionwatch.detectors.config import (
    DEFAULT_SPIKE_PERIOD_SECONDS,
    Config,
    ConfigError,
    load_config,
)
from sessionwatch.detectors.facts import DeploymentObserved
from sessionwatch.detectors.ingest import ingest_ecs_events
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.reporter_run import ALB_NAMESPACE, REPORT_CLAIM_STALE_S, run_reporter
from sessionwatch.detectors.spike import evaluate
from tests.detectors.builders import SERVICE, deployment
from tests.detectors.conftest import LedgerEnv
from tests.detectors.test_detectors_ledger import count_calls

SERVER = "mcp-server"
LB, TG = "app/mcp-alb/50dc6c495c0c9188", "targetgroup/mcp/73e2d6bc24d8a067"


def put(cw: Any, namespace: str, name: str, dims: list[dict[str, str]], t: float, v: float) -> None:
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": name,
                "Dimensions": dims,
                "Value": v,
                "Timestamp": datetime.fromtimestamp(t, UTC),
            }
        ],
    )


@pytest.fixture
def clients(aws: None) -> dict[str, Any]:
    sns = boto3.client("sns", region_name="us-east-1")
    return {
        "sns": sns,
        "cw": boto3.client("cloudwatch", region_name="us-east-1"),
        "topic": sns.create_topic(Name="r")["TopicArn"],
    }


def spike_values(points) -> list[float]:
    return [p.value for p in points if p.name == METRIC_DEPLOYMENT_LOSS_SPIKE]


def test_spike_rule_uses_rates_against_the_baseline() -> None:
    base = [(1000.0 + 60 * i, 1.0) for i in range(30)]  # 1/min for 30 min before the window
    window = (2800.0, 3100.0)
    assert not evaluate("x", [*base, (2800.0, 5.0)], *window, period_s=60).spiked  # 5 in 5 min
    assert evaluate("x", [*base, (2800.0, 12.0)], *window, period_s=60).spiked
    assert evaluate("x", [(2800.0, 1.0)], *window, period_s=60).spiked  # from a zero baseline
    assert not evaluate("x", [], *window, period_s=60).spiked
    # A minute bucket stamped 2820 reaches into a window starting at 2830: it is the window's.
    early = evaluate("x", [(2820.0, 3.0)], 2830.0, 3100.0, period_s=60)
    assert early.window_total == 3 and early.spiked


def test_spike_rule_counts_its_baseline_and_buckets_in_periods() -> None:
    """30 periods of baseline, buckets of one period: a 3 s period means a 90 s baseline."""
    old_burst = [(2700.0, 100.0)]  # 100 s before the window: baseline at 60 s, not at 3 s
    assert evaluate("x", [*old_burst, (2805.0, 2.0)], 2800.0, 2810.0, period_s=3).spiked
    assert not evaluate("x", [*old_burst, (2805.0, 2.0)], 2800.0, 2810.0, period_s=60).spiked
    # A 3 s bucket stamped 2798 reaches into a window starting at 2800; one stamped 2797 does not.
    assert evaluate("x", [(2798.0, 1.0)], 2800.0, 2810.0, period_s=3).window_total == 1
    assert evaluate("x", [(2797.0, 1.0)], 2800.0, 2810.0, period_s=3).window_total == 0


def test_spike_period_setting_defaults_to_60_and_must_be_positive() -> None:
    base = {"LEDGER_TABLE_NAME": "t", "CLUSTER_NAME": "c"}
    assert load_config(base).spike_period_s == DEFAULT_SPIKE_PERIOD_SECONDS == 60
    assert load_config({**base, "SPIKE_PERIOD_SECONDS": " 3 "}).spike_period_s == 3
    for bad in ("0", "-60", "1.5", "sixty"):
        with pytest.raises(ConfigError, match="SPIKE_PERIOD_SECONDS"):
            load_config({**base, "SPIKE_PERIOD_SECONDS": bad})


def test_the_spike_check_queries_and_judges_with_the_configured_period(
    ledger_env: LedgerEnv, clients
) -> None:
    """SPIKE_PERIOD_SECONDS=3 (a lab at 20x): 3 s buckets from CloudWatch, a 90 s baseline.

    Under a fixed 60 s period the burst 100 s before the deployment would be baseline and the
    two losses in the 10 s deployment no spike; under 3 s it is outside the baseline.
    """
    server = "mcp-server-scaled"  # its own series: the module's moto backend is shared
    now = float(int(time.time()))
    start, end = now - 60, now - 50
    cw = clients["cw"]
    dims = [{"Name": contract.RESOURCE_SERVICE_NAME, "Value": server}]
    put(cw, "SessionWatch/MCPServer", contract.METRIC_SESSION_NOT_FOUND, dims, start - 100, 100)
    put(cw, "SessionWatch/MCPServer", contract.METRIC_SESSION_NOT_FOUND, dims, start + 4, 2)
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/fast", start, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/fast", end, True, "COMPLETED"))
    cfg = Config(
        **{
            **ledger_env.cfg.__dict__,
            "report_topic_arn": clients["topic"],
            "grace_period_s": 5,
            "server_service_name": server,
            "spike_period_s": 3,
        }
    )
    periods: list[int] = []
    cw.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData",
        lambda params, **_: periods.extend(
            q["MetricStat"]["Period"] for q in params["MetricDataQueries"]
        ),
    )
    out = run_reporter(cfg, lg, clients["sns"], cw, now)
    assert periods == [3]
    assert spike_values(out.points) == [1]
    [report] = out.reports
    [check] = report.spike
    assert (check.window_total, check.expected, check.spiked) == (2, 0, True)


def test_metrics_only_service_gets_a_spike_verdict_in_metric_and_report(
    ledger_env: LedgerEnv, clients
) -> None:
    now = time.time()
    start, end = now - 600, now - 300
    cw = clients["cw"]
    dims = [{"Name": contract.RESOURCE_SERVICE_NAME, "Value": SERVER}]
    put(cw, "SessionWatch/MCPServer", contract.METRIC_SESSION_NOT_FOUND, dims, start - 900, 1)
    put(cw, "SessionWatch/MCPServer", contract.METRIC_SESSION_NOT_FOUND, dims, start + 120, 9)
    alb = [{"Name": "TargetGroup", "Value": TG}, {"Name": "LoadBalancer", "Value": LB}]
    put(cw, ALB_NAMESPACE, "NonStickyRequestCount", alb, start - 600, 50)
    put(cw, ALB_NAMESPACE, "NonStickyRequestCount", alb, start + 60, 5)
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/9", start, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/9", end, True, "COMPLETED"))
    cfg = Config(
        **{
            **ledger_env.cfg.__dict__,
            "report_topic_arn": clients["topic"],
            "grace_period_s": 60,
            "server_service_name": SERVER,
            "load_balancer_full_name": LB,
            "target_group_full_name": TG,
        }
    )
    out = run_reporter(cfg, lg, clients["sns"], cw, now)
    assert spike_values(out.points) == [1]
    [report] = out.reports
    checks = {c.label: c for c in report.spike}
    assert set(checks) == {
        contract.METRIC_SESSION_NOT_FOUND,
        "NonStickyRequestCount",
        "HTTPCode_Target_4XX_Count",
    }
    assert (
        checks[contract.METRIC_SESSION_NOT_FOUND].spiked
        and checks[contract.METRIC_SESSION_NOT_FOUND].window_total == 9
    )
    assert not checks["NonStickyRequestCount"].spiked
    assert report.verdict_basis.startswith("metrics only")
    assert report.to_json()["spike_detected"] is True
    # Reported deployments are not checked again; the gauge drops back to 0.
    assert spike_values(run_reporter(cfg, lg, clients["sns"], cw, now + 60).points) == [0]


def test_failed_publish_releases_the_claim_so_the_next_run_sends(
    ledger_env: LedgerEnv, clients
) -> None:
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/1", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/1", 1100.0, True, "COMPLETED"))
    missing_topic = clients["topic"] + "-gone"
    broken = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": missing_topic})
    failed = run_reporter(broken, lg, clients["sns"], clients["cw"], 5000.0)
    assert failed.reports == [] and failed.failures == [(SERVICE, "NotFoundException")]
    fixed = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    assert len(run_reporter(fixed, lg, clients["sns"], clients["cw"], 5060.0).reports) == 1
    assert run_reporter(fixed, lg, clients["sns"], clients["cw"], 5120.0).reports == []


def test_no_report_before_end_plus_grace(ledger_env: LedgerEnv, clients) -> None:
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/2", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/2", 1100.0, True, "COMPLETED"))
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], 1100.0 + 119).reports == []
    assert len(run_reporter(cfg, lg, clients["sns"], clients["cw"], 1100.0 + 120).reports) == 1


def test_an_open_deployment_older_than_half_the_ttl_leaves_the_active_list(
    ledger_env: LedgerEnv, clients
) -> None:
    lg = ledger_env.ledger
    day = 86400.0
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/lost-end", 1000.0, False))
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    out = run_reporter(cfg, lg, clients["sns"], clients["cw"], 8 * day)
    assert out.reports == [] and lg.active() == []


def test_a_reported_deployment_leaves_the_active_list_so_runs_stay_flat(
    ledger_env: LedgerEnv, clients
) -> None:
    """The reporter reads what is active, not the history: 10 reported deployments later a
    run makes the same calls as the first one with nothing to do (any count shows it: the
    calls of a run that read the history would grow with each one)."""
    lg = ledger_env.ledger
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    calls = count_calls(ledger_env.client)
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 100.0)
    idle = sum(calls.values())
    for i in range(10):
        t = 1000.0 + i * 1000
        lg.record_deployment(DeploymentObserved(SERVICE, f"ecs-svc/{i}", t, False))
        lg.record_deployment(
            DeploymentObserved(SERVICE, f"ecs-svc/{i}", t + 100, True, "COMPLETED")
        )
        assert len(run_reporter(cfg, lg, clients["sns"], clients["cw"], t + 300).reports) == 1
    assert lg.active() == []
    calls.clear()
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 20_000.0)
    assert sum(calls.values()) == idle


def test_a_stale_claim_without_sent_is_retried_once(ledger_env: LedgerEnv, clients) -> None:
    """A reporter that died between claim and publish: the claim goes stale, a later run sends."""
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/1", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/1", 1100.0, True, "COMPLETED"))
    assert lg.claim_report(SERVICE, "ecs-svc/1", 1300.0, REPORT_CLAIM_STALE_S)  # then it died
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], 1360.0).reports == []
    later = 1300.0 + REPORT_CLAIM_STALE_S + 1
    assert len(run_reporter(cfg, lg, clients["sns"], clients["cw"], later).reports) == 1
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], later + 60).reports == []


def test_a_window_starting_after_the_reporters_clock_never_fails_the_run(
    ledger_env: LedgerEnv, clients
) -> None:
    """ECS's clock a few seconds ahead: no GetMetricData with EndTime <= StartTime, no error."""
    lg = ledger_env.ledger
    now = time.time()
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/ahead", now + 30, False))
    cfg = Config(**{**ledger_env.cfg.__dict__, "server_service_name": SERVER})
    out = run_reporter(cfg, lg, clients["sns"], clients["cw"], now)
    assert out.failures == []
    assert spike_values(out.points) == [0]


def test_one_services_failure_does_not_stop_the_others(
    ledger_env: LedgerEnv, clients, monkeypatch
) -> None:
    lg = ledger_env.ledger
    for svc in ("svc-a", "svc-b"):
        lg.record_deployment(DeploymentObserved(svc, "ecs-svc/1", 1000.0, False))
        lg.record_deployment(DeploymentObserved(svc, "ecs-svc/1", 1100.0, True, "COMPLETED"))
    real = Ledger.windows_of

    def fails_for_a(self, service, lo, hi):
        if service == "svc-a":
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "Query")
        return real(self, service, lo, hi)

    monkeypatch.setattr(Ledger, "windows_of", fails_for_a)
    cfg = Config(
        **{
            **ledger_env.cfg.__dict__,
            "service_names": frozenset(),
            "report_topic_arn": clients["topic"],
        }
    )
    out = run_reporter(cfg, lg, clients["sns"], clients["cw"], 1500.0)
    assert [r.service for r in out.reports] == ["svc-b"]
    assert out.failures == [("svc-a", "ClientError")]


def test_spike_checks_stop_after_the_horizon(ledger_env: LedgerEnv, clients) -> None:
    """No topic, so the report is never sent: the window must not cost GetMetricData forever."""
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/3", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/3", 1100.0, True, "COMPLETED"))
    cfg = Config(**{**ledger_env.cfg.__dict__, "server_service_name": SERVER})
    calls: list[str] = []
    clients["cw"].meta.events.register(
        "before-call.cloudwatch.GetMetricData", lambda **_: calls.append("x")
    )
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 1100.0 + 300)
    assert len(calls) == 1
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 1100.0 + 120 + 15 * 60 + 1)
    assert len(calls) == 1


def test_the_spike_horizon_is_counted_in_periods(ledger_env: LedgerEnv, clients) -> None:
    """15 periods after the window's grace: 45 s at a 3 s period, not 15 minutes."""
    lg = ledger_env.ledger
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/4", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/4", 1100.0, True, "COMPLETED"))
    cfg = Config(
        **{
            **ledger_env.cfg.__dict__,
            "server_service_name": SERVER,
            "grace_period_s": 5,
            "spike_period_s": 3,
        }
    )
    calls: list[str] = []
    clients["cw"].meta.events.register(
        "before-call.cloudwatch.GetMetricData", lambda **_: calls.append("x")
    )
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 1100.0 + 5 + 45)
    assert len(calls) == 1
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 1100.0 + 5 + 45 + 1)
    assert len(calls) == 1


def test_a_rollback_start_delivered_after_the_failed_report_sends_a_follow_up(
    ledger_env: LedgerEnv, clients
) -> None:
    """A fails; its report goes out at end + grace saying FAILED, because the rollback's
    IN_PROGRESS (sent by ECS one second after the FAILED) was delivered later than that. When it
    arrives, one follow-up report says how A really ended; re-deliveries send nothing more."""
    lg = ledger_env.ledger
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    failed, back = "ecs-svc/A", "ecs-svc/R"
    reason = "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/old."
    ingest_ecs_events(
        [deployment(failed, "IN_PROGRESS", 1000.0), deployment(failed, "FAILED", 1300.0)],
        cfg,
        lg,
        now=1301.0,
    )
    first = run_reporter(cfg, lg, clients["sns"], clients["cw"], 1300.0 + 121)
    assert [(r.deployment_id, r.ended) for r in first.reports] == [(failed, "FAILED")]
    rollback = deployment(back, "IN_PROGRESS", 1301.0)
    rollback["detail"]["reason"] = reason
    for delivered in (1500.0, 1510.0):  # at-least-once: the same event twice
        ingest_ecs_events([rollback], cfg, lg, now=delivered)
    later = run_reporter(cfg, lg, clients["sns"], clients["cw"], 1560.0)
    assert [(r.deployment_id, r.followup) for r in later.reports] == [(failed, True)]
    assert later.reports[0].ended == f"FAILED, rolled back by the circuit breaker ({back})"
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], 2400.0).reports == []


def test_a_rollback_start_before_the_report_needs_no_follow_up(
    ledger_env: LedgerEnv, clients
) -> None:
    lg = ledger_env.ledger
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    rollback = deployment("ecs-svc/R", "IN_PROGRESS", 1301.0)
    rollback["detail"]["reason"] = "ECS deployment circuit breaker: rolling back to deploymentId x."
    events = [deployment("ecs-svc/A", "IN_PROGRESS", 1000.0)]
    events += [deployment("ecs-svc/A", "FAILED", 1300.0), rollback]
    ingest_ecs_events(events, cfg, lg, now=1302.0)
    sent = run_reporter(cfg, lg, clients["sns"], clients["cw"], 1300.0 + 121).reports
    assert [r.ended.split(",")[1].strip() for r in sent] == [
        "rolled back by the circuit breaker (ecs-svc/R)"
    ]
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], 2400.0).reports == []


def test_a_failed_event_delivered_after_the_report_sends_one_follow_up(
    ledger_env: LedgerEnv, clients
) -> None:
    """A's FAILED is delivered late, after the rollback's start: A's report goes out with A's
    window closed by the rollback (outcome SUPERSEDED), yet already saying it failed and was
    rolled back. When the FAILED arrives, one follow-up carries ECS's own outcome and end
    time; a re-delivery of the FAILED sends nothing more."""
    lg = ledger_env.ledger
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    rollback = deployment("ecs-svc/R", "IN_PROGRESS", 1301.0)
    rollback["detail"]["reason"] = "ECS deployment circuit breaker: rolling back to deploymentId x."
    ingest_ecs_events(
        [deployment("ecs-svc/A", "IN_PROGRESS", 1000.0), rollback], cfg, lg, now=1302.0
    )
    first = run_reporter(cfg, lg, clients["sns"], clients["cw"], 1301.0 + 121).reports
    assert [(r.deployment_id, r.outcome) for r in first] == [("ecs-svc/A", "SUPERSEDED")]
    assert first[0].ended == "FAILED, rolled back by the circuit breaker (ecs-svc/R)"
    failed = deployment("ecs-svc/A", "FAILED", 1300.0)
    ingest_ecs_events([failed], cfg, lg, now=1600.0)
    later = run_reporter(cfg, lg, clients["sns"], clients["cw"], 1660.0).reports
    assert [(r.deployment_id, r.followup, r.outcome, r.ended_at) for r in later] == [
        ("ecs-svc/A", True, "FAILED", 1300.0)
    ]
    ingest_ecs_events([failed], cfg, lg, now=2300.0)  # re-delivered, 11 minutes on
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], 2360.0).reports == []


def test_a_completed_event_delivered_again_after_the_report_sends_nothing(
    ledger_env: LedgerEnv, clients
) -> None:
    lg = ledger_env.ledger
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    done = deployment("ecs-svc/A", "COMPLETED", 1300.0)
    ingest_ecs_events([deployment("ecs-svc/A", "IN_PROGRESS", 1000.0), done], cfg, lg, now=1301.0)
    assert len(run_reporter(cfg, lg, clients["sns"], clients["cw"], 1421.0).reports) == 1
    ingest_ecs_events([done], cfg, lg, now=1500.0)
    assert run_reporter(cfg, lg, clients["sns"], clients["cw"], 2200.0).reports == []
