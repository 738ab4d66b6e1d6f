"""A blue/green deployment through the ingest paths and the reporter, over moto's DynamoDB.

The one ECS read is a botocore Stubber with the DescribeServices shape AWS documents (moto has
no deployment strategies); a second read for the same deployment would fail the stub. Losses
while blue still runs are counted at once; the report says strategy, shift time, how it ended;
a session lost after the report reaches the metric at once and a follow-up report, at most one
per 10 minutes.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import Stubber

from sessionwatch.contract import Cause
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.ingest import ingest_ecs_events, ingest_log_payload
from sessionwatch.detectors.reporter_run import FOLLOWUP_EVERY_S, run_reporter
from tests.detectors.builders import (
    CLUSTER,
    SERVICE,
    T0,
    deployment,
    fp,
    iso,
    line,
    subscription,
    task,
)
from tests.detectors.conftest import LedgerEnv
from tests.detectors.test_detectors_lineage import describe_services_response

OLD, B = "ecs-svc/old", "ecs-svc/B"
SCHED = "ServiceSchedulerInitiated"
GRACE = 60.0
ARN = "arn:aws:ecs:us-east-1:111122223333"


def hook_event(stage: str, status: str, t: float) -> dict[str, Any]:
    """An ``ECS Hook State Change`` with the fields AWS documents (lifecycleStage, ARNs)."""
    return {
        "version": "0",
        "id": f"hook-{stage}-{status}-{t}",
        "detail-type": "ECS Hook State Change",
        "source": "aws.ecs",
        "account": "111122223333",
        "time": iso(t),
        "region": "us-east-1",
        "resources": [f"arn:aws:ecs:us-east-1:111122223333:service/{CLUSTER}/{SERVICE}"],
        "detail": {
            "eventName": f"HOOK_{status}",
            "lifecycleStage": stage,
            "serviceArn": f"arn:aws:ecs:us-east-1:111122223333:service/{CLUSTER}/{SERVICE}",
            "serviceDeploymentArn": f"{ARN}:service-deployment/{CLUSTER}/{SERVICE}/x",
            "updatedAt": iso(t),
        },
    }


def test_blue_green_losses_report_and_follow_up(ledger_env: LedgerEnv) -> None:
    lg = ledger_env.ledger
    sns = boto3.client("sns", region_name="us-east-1")
    cw = boto3.client("cloudwatch", region_name="us-east-1")
    cfg = Config(
        **{
            **ledger_env.cfg.__dict__,
            "grace_period_s": GRACE,
            "report_topic_arn": sns.create_topic(Name="bg")["TopicArn"],
        }
    )
    ecs = boto3.client("ecs", region_name="us-east-1")
    response = describe_services_response("BLUE_GREEN")
    response["services"][0]["serviceName"] = SERVICE
    with Stubber(ecs) as stub:
        stub.add_response("describe_services", response)  # exactly one read for B
        events = [
            task("blue", "RUNNING", T0 - 900, started_by=OLD, started_at=T0 - 900),
            deployment(B, "IN_PROGRESS", T0),
            task("green", "RUNNING", T0 + 30, started_by=B, started_at=T0 + 30),
            hook_event("PRODUCTION_TRAFFIC_SHIFT", "IN_PROGRESS", T0 + 60),
            hook_event("BAKE_TIME", "IN_PROGRESS", T0 + 120),
            hook_event("CLEAN_UP", "IN_PROGRESS", T0 + 580),
        ]
        out = ingest_ecs_events(events, cfg, lg, ecs)
        assert (out.bad, out.failed, out.stored) == ([], [], 6)
        logs = subscription(
            [
                line("session_created", "blue", T0 - 500, session=fp("s1")),
                line("session_created", "blue", T0 - 400, session=fp("idle")),
                line("session_not_found", "green", T0 + 70, session=fp("s1")),
            ]
        )
        decided = ingest_log_payload(logs, cfg, lg, T0 + 71).decisions
        # Blue still RUNNING: a deployment loss at once, not "stickiness" after the grace.
        assert [(d.verdict.cause, d.verdict.deployment_id, d.counted) for d in decided] == [
            (Cause.DEPLOYMENT, B, True)
        ]
        done = [
            task(
                "blue",
                "STOPPED",
                T0 + 600,
                started_by=OLD,
                stopping_at=T0 + 590,
                stopped_at=T0 + 600,
                stop_code=SCHED,
            ),
            deployment(B, "COMPLETED", T0 + 610),
        ]
        assert not ingest_ecs_events(done, cfg, lg, ecs).failed
    [report] = run_reporter(cfg, lg, sns, cw, T0 + 610 + GRACE + 1).reports
    assert (report.sessions_lost, report.strategy, report.ended) == (1, "BLUE_GREEN", "COMPLETED")
    assert report.production_shift_at == T0 + 60 and report.bake_time_s == 600.0
    assert report.tasks_replaced == ["blue"] and report.sessions_at_risk == 2  # s1, idle
    assert not report.followup

    # The idle client comes back 20 minutes later: its session died with blue, in B's window.
    late = subscription([line("session_not_found", "green", T0 + 1800, session=fp("idle"))])
    [d] = ingest_log_payload(late, cfg, lg, T0 + 1801).decisions
    assert (d.verdict.cause, d.verdict.deployment_id, d.counted) == (Cause.DEPLOYMENT, B, True)
    [follow] = run_reporter(cfg, lg, sns, cw, T0 + 1830).reports
    assert follow.followup and follow.sessions_lost == 2
    assert run_reporter(cfg, lg, sns, cw, T0 + 1890).reports == []  # nothing new: no message
    # Another late loss within 10 minutes waits for the next allowed follow-up.
    lg.record_sessions([], [])
    again = subscription(
        [
            line("session_created", "blue", T0 - 300, session=fp("idle2")),
            line("session_not_found", "green", T0 + 1900, session=fp("idle2")),
        ]
    )
    assert ingest_log_payload(again, cfg, lg, T0 + 1901).decisions[0].counted
    assert run_reporter(cfg, lg, sns, cw, T0 + 1910).reports == []
    [third] = run_reporter(cfg, lg, sns, cw, T0 + 1830 + FOLLOWUP_EVERY_S + 1).reports
    assert third.followup and third.sessions_lost == 3


def test_a_verdict_contradicted_by_late_facts_is_logged_as_revised(
    ledger_env: LedgerEnv, monkeypatch
) -> None:
    """The origin's stop arrives later than the grace period and the rollout wait: the 404 was
    judged stickiness; its re-delivery now says deployment, counted once under it, and logged
    as revised (its stickiness count taken back)."""
    from sessionwatch.contract import REVISED_LOG_MESSAGE
    from sessionwatch.detectors.classify import classify, lost_points
    from sessionwatch.detectors.core import ROLLOUT_WAIT_S
    from sessionwatch.detectors.facts import DeploymentObserved, NotFound, SessionCreated, TaskFacts
    from sessionwatch.detectors.handlers import runtime

    lg, cfg = ledger_env.ledger, ledger_env.cfg
    lg.record_deployment(DeploymentObserved(SERVICE, B, T0, False))
    lg.record_task(TaskFacts("old", SERVICE, OLD, T0 - 900))
    lg.record_task(TaskFacts("new", SERVICE, B, T0 + 30))
    lg.record_sessions([SessionCreated(fp("x"), "old", T0 - 500)], [])
    nf = NotFound(fp("x"), "new", T0 + 70)
    [waiting] = classify(lg, [nf], cfg, T0 + 70 + cfg.grace_period_s + 1)
    assert waiting.verdict.cause is Cause.PENDING  # "new" started just before: a rollout?
    late = T0 + 70 + ROLLOUT_WAIT_S + 1
    [first] = classify(lg, [nf], cfg, late)
    assert (first.verdict.cause, first.counted, first.revised_from) == (
        Cause.STICKINESS,
        True,
        None,
    )
    lg.record_task(TaskFacts("old", SERVICE, OLD, T0 - 900, T0 + 60, T0 + 90, SCHED))  # late
    [again] = classify(lg, [nf], cfg, late + 600)
    assert (again.verdict.cause, again.counted) == (Cause.DEPLOYMENT, True)
    assert again.revised_from is Cause.STICKINESS
    assert sorted((p.dimensions[1][1], p.value) for p in lost_points([again])) == [
        ("deployment", 1),
        ("stickiness", -1),
    ]
    warned: list[tuple[str, dict]] = []
    monkeypatch.setattr(runtime.logger, "warning", lambda msg, extra: warned.append((msg, extra)))
    runtime.log_decisions([again])
    [(msg, extra)] = warned
    assert msg == REVISED_LOG_MESSAGE
    assert (extra["cause"], extra["revised_from"]) == ("deployment", "stickiness")
