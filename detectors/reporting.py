"""What the reporter does each minute, over a Ledger, an SNS client and a CloudWatch client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sessionwatch import contract
from sessionwatch.contract import (
    METRIC_DEPLOYMENT_LOSS_SPIKE,
    METRIC_DEPLOYMENTS_IN_PROGRESS,
    METRIC_SESSIONS_AT_RISK,
)
from sessionwatch.detectors import spike as spike_mod
from sessionwatch.detectors.chat import report_publish_request
from sessionwatch.detectors.classify import Decision, classify
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import DeploymentWindow, TaskFacts
from sessionwatch.detectors.emit import MetricPoint, service_point, sessions_lost
from sessionwatch.detectors.ledger import Ledger
from sessionwatch.detectors.ledger_items import SessionSpan, report_key, window_is_stale
from sessionwatch.detectors.report import (
    DeploymentReport,
    is_replaced_by,
    open_at,
    open_now,
    replaced_tasks,
    verdict_basis,
)
from sessionwatch.detectors.spike import SeriesSpike

ALB_NAMESPACE = "AWS/ApplicationELB"
# Spike checks stop this many metric periods (15 minutes at 60 s) after a window closed, so a
# deployment whose report cannot be sent (no topic configured) does not cost GetMetricData calls
# every minute for days. In periods, like the baseline, so a lab running time faster scales it.
SPIKE_HORIZON_PERIODS = 15


@dataclass
class ReporterOutcome:
    decisions: list[Decision] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)
    reports: list[DeploymentReport] = field(default_factory=list)


def run_reporter(
    cfg: Config,
    ledger: Ledger,
    sns: Any,
    cloudwatch: Any,
    now: float,
    out: ReporterOutcome | None = None,
) -> ReporterOutcome:
    """Decide pending losses, publish gauges, send each ended deployment's report once.

    ``out`` (returned) is filled as the run proceeds: when a later call fails (a publish, a
    throttled write), the handler still emits the losses this run already counted.
    """
    out = ReporterOutcome() if out is None else out
    try:
        classify(ledger, ledger.pending(), cfg, now, out.decisions)
    finally:
        out.points += [
            sessions_lost(d.verdict.service, d.verdict.cause) for d in out.decisions if d.counted
        ]
    # Windows older than half the TTL are dropped: their REPORT markers (full TTL) outlive
    # them, so a deployment is never reported twice.
    cutoff = now - cfg.ledger_ttl_days * 86400 / 2
    windows = []
    stale = False
    for w in ledger.windows():
        if window_is_stale(w, cutoff):
            stale = True
        elif cfg.service_in_scope(w.service):
            windows.append(w)
    if stale:
        ledger.prune_windows(cutoff)
    report_keys = [report_key(w.service, w.deployment_id) for w in windows]
    reported = ledger.get_many(report_keys) if report_keys else {}
    services = sorted(cfg.service_names | {w.service for w in windows})
    shards, all_tasks = ledger.tasks()
    # Tasks last seen before the sessions' TTL can no longer be asked about (see prune_tasks).
    ledger.prune_tasks(shards, now - cfg.ledger_ttl_days * 86400)
    spans_cache: dict[str, list[SessionSpan]] = {}

    def tasks_of(service: str) -> list[TaskFacts]:
        return sorted(
            (t for t in all_tasks.values() if t.service == service), key=lambda t: t.task_id
        )

    def spans_of(task_id: str) -> list[SessionSpan]:
        if task_id not in spans_cache:
            spans_cache[task_id] = ledger.task_sessions(task_id)
        return spans_cache[task_id]

    spike_enabled = bool(cfg.server_service_name or cfg.load_balancer_full_name)
    for service in services:
        mine = [w for w in windows if w.service == service]
        open_windows = [w for w in mine if w.ended_at is None]
        at_risk = 0
        for w in open_windows:
            for t in tasks_of(service):
                if is_replaced_by(t, w) and t.stopped_at is None:
                    at_risk += open_now(spans_of(t.task_id))
        out.points.append(service_point(METRIC_DEPLOYMENTS_IN_PROGRESS, service, len(open_windows)))
        out.points.append(service_point(METRIC_SESSIONS_AT_RISK, service, at_risk))
        spiked = 0
        for w in mine:
            if report_key(w.service, w.deployment_id) in reported:
                continue
            horizon = cfg.grace_period_s + SPIKE_HORIZON_PERIODS * cfg.spike_period_s
            recent = w.ended_at is None or now <= w.ended_at + horizon
            checks = spike_checks(cfg, cloudwatch, w, now) if spike_enabled and recent else []
            spiked = max(spiked, int(any(c.spiked for c in checks)))
            if w.ended_at is not None and now >= w.ended_at + cfg.grace_period_s:
                report = build_report(cfg, ledger, w, tasks_of(service), spans_of, checks)
                if send_report(cfg, ledger, sns, report, now):
                    out.reports.append(report)
        if spike_enabled:
            out.points.append(service_point(METRIC_DEPLOYMENT_LOSS_SPIKE, service, spiked))
    return out


def build_report(
    cfg: Config,
    ledger: Ledger,
    window: DeploymentWindow,
    tasks: list[TaskFacts],
    spans_of: Any,
    checks: list[SeriesSpike],
) -> DeploymentReport:
    replaced = replaced_tasks(window, tasks, cfg.grace_period_s)
    at_risk = 0
    has_sessions = False
    for t in replaced:
        spans = spans_of(t.task_id)
        has_sessions = has_sessions or bool(spans)
        assert t.stop_began is not None
        at_risk += open_at(spans, t.stop_began)
    losses = ledger.deployment_losses(window.service, window.deployment_id)
    first = losses[0] if losses else None
    return DeploymentReport(
        service=window.service,
        deployment_id=window.deployment_id,
        outcome=window.outcome,
        started_at=window.started_at,
        ended_at=window.ended_at,
        tasks_replaced=sorted(t.task_id for t in replaced),
        sessions_at_risk=at_risk,
        sessions_lost=len(losses),
        first_loss_at=first,
        session_cliff_s=None if first is None else max(0.0, first - window.started_at),
        deregistration_delay_s=cfg.deregistration_delay_s,
        stop_timeout_s=cfg.stop_timeout_s,
        spike=checks,
        verdict_basis=verdict_basis(has_sessions or bool(losses), checks),
    )


def send_report(
    cfg: Config, ledger: Ledger, sns: Any, report: DeploymentReport, now: float
) -> bool:
    """Claim, then publish; a failed publish releases the claim so the next run retries."""
    if not cfg.report_topic_arn:
        return False
    if not ledger.claim_report(report.service, report.deployment_id, now):
        return False
    try:
        sns.publish(**report_publish_request(cfg.report_topic_arn, report))
    except Exception:
        ledger.release_report(report.service, report.deployment_id)
        raise
    return True


def _queries(cfg: Config) -> list[tuple[str, dict[str, Any]]]:
    queries: list[tuple[str, dict[str, Any]]] = []
    if cfg.server_service_name:
        queries.append(
            (
                contract.METRIC_SESSION_NOT_FOUND,
                {
                    "Namespace": cfg.server_metrics_namespace,
                    "MetricName": contract.METRIC_SESSION_NOT_FOUND,
                    "Dimensions": [
                        {"Name": contract.RESOURCE_SERVICE_NAME, "Value": cfg.server_service_name}
                    ],
                },
            )
        )
    if cfg.load_balancer_full_name:
        dims = [{"Name": "LoadBalancer", "Value": cfg.load_balancer_full_name}]
        if cfg.target_group_full_name:
            dims = [{"Name": "TargetGroup", "Value": cfg.target_group_full_name}, *dims]
        queries.append(
            (
                "NonStickyRequestCount",
                {
                    "Namespace": ALB_NAMESPACE,
                    "MetricName": "NonStickyRequestCount",
                    "Dimensions": dims,
                },
            )
        )
        if cfg.target_group_full_name:
            queries.append(
                (
                    "HTTPCode_Target_4XX_Count",
                    {
                        "Namespace": ALB_NAMESPACE,
                        "MetricName": "HTTPCode_Target_4XX_Count",
                        "Dimensions": dims,
                    },
                )
            )
    return queries


def spike_checks(
    cfg: Config, cloudwatch: Any, window: DeploymentWindow, now: float
) -> list[SeriesSpike]:
    """One GetMetricData call per deployment window: baseline and window, all series."""
    queries = _queries(cfg)
    period = cfg.spike_period_s
    end = min(now, window.ended_at + cfg.grace_period_s) if window.ended_at is not None else now
    start = window.started_at - spike_mod.baseline_seconds(period)
    resp = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"m{i}",
                "Label": label,
                "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"},
                "ReturnData": True,
            }
            for i, (label, metric) in enumerate(queries)
        ],
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(end + period, UTC),
    )
    by_id: dict[str, list[tuple[float, float]]] = {}
    for result in resp.get("MetricDataResults", []):
        stamps = [ts.timestamp() for ts in result.get("Timestamps", [])]
        by_id[result["Id"]] = list(zip(stamps, result.get("Values", []), strict=False))
    return [
        spike_mod.evaluate(label, by_id.get(f"m{i}", []), window.started_at, end, period_s=period)
        for i, (label, _) in enumerate(queries)
    ]
