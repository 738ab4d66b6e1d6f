"""What the reporter does each minute, over a LedgerStore, an SNS client and a CloudWatch client.

Its cost per run follows what is *active*, never the history: the pending not-founds, the
``ACTIVE`` deployments (not yet reported, or with a follow-up due), and for a service with a
deployment in progress its live tasks. One service's (or one deployment's) failure is logged
and the run goes on with the others; the run raises at its end so Lambda counts an error.

Reports are published at least once with a duplicate guard: claim (a conditional update of the
deployment's item) -> publish -> mark sent. A claim older than ``REPORT_CLAIM_STALE_S`` with no
"sent" is claimed again, so a reporter that died between claim and publish is covered. SNS
standard topics have no deduplication, so one duplicate remains possible: a reporter that
published and died before marking "sent" (or whose mark failed) publishes again after the
stale period. A loss decided after the report went out is counted at once and sends a
follow-up report, at most one per deployment per ``FOLLOWUP_EVERY_S``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sessionwatch import contract
from sessionwatch.contract import (
    CLIENT_UNKNOWN,
    METRIC_DEPLOYMENT_LOSS_SPIKE,
    METRIC_DEPLOYMENTS_IN_PROGRESS,
    METRIC_SESSIONS_AT_RISK,
)
from sessionwatch.detectors import spike as spike_mod
from sessionwatch.detectors.chat import (
    REPORT_ATTRIBUTE,
    follow_up_notification,
    publish_request,
    report_publish_request,
)
from sessionwatch.detectors.classify import Decision, classify, lost_points
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.emit import MetricPoint, service_point
from sessionwatch.detectors.facts import CLOCK_SKEW_S, DeploymentWindow, SessionSpan, TaskFacts
from sessionwatch.detectors.guard_report import guard_lines
from sessionwatch.detectors.ledger import DeploymentRecord, LedgerStore, ReadWave
from sessionwatch.detectors.lockout import report_lock_out
from sessionwatch.detectors.report_document import (
    DeploymentReport,
    bake_time_s,
    how_it_ended,
    is_replaced_by,
    losses_per_step,
    open_at,
    open_now,
    replaced_tasks,
    verdict_basis,
)
from sessionwatch.detectors.report_state import end_mark
from sessionwatch.detectors.rules import owned_entries
from sessionwatch.detectors.spike import SeriesSpike

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_sns import SNSClient
else:
    CloudWatchClient = SNSClient = Any

ALB_NAMESPACE = "AWS/ApplicationELB"
# Spike checks stop this many metric periods (15 minutes at 60 s) after a window closed, so a
# deployment whose report cannot be sent (no topic configured) does not cost GetMetricData calls
# every minute for days. In periods, like the baseline, so a lab running time faster scales it.
SPIKE_HORIZON_PERIODS = 15
REPORT_CLAIM_STALE_S = 300.0
FOLLOWUP_EVERY_S = 600.0


@dataclass
class ReporterOutcome:
    decisions: list[Decision] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)
    reports: list[DeploymentReport] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (what, error type)


class ReporterFailed(RuntimeError):
    """Some services or deployments failed this run (the others were done)."""


def run_reporter(
    cfg: Config,
    ledger: LedgerStore,
    sns: SNSClient,
    cloudwatch: CloudWatchClient,
    now: float,
    out: ReporterOutcome | None = None,
) -> ReporterOutcome:
    """Decide pending losses, publish gauges, send each ended deployment's report once.

    ``out`` (returned) is filled as the run proceeds; failures are recorded in
    ``out.failures`` (the handler logs them and raises after emitting what was counted).
    """
    out = ReporterOutcome() if out is None else out
    try:
        classify(ledger, ledger.pending(), cfg, now, out.decisions)
    except Exception as exc:  # the deployments below still get their run
        out.failures.append(("pending not-founds", type(exc).__name__))
    finally:
        out.points += lost_points(out.decisions)
    try:
        active = ledger.active()
        records = ledger.deployments(active)
    except Exception as exc:
        out.failures.append(("active deployments", type(exc).__name__))
        active, records = [], {}
    by_service: dict[str, dict[str, DeploymentRecord]] = {}
    for svc, dep in active:
        if cfg.service_in_scope(svc):
            by_service.setdefault(svc, {})[dep] = records.get((svc, dep)) or DeploymentRecord(
                svc, dep
            )
        else:
            _guard(out, f"drop {svc}", partial(ledger.drop_active, svc, dep))
    for service in sorted(cfg.service_names | set(by_service)):
        mine = by_service.get(service, {})
        _guard(
            out,
            service,
            partial(_run_service, cfg, ledger, sns, cloudwatch, now, service, mine, out),
        )
    return out


def _guard(out: ReporterOutcome, what: str, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:  # one service's failure never stops the others
        out.failures.append((what, type(exc).__name__))


def _run_service(
    cfg: Config,
    ledger: LedgerStore,
    sns: SNSClient,
    cloudwatch: CloudWatchClient,
    now: float,
    service: str,
    active: dict[str, DeploymentRecord],
    out: ReporterOutcome,
) -> None:
    facts = [r.window for r in active.values() if r.window is not None]
    known: list[DeploymentWindow] = []
    if facts:
        # Every deployment from the oldest active one on (one Query): later starts close
        # superseded windows, say how a deployment ended, and pick who stopped which task.
        lo = min(w.started_at for w in facts) - CLOCK_SKEW_S
        known = ledger.windows_of(
            service, lo, max(now, *(w.started_at for w in facts)) + CLOCK_SKEW_S
        )
    by_id = {w.deployment_id: w for w in known}
    mine = [by_id.get(w.deployment_id, w) for w in facts]
    open_windows = [w for w in mine if w.ended_at is None]
    spans_cache: dict[str, list[SessionSpan]] = {}

    def spans_of(task_id: str) -> list[SessionSpan]:
        if task_id not in spans_cache:
            spans_cache[task_id] = ledger.task_sessions(task_id)
        return spans_cache[task_id]

    at_risk = 0
    if open_windows:
        live = ledger.live_tasks(service)
        tasks = ledger.tasks(live)
        for task_id in live:
            t = tasks.get(task_id)
            if t is not None and t.stop_began is not None:
                ledger.drop_live(service, task_id)  # a RUNNING event that landed after the stop
                continue
            if t is not None and any(is_replaced_by(t, w) for w in open_windows):
                at_risk += open_now(spans_of(task_id))
    out.points.append(service_point(METRIC_DEPLOYMENTS_IN_PROGRESS, service, len(open_windows)))
    out.points.append(service_point(METRIC_SESSIONS_AT_RISK, service, at_risk))
    spike_enabled = bool(cfg.server_service_for(service) or cfg.load_balancer_full_name)
    spiked = 0
    stale_before = now - cfg.ledger_ttl_days * 86400 / 2
    for w in mine:
        record = active.get(w.deployment_id) or DeploymentRecord(service, w.deployment_id)
        sent = record.report.sent
        if w.ended_at is None and w.started_at < stale_before:
            ledger.drop_active(service, w.deployment_id)  # never ended, never superseded
            continue
        checks: list[SeriesSpike] = []
        horizon = cfg.grace_period_s + SPIKE_HORIZON_PERIODS * cfg.spike_period_s
        if spike_enabled and not sent and (w.ended_at is None or now <= w.ended_at + horizon):
            try:
                checks = spike_checks(cfg, cloudwatch, w, now)
            except Exception as exc:  # the report goes out without them
                out.failures.append((f"spike check {w.deployment_id}", type(exc).__name__))
        spiked = max(spiked, int(any(c.spiked for c in checks)))
        if w.ended_at is None or now < w.ended_at + cfg.grace_period_s:
            continue
        if not sent:
            report = build_report(cfg, ledger, w, known or mine, spans_of, checks, now, cloudwatch)
            if send_report(cfg, ledger, sns, report, now):
                out.reports.append(report)
        elif record.report.wants_followup:
            end = end_mark(w.ended_at, w.outcome)
            if ledger.claim_followup(service, w.deployment_id, now, FOLLOWUP_EVERY_S, end):
                report = build_report(cfg, ledger, w, known or mine, spans_of, [], now, cloudwatch)
                report = DeploymentReport(**{**report.__dict__, "followup": True})
                if cfg.report_topic_arn:
                    publish(cfg, sns, report)
                    out.reports.append(report)
                ledger.drop_active(service, w.deployment_id)
        else:
            ledger.drop_active(service, w.deployment_id)
    if spike_enabled:
        out.points.append(service_point(METRIC_DEPLOYMENT_LOSS_SPIKE, service, spiked))


def clients_of(ledger: LedgerStore, fingerprints: list[str]) -> dict[str, int]:
    """How many of these sessions each client held (``clientInfo.name`` of its
    ``session_created``; ``unknown`` where none was logged): for a deployment's losses, the
    clients a sessionless server would have spared. One read wave of the session records."""
    origins = ledger.read(ReadWave(sessions=tuple(fingerprints))).origins
    names = Counter(
        (o.client_name if (o := origins.get(fp)) else None) or CLIENT_UNKNOWN for fp in fingerprints
    )
    return dict(sorted(names.items()))


def build_report(
    cfg: Config,
    ledger: LedgerStore,
    window: DeploymentWindow,
    windows: list[DeploymentWindow],
    spans_of: Callable[[str], list[SessionSpan]],
    checks: list[SeriesSpike],
    now: float,
    cloudwatch: CloudWatchClient | None = None,
) -> DeploymentReport:
    """Computed from every fact known when it is sent (late verdicts included)."""
    end = window.ended_at if window.ended_at is not None else now
    stopped = ledger.stops_between(
        window.service, window.started_at - CLOCK_SKEW_S, end + cfg.grace_period_s
    )
    tasks: list[TaskFacts] = list(ledger.tasks(stopped).values())
    replaced = replaced_tasks(window, tasks, windows, cfg.grace_period_s)
    at_risk = 0
    has_sessions = False
    for t in replaced:
        spans = spans_of(t.task_id)
        has_sessions = has_sessions or bool(spans)
        assert t.stop_began is not None
        at_risk += open_at(spans, t.stop_began)
    owned = owned_entries(
        ledger.deployment_losses(window.service, window.deployment_id), window.deployment_id
    )
    losses = sorted(x.at for x in owned)
    first = losses[0] if losses else None
    stops = [t.stop_began for t in replaced if t.stop_began is not None]
    lock = report_lock_out(cfg, cloudwatch, window, stops, now) if cloudwatch else None
    gate_line, stop_line = guard_lines(ledger, window.service, window.deployment_id)
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
        strategy=window.strategy,
        ended=how_it_ended(window, windows, cfg.grace_period_s),
        production_shift_at=window.stage_at("PRODUCTION_TRAFFIC_SHIFT"),
        bake_time_s=bake_time_s(window),
        losses_per_step=losses_per_step(window, losses),
        clients_lost=clients_of(ledger, [x.fingerprint for x in owned]) if owned else None,
        lock_out=None if lock is None else lock.to_json(),
        drain_gate=gate_line,
        stopped=stop_line,
    )


def send_report(
    cfg: Config, ledger: LedgerStore, sns: SNSClient, report: DeploymentReport, now: float
) -> bool:
    """Claim -> publish -> mark sent; a failed publish releases the claim (next run retries),
    a reporter dying after the claim is covered by the claim's staleness."""
    if not cfg.report_topic_arn:
        return False
    if not ledger.claim_report(report.service, report.deployment_id, now, REPORT_CLAIM_STALE_S):
        return False
    try:
        publish(cfg, sns, report)
    except Exception:
        ledger.release_report(report.service, report.deployment_id)
        raise
    end = end_mark(report.ended_at, report.outcome)
    ledger.mark_sent(report.service, report.deployment_id, now, end)
    return True


def publish(cfg: Config, sns: SNSClient, report: DeploymentReport) -> None:
    """One SNS publish: the chat-ready notification and the email text (``detectors.chat``);
    a follow-up goes into the deployment's thread as a follow-up notification."""
    assert cfg.report_topic_arn
    if not report.followup:
        request = report_publish_request(cfg.report_topic_arn, report)
    else:
        facts = report.to_json()
        note = follow_up_notification(
            service=report.service,
            deployment_id=report.deployment_id,
            title=f"{report.sessions_lost} session(s) lost in total, late losses included",
            description="Sessions lost to this deployment were decided after its report was "
            f"sent. Sessions lost in total: {report.sessions_lost}; at risk: "
            f"{report.sessions_at_risk}; how it ended: {report.ended or report.outcome}.",
            context={"sessionsLost": report.sessions_lost, "followUp": True},
        )
        request = publish_request(
            cfg.report_topic_arn,
            note,
            subject=report.subject(),
            email_text=report.to_text(),
            attributes={REPORT_ATTRIBUTE: json.dumps(facts, sort_keys=True)},
        )
    sns.publish(**request)


def _queries(cfg: Config, service: str) -> list[tuple[str, dict[str, Any]]]:
    queries: list[tuple[str, dict[str, Any]]] = []
    server_service = cfg.server_service_for(service)
    if server_service:
        queries.append(
            (
                contract.METRIC_SESSION_NOT_FOUND,
                {
                    "Namespace": cfg.server_metrics_namespace,
                    "MetricName": contract.METRIC_SESSION_NOT_FOUND,
                    "Dimensions": [
                        {"Name": contract.RESOURCE_SERVICE_NAME, "Value": server_service}
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
    cfg: Config, cloudwatch: CloudWatchClient, window: DeploymentWindow, now: float
) -> list[SeriesSpike]:
    """One GetMetricData call per deployment window: baseline and window, all series.

    No call (and no checks) when the range would be empty, as when ECS's clock runs ahead of
    the reporter's and the window seems to start in the future: CloudWatch rejects
    EndTime <= StartTime.
    """
    queries = _queries(cfg, window.service)
    period = cfg.spike_period_s
    end = min(now, window.ended_at + cfg.grace_period_s) if window.ended_at is not None else now
    start = window.started_at - spike_mod.baseline_seconds(period)
    if not queries or end <= window.started_at or end + period <= start:
        return []
    metric_queries: Any = [
        {
            "Id": f"m{i}",
            "Label": label,
            "MetricStat": {"Metric": metric, "Period": period, "Stat": "Sum"},
            "ReturnData": True,
        }
        for i, (label, metric) in enumerate(queries)
    ]
    resp = cloudwatch.get_metric_data(
        MetricDataQueries=metric_queries,
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
