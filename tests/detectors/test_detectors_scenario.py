"""The whole story through the three handlers, moto for DynamoDB, SNS (+SQS) and CloudWatch.

Two old tasks A and B; a rolling deployment D replaces A (new task C). Sessions on A that come
back are lost to the deployment; a request routed from live C to B is stickiness; a random id is
unknown; a session expired on B is expired; earlier, an essential-container exit, a Spot
interruption and a scale-in each lose one session. A second deployment E fails and loses none.
Exactly one report per deployment, with the right counts, even when the reporter runs twice.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sessionwatch.contract import (
    DIMENSION_CAUSE,
    DIMENSION_SERVICE,
    METRIC_DEPLOYMENTS_IN_PROGRESS,
    METRIC_SESSIONS_AT_RISK,
    METRIC_SESSIONS_LOST,
    NAMESPACE,
    Cause,
)
from sessionwatch.detectors.ledger import DynamoDBLedger
from tests.detectors.builders import SERVICE, T0, deployment, fp, line, subscription, task
from tests.detectors.conftest import create_table
from world.ecs import STOP_ESSENTIAL_EXIT, STOP_SCHEDULER, STOP_SPOT, scheduler_reason
from world.harness import Harness, detector_harness

GRACE = 60
D, E = "ecs-svc/2000000000000000001", "ecs-svc/2000000000000000002"
SCHED = STOP_SCHEDULER


def timeline() -> list[tuple[float, str, Any]]:
    """(time, kind, input) for every event of the story, in real-world order."""
    ev: list[tuple[float, str, Any]] = []

    def logs(t: float, *messages: str) -> None:
        ev.append((t, "logs", subscription(list(messages))))

    def ecs(t: float, event: dict[str, Any]) -> None:
        ev.append((t, "ecs", event))

    # Earlier incidents, outside any deployment.
    for tid, cause_t in (("task-s", T0 - 1000), ("task-f", T0 - 800), ("task-p", T0 - 600)):
        ecs(cause_t - 3000, task(tid, "RUNNING", cause_t - 3000))
    logs(
        T0 - 2000,
        *(
            line("session_created", t, T0 - 2000, session=fp(t))
            for t in ("task-s", "task-f", "task-p")
        ),
    )
    ecs(
        T0 - 1000,
        task(
            "task-s",
            "STOPPED",
            T0 - 1000,
            stopping_at=T0 - 1000,
            stopped_at=T0 - 990,
            stop_code=SCHED,
            reason="Scaling activity initiated by (service mcp-service)",
        ),
    )
    logs(T0 - 985, line("session_not_found", "task-b", T0 - 985, session=fp("task-s")))
    ecs(
        T0 - 800,
        task(
            "task-f",
            "STOPPED",
            T0 - 800,
            stopped_at=T0 - 800,
            stop_code=STOP_ESSENTIAL_EXIT,
            reason="Essential container in task exited",
        ),
    )
    logs(T0 - 790, line("session_not_found", "task-b", T0 - 790, session=fp("task-f")))
    ecs(
        T0 - 600,
        task(
            "task-p",
            "STOPPED",
            T0 - 600,
            stopped_at=T0 - 600,
            stop_code=STOP_SPOT,
            reason="Your Spot Task was interrupted.",
        ),
    )
    logs(T0 - 590, line("session_not_found", "task-b", T0 - 590, session=fp("task-p")))

    # Two old tasks with sessions.
    ecs(T0 - 700, task("task-a", "RUNNING", T0 - 700))
    ecs(T0 - 700, task("task-b", "RUNNING", T0 - 700))
    logs(
        T0 - 500,
        # a1 by a named client (clientInfo); a2 by one that sent none (an older server line).
        line("session_created", "task-a", T0 - 500, session=fp("a1"), client_name="editor-agent"),
        *(line("session_created", "task-a", T0 - 500, session=fp(s)) for s in ("a2", "a3", "a4")),
        line("session_created", "task-b", T0 - 450, session=fp("b1")),
        line("session_created", "task-b", T0 - 440, session=fp("b2")),
        line(
            "session_closed",
            "task-a",
            T0 - 100,
            session=fp("a4"),
            reason="client_delete",
            age_s=400,
        ),
        line(
            "session_closed", "task-b", T0 - 30, session=fp("b2"), reason="idle_timeout", age_s=410
        ),
    )
    logs(T0 - 20, line("session_not_found", "task-b", T0 - 20, session=fp("b2")))  # expired

    # Deployment D replaces A with C.
    ecs(T0, deployment(D, "IN_PROGRESS", T0))
    ecs(T0 + 30, task("task-c", "RUNNING", T0 + 30, started_by=D, started_at=T0 + 30))
    logs(T0 + 40, line("session_created", "task-c", T0 + 40, session=fp("c1")))
    ecs(
        T0 + 60,
        task(
            "task-a",
            "RUNNING",
            T0 + 60,
            stopping_at=T0 + 60,
            stop_code=SCHED,
            reason=scheduler_reason("ecs-svc/old"),
        ),
    )
    logs(
        T0 + 70,
        line("session_not_found", "task-c", T0 + 70, session=fp("a1")),
        line("session_not_found", "task-c", T0 + 75, session=fp("a2")),
        line("session_not_found", "task-c", T0 + 76, session=fp("a2")),  # the client retried
        line("session_not_found", "task-b", T0 + 80, session=fp("c1")),  # stickiness
        line("session_not_found", "task-b", T0 + 85, session=fp("never-created")),
    )
    ecs(
        T0 + 90,
        task(
            "task-a",
            "STOPPED",
            T0 + 90,
            stopping_at=T0 + 60,
            stopped_at=T0 + 90,
            stop_code=SCHED,
            reason=scheduler_reason("ecs-svc/old"),
        ),
    )
    ecs(T0 + 120, deployment(D, "COMPLETED", T0 + 120))

    # Deployment E fails: no task replaced, nothing lost.
    ecs(T0 + 400, deployment(E, "IN_PROGRESS", T0 + 400))
    ecs(T0 + 500, deployment(E, "FAILED", T0 + 500))
    return sorted(ev, key=lambda e: e[0])


EXPECTED = {
    "task-s": Cause.SCALE_IN,
    "task-f": Cause.TASK_FAILURE,
    "task-p": Cause.INFRASTRUCTURE,
    "b2": Cause.EXPIRED,
    "a1": Cause.DEPLOYMENT,
    "a2": Cause.DEPLOYMENT,
    "c1": Cause.STICKINESS,
    "never-created": Cause.UNKNOWN,
}


@pytest.fixture
def deployed(aws) -> Iterator[dict[str, Any]]:
    db = boto3.client("dynamodb", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    table = create_table(db)
    topic = sns.create_topic(Name=f"reports-{table}")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"reports-{table}")["QueueUrl"]
    qarn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    env = {
        "LEDGER_TABLE_NAME": table,
        "CLUSTER_NAME": "mcp-cluster",
        "SERVICE_NAMES": SERVICE,
        "REPORT_TOPIC_ARN": topic,
        "GRACE_PERIOD_SECONDS": str(GRACE),
        "DEREGISTRATION_DELAY_SECONDS": "30",
        "POWERTOOLS_SERVICE_NAME": "sessionwatch",
    }
    with detector_harness(env) as h:
        yield {"db": db, "table": table, "sqs": sqs, "queue": queue, "h": h}


def test_the_whole_story(deployed) -> None:
    h: Harness = deployed["h"]
    at_risk_seen = []
    all_docs: list[dict[str, Any]] = []
    counted_at: dict[float, int] = {}
    deployment_alarm_data_at: list[float] = []
    for t, kind, payload in timeline():
        h.now = t + 1
        if kind == "ecs":
            assert h.call("ecs", payload)["bad_input"] == 0
        else:
            result = h.call("logs", payload)
            assert result["bad_input"] == 0
            counted_at[t] = result["counted"]
            docs = h.emf()
            all_docs += docs
            if any(d.get(DIMENSION_CAUSE) == Cause.DEPLOYMENT.value for d in docs):
                deployment_alarm_data_at.append(t)
        if t == T0 + 40:  # mid-deployment, A still serving: its open sessions are at risk
            assert h.call("reporter", {"id": "sched-1"})["counted"] == 1  # task-s
            docs = h.emf()
            all_docs += docs
            at_risk_seen = [d for d in docs if METRIC_SESSIONS_AT_RISK in d]
            assert [
                d[METRIC_DEPLOYMENTS_IN_PROGRESS]
                for d in docs
                if METRIC_DEPLOYMENTS_IN_PROGRESS in d
            ] == [1]
    # a1,a2,a3 open on A; b1 open on B (also an old task) -> 4 at risk, c1 on the new task is not.
    assert [d[METRIC_SESSIONS_AT_RISK] for d in at_risk_seen] == [4]
    # Counted by the session-events handler itself, a second after the 404, when the facts
    # were in hand: task-f, task-p, b2, and a1 + a2 (a2's retry not again). The deployment
    # alarm's data point leaves with the 404s' own invocation, not minutes later.
    assert {t: n for t, n in counted_at.items() if n} == {
        T0 - 790: 1,
        T0 - 590: 1,
        T0 - 20: 1,
        T0 + 70: 2,
    }
    assert deployment_alarm_data_at == [T0 + 70]

    h.now = T0 + 500 + GRACE + 1
    first = h.call("reporter", {"id": "sched-2"})
    second = h.call("reporter", {"id": "sched-3"})
    assert (first["reports"], second["reports"]) == (2, 0)
    # Left for the reporter: what only the grace period settles (c1: origin never seen
    # stopping; never-created: creation never seen).
    assert (first["counted"], second["counted"]) == (2, 0)

    # Verdicts in the ledger: one count lock per lost session, under its cause.
    db, table = deployed["db"], deployed["table"]
    ledger = DynamoDBLedger(db, table, 14)
    for name, cause in EXPECTED.items():
        assert [lock.cause for lock in ledger.session_locks(fp(name))] == [cause], name
    assert not ledger.session_locks(fp("a3"))

    # SessionsLost: once per lost session, by cause, dimensions exactly ServiceName + Cause.
    lost: Counter[str] = Counter()
    for doc in all_docs + h.emf():
        directive = doc["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == NAMESPACE
        if METRIC_SESSIONS_LOST in doc:
            assert directive["Dimensions"] == [[DIMENSION_SERVICE, DIMENSION_CAUSE]]
            assert doc[DIMENSION_SERVICE] == SERVICE
            lost[doc[DIMENSION_CAUSE]] += doc[METRIC_SESSIONS_LOST]
    assert lost == Counter(c.value for c in EXPECTED.values())

    # Reports: exactly one per deployment, read back through SQS.
    sqs, queue = deployed["sqs"], deployed["queue"]
    bodies = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            break
        bodies += [json.loads(m["Body"]) for m in msgs]
        for m in msgs:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    reports = {
        r["deployment_id"]: r
        for r in (
            json.loads(b["MessageAttributes"]["sessionwatch_report"]["Value"]) for b in bodies
        )
    }
    assert len(bodies) == 2 and set(reports) == {D, E}
    d = reports[D]
    assert d["tasks_replaced"] == ["task-a"]
    assert (d["sessions_at_risk"], d["sessions_lost"], d["session_cliff_s"]) == (3, 2, 70.0)
    assert d["outcome"] == "COMPLETED" and d["deregistration_delay_s"] == 30
    assert d["verdict_basis"].startswith("per-session")
    # Who held the lost sessions: the clients a sessionless server would have spared.
    assert d["clients_lost"] == {"editor-agent": 1, "unknown": 1}
    assert reports[E]["clients_lost"] is None
    assert (reports[E]["sessions_lost"], reports[E]["outcome"], reports[E]["tasks_replaced"]) == (
        0,
        "FAILED",
        [],
    )
    text = next(b["Message"] for b in bodies if D in b["Message"])
    # SQS subscribers get the chat notification (detectors/chat.py), the facts in its context.
    chat_doc = json.loads(text)
    assert "`editor-agent` 1, `unknown` 1" in chat_doc["content"]["description"]
    assert chat_doc["metadata"]["additionalContext"]["sessionsLost"] == "2"
    assert chat_doc["content"]["nextSteps"], "advice as next steps"
    # No raw session id anywhere in what left the detectors.
    everything = json.dumps(bodies)
    assert "session-a1" not in everything and fp("a1") not in text
