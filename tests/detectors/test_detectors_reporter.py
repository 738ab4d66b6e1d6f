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
from sessionwatch.detectors.core import TaskFacts
from sessionwatch.detectors.facts import DeploymentObserved
from sessionwatch.detectors.reporting import ALB_NAMESPACE, run_reporter
from sessionwatch.detectors.spike import evaluate
from tests.detectors.builders import SERVICE
from tests.detectors.conftest import LedgerEnv

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
    with pytest.raises(ClientError):
        run_reporter(broken, lg, clients["sns"], clients["cw"], 5000.0)
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


def test_windows_older_than_half_the_ttl_are_pruned_and_never_reported(
    ledger_env: LedgerEnv, clients
) -> None:
    lg = ledger_env.ledger
    day = 86400.0
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/old", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/old", 1100.0, True, "COMPLETED"))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/new", 8 * day, False))
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    out = run_reporter(cfg, lg, clients["sns"], clients["cw"], 8 * day + 60)
    assert out.reports == []
    assert [w.deployment_id for w in lg.windows()] == ["ecs-svc/new"]


def test_pruning_drops_whole_windows_never_the_start_of_a_recent_one(
    ledger_env: LedgerEnv, clients
) -> None:
    """A long deployment that began before the cutoff but ended after it keeps its start."""
    lg = ledger_env.ledger
    day = 86400.0
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/old", 500.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/old", 600.0, True, "COMPLETED"))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/long", 1000.0, False))
    lg.record_deployment(DeploymentObserved(SERVICE, "ecs-svc/long", 8 * day, True, "FAILED"))
    cfg = Config(**{**ledger_env.cfg.__dict__, "report_topic_arn": clients["topic"]})
    run_reporter(cfg, lg, clients["sns"], clients["cw"], 8 * day + 60)
    assert [(w.deployment_id, w.started_at, w.ended_at) for w in lg.windows()] == [
        ("ecs-svc/long", 1000.0, 8 * day)
    ]


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


def test_the_reporter_prunes_tasks_last_seen_before_the_ttl(
    ledger_env: LedgerEnv, clients: dict[str, Any]
) -> None:
    lg, cfg = ledger_env.ledger, ledger_env.cfg
    now = time.time()
    ttl = cfg.ledger_ttl_days * 86400
    lg.record_task(TaskFacts("gone", SERVICE, started_at=now - ttl - 900, stopped_at=now - ttl - 1))
    lg.record_task(TaskFacts("kept", SERVICE, started_at=now - ttl - 900, stopping_at=now - 60))
    run_reporter(cfg, lg, clients["sns"], clients["cw"], now)
    assert sorted(lg.tasks()[1]) == ["kept"]
