"""Requests the load balancer refused itself after a deployment's clean-up: the lock-out.

After an ECS blue/green clean-up, a client whose ``AWSALBTG`` cookie still names the old target
group is routed to that group whatever the weights, and the group has no target left: ALB
answers HTTP 503 itself until the cookie's stickiness duration runs out. No request reaches a
task, so no server log line exists; the only trace is ALB's own metric
``HTTPCode_ELB_503_Count`` ("the number of HTTP 503 error codes that originate from the load
balancer", dimensions ``LoadBalancer`` and ``AvailabilityZone, LoadBalancer``; reported only
when non-zero; the useful statistic is Sum).

``lock_out`` is pure: the 503 series per period and the moment the deployment began stopping
the tasks it replaced (its clean-up) in, a ``LockOut`` out. ``elb_503_series`` is the thin
CloudWatch read. 503s already present before the deployment began are the load balancer's
usual noise: their rate over the pre-deployment baseline is taken off the count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sessionwatch.detectors.config import Config
from sessionwatch.detectors.facts import DeploymentWindow
from sessionwatch.detectors.spike import baseline_seconds

log = logging.getLogger(__name__)
ALB_NAMESPACE = "AWS/ApplicationELB"
METRIC_ELB_503 = "HTTPCode_ELB_503_Count"


@dataclass(frozen=True)
class LockOut:
    """What the load balancer refused after the clean-up, for the report."""

    refused: int  # ELB-generated 503s after the clean-up began, above the baseline rate
    first_at: float  # start of the first period with a refusal
    last_at: float  # end of the last period with a refusal
    group_stickiness_s: int | None  # the listener's target group stickiness duration, if known
    blue_green: bool  # the deployment shifted traffic between target groups

    @property
    def minutes(self) -> float:
        return max(0.0, self.last_at - self.first_at) / 60

    def sentence(self) -> str:
        duration = (
            f"group stickiness duration {_human(self.group_stickiness_s)}"
            if self.group_stickiness_s is not None
            else "group stickiness duration not configured in SessionWatch"
        )
        who = (
            "from clients pinned to the old target group "
            if self.blue_green
            else "(no target reached) "
        )
        return (
            f"{self.refused} request(s) {who}were refused by the load balancer for "
            f"{self.minutes:.1f} minute(s) after the clean-up began; {duration}."
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "minutes": round(self.minutes, 2), "sentence": self.sentence()}


def lock_out(
    elb_503: Sequence[tuple[float, float]],
    *,
    cleanup_at: float,
    deployment_started_at: float,
    period_s: float,
    group_stickiness_s: int | None = None,
    blue_green: bool = False,
) -> LockOut | None:
    """The refusals of ``elb_503`` ((period start, Sum) pairs) from the clean-up on; None if none.

    A period counts from the one holding ``cleanup_at``. The pre-deployment baseline is every
    period that ended before ``deployment_started_at``; its mean per period, times the number
    of periods after the clean-up, is subtracted (rounded down to whole requests, never below 0).
    """
    first_period = cleanup_at - (cleanup_at % period_s) if period_s > 0 else cleanup_at
    before = [v for t, v in elb_503 if t + period_s <= deployment_started_at]
    after = sorted((t, v) for t, v in elb_503 if t >= first_period and v > 0)
    if not after:
        return None
    span_periods = max(1, round((after[-1][0] - after[0][0]) / period_s) + 1) if period_s else 1
    baseline = (sum(before) / len(before)) if before else 0.0
    refused = int(sum(v for _, v in after) - baseline * span_periods)
    if refused <= 0:
        return None
    return LockOut(
        refused=refused,
        first_at=after[0][0],
        last_at=after[-1][0] + period_s,
        group_stickiness_s=group_stickiness_s,
        blue_green=blue_green,
    )


def elb_503_series(
    cloudwatch: Any, load_balancer: str, start: float, end: float, period_s: int
) -> list[tuple[float, float]]:
    """One GetMetricData call: the load balancer's own 503s, Sum per period (no AZ split)."""
    if end <= start:
        return []
    resp = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "elb503",
                "MetricStat": {
                    "Metric": {
                        "Namespace": ALB_NAMESPACE,
                        "MetricName": METRIC_ELB_503,
                        "Dimensions": [{"Name": "LoadBalancer", "Value": load_balancer}],
                    },
                    "Period": period_s,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        ],
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(end, UTC),
    )
    points: list[tuple[float, float]] = []
    for result in resp.get("MetricDataResults", []):
        stamps = [ts.timestamp() for ts in result.get("Timestamps", [])]
        points += list(zip(stamps, result.get("Values", []), strict=False))
    return sorted(points)


def report_lock_out(
    cfg: Config,
    cloudwatch: Any,
    window: DeploymentWindow,
    stops: Sequence[float],
    now: float,
) -> LockOut | None:
    """The reporter's call: None without a load balancer, a stop, or a refusal.

    ``stops`` are the drain starts of the tasks this deployment replaced; the earliest is the
    clean-up (blue/green) or the first wave (rolling). The read spans the spike baseline before
    the deployment, so the usual rate of ELB 503s is known.
    """
    if not cfg.load_balancer_full_name or not stops:
        return None
    period = cfg.spike_period_s
    start = window.started_at - baseline_seconds(period)
    try:
        series = elb_503_series(
            cloudwatch, cfg.load_balancer_full_name, start, now + period, period
        )
    except Exception as exc:  # the report goes out without the lock-out paragraph
        log.warning("ELB 503 read failed for %s: %s", window.deployment_id, type(exc).__name__)
        return None
    return lock_out(
        series,
        cleanup_at=min(stops),
        deployment_started_at=window.started_at,
        period_s=period,
        group_stickiness_s=cfg.group_stickiness_s,
        # ECS lifecycle hooks exist only for blue/green, linear and canary deployments.
        blue_green=window.traffic_shifting
        or window.stage_at("PRODUCTION_TRAFFIC_SHIFT") is not None,
    )


def _human(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
