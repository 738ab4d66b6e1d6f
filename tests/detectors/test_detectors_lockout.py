"""The lock-out: the load balancer's own 503s after a deployment's clean-up, from its metric."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sessionwatch.detectors.chat import report_notification
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.facts import BLUE_GREEN, DeploymentWindow
from sessionwatch.detectors.lockout import LockOut, lock_out, report_lock_out
from sessionwatch.detectors.report_document import DeploymentReport

P = 60.0
T0 = 1_000_000 * P  # any period boundary: only differences matter


def test_refusals_after_clean_up_are_counted_with_their_span() -> None:
    series = [(T0 + 10 * P, 7.0), (T0 + 11 * P, 9.0), (T0 + 14 * P, 2.0)]
    lock = lock_out(
        series,
        cleanup_at=T0 + 10 * P + 20,
        deployment_started_at=T0 + 5 * P,
        period_s=P,
        group_stickiness_s=300,
        blue_green=True,
    )
    assert lock == LockOut(18, T0 + 10 * P, T0 + 15 * P, 300, True)
    assert lock.minutes == 5.0
    assert lock.sentence() == (
        "18 request(s) from clients pinned to the old target group were refused by the load "
        "balancer for 5.0 minute(s) after the clean-up began; group stickiness duration 5 min."
    )


def test_refusals_before_the_clean_up_are_not_the_lock_out() -> None:
    # 503s during the bake (an unrelated outage) and none after: nothing to report
    series = [(T0 + 6 * P, 4.0), (T0 + 7 * P, 4.0)]
    assert (
        lock_out(series, cleanup_at=T0 + 9 * P, deployment_started_at=T0 + 5 * P, period_s=P)
        is None
    )


def test_the_usual_rate_of_503s_is_taken_off() -> None:
    # one 503 per period before the deployment: after the clean-up 3 periods of 1 are noise
    before = [(T0 + i * P, 1.0) for i in range(5)]
    noise = [(T0 + i * P, 1.0) for i in range(10, 13)]
    assert (
        lock_out(
            before + noise, cleanup_at=T0 + 10 * P, deployment_started_at=T0 + 6 * P, period_s=P
        )
        is None
    )
    burst = [(T0 + 10 * P, 11.0), (T0 + 11 * P, 1.0), (T0 + 12 * P, 1.0)]
    lock = lock_out(
        before + burst, cleanup_at=T0 + 10 * P, deployment_started_at=T0 + 6 * P, period_s=P
    )
    assert lock is not None and lock.refused == 13 - 3


class FakeCloudWatch:
    """Answers GetMetricData with one series, and records what was asked."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = points
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {
            "MetricDataResults": [
                {
                    "Id": "elb503",
                    "Timestamps": [datetime.fromtimestamp(t, UTC) for t, _ in self.points],
                    "Values": [v for _, v in self.points],
                }
            ]
        }


class BrokenCloudWatch:
    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("throttled")


def window() -> DeploymentWindow:
    return DeploymentWindow(
        service="svc",
        deployment_id="ecs-svc-1",
        started_at=T0,
        ended_at=T0 + 20 * P,
        strategy=BLUE_GREEN,
    )


def config(**kw: Any) -> Config:
    return Config(table_name="t", cluster_name="c", spike_period_s=60, **kw)


def test_the_reporter_reads_the_load_balancers_own_503s_per_load_balancer() -> None:
    cw = FakeCloudWatch([(T0 + 12 * P, 5.0)])
    cfg = config(load_balancer_full_name="app/lb/1", group_stickiness_s=3600)
    lock = report_lock_out(cfg, cw, window(), [T0 + 12 * P + 5], T0 + 30 * P)
    assert lock is not None and (lock.refused, lock.group_stickiness_s) == (5, 3600)
    (query,) = cw.calls[0]["MetricDataQueries"]
    metric = query["MetricStat"]["Metric"]
    assert (metric["Namespace"], metric["MetricName"]) == (
        "AWS/ApplicationELB",
        "HTTPCode_ELB_503_Count",
    )
    assert metric["Dimensions"] == [{"Name": "LoadBalancer", "Value": "app/lb/1"}]
    assert query["MetricStat"]["Stat"] == "Sum"


def test_no_load_balancer_no_stop_or_a_failed_read_means_no_paragraph() -> None:
    cw = FakeCloudWatch([(T0 + 12 * P, 5.0)])
    assert report_lock_out(config(), cw, window(), [T0 + 12 * P], T0 + 30 * P) is None
    cfg = config(load_balancer_full_name="app/lb/1")
    assert report_lock_out(cfg, cw, window(), [], T0 + 30 * P) is None
    assert report_lock_out(cfg, BrokenCloudWatch(), window(), [T0 + 12 * P], T0 + 30 * P) is None


def test_the_report_and_its_chat_message_name_the_lock_out() -> None:
    lock = LockOut(42, T0, T0 + 6 * P, None, True)
    report = DeploymentReport(
        service="svc",
        deployment_id="ecs-svc-1",
        outcome="SERVICE_DEPLOYMENT_COMPLETED",
        started_at=T0,
        ended_at=T0 + P,
        tasks_replaced=["a"],
        sessions_at_risk=4,
        sessions_lost=4,
        first_loss_at=None,
        session_cliff_s=None,
        deregistration_delay_s=None,
        stop_timeout_s=None,
        spike=[],
        verdict_basis="x",
        lock_out=lock.to_json(),
    )
    text = report.to_text()
    assert (
        "Refused by the load balancer: 42 request(s) from clients pinned to the old target "
        "group were refused by the load balancer for 6.0 minute(s)"
    ) in text
    assert "group stickiness duration not configured in SessionWatch" in text
    assert "42 request(s) refused by the ALB" in report.subject()
    note = report_notification(report.to_json())
    assert "42 request(s) from clients pinned" in note["content"]["description"]
    assert note["metadata"]["additionalContext"]["refusedByLoadBalancer"] == "42"
