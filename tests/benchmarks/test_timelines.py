"""The timeline generator: deterministic, AWS-shaped events, a truth consistent with its inputs,
every shape the accuracy benchmark claims to cover, and a delivery model that is late,
reordered and duplicated without losing anything."""

from __future__ import annotations

import base64
import gzip
import itertools
import json
from collections import Counter
from datetime import datetime
from functools import cache
from typing import Any

from benchmarks.timelines import (
    COMPLETED,
    SUPERSEDED,
    T_BASE,
    Timeline,
    deliver,
    generate,
    service_deployment_arn,
)
from sessionwatch.contract import EVENT_SESSION_NOT_FOUND, LOG_EVENTS, Cause
from tests.conftest import FIXTURES

SEEDS = range(24)


@cache
def timelines() -> list[Timeline]:
    return [generate(s) for s in SEEDS]


def test_same_seed_same_timeline() -> None:
    a, b = generate(7), generate(7)
    assert json.dumps(a.ecs_events) == json.dumps(b.ecs_events)
    assert a.log_lines == b.log_lines and a.losses == b.losses
    assert json.dumps(generate(8).ecs_events) != json.dumps(a.ecs_events)


def test_ecs_events_have_the_documented_shape() -> None:
    sample = {
        "ECS Task State Change": json.loads((FIXTURES / "ecs" / "task-running.json").read_text()),
        "ECS Deployment State Change": json.loads(
            (FIXTURES / "ecs" / "deployment-in-progress.json").read_text()
        ),
        "ECS Service Action": json.loads(
            (FIXTURES / "ecs" / "service-steady-state.json").read_text()
        ),
    }
    seen: Counter[str] = Counter()
    for tl in timelines()[:20]:
        for _, ev in tl.ecs_events:
            kind = ev["detail-type"]
            seen[kind] += 1
            assert ev["source"] == "aws.ecs" and ev["resources"]
            if kind in sample:
                assert set(sample[kind]) <= set(ev), kind
                must = set(sample[kind]["detail"]) - {
                    "networkInterfaces",
                    "connectivityAt",
                    "pullStartedAt",
                    "pullStoppedAt",
                    "startedAt",
                    "availabilityZone",
                }
                if kind == "ECS Task State Change":
                    must -= {"attachments", "containers", "overrides"}
                assert must <= set(ev["detail"]), (kind, must - set(ev["detail"]))
            else:
                assert kind == "ECS Hook State Change"
                d = ev["detail"]
                assert d["lifecycleStage"] and d["serviceDeploymentArn"].startswith("arn:aws:ecs:")
            if kind == "ECS Task State Change":
                d = ev["detail"]
                assert d["group"].startswith("service:") and d["startedBy"].startswith("ecs-svc/")
                if d["lastStatus"] == "STOPPED":
                    assert d["stopCode"] and d["stoppedReason"] and d["stoppedAt"]
    assert set(seen) == {*sample, "ECS Hook State Change"}


def test_log_lines_follow_the_contract() -> None:
    for tl in timelines()[:20]:
        for _, task, raw in tl.log_lines:
            doc = json.loads(raw)
            assert doc["event"] in LOG_EVENTS and doc["task_id"] == task
            assert {"timestamp", "level", "service", "message"} <= set(doc)
            if "session" in doc:
                assert len(doc["session"]) == 16 and int(doc["session"], 16) >= 0


def test_truth_is_consistent_with_the_inputs() -> None:
    for tl in timelines():
        not_found = {
            (json.loads(raw)["session"], task, t)
            for t, task, raw in tl.log_lines
            if EVENT_SESSION_NOT_FOUND in raw
        }
        idle_closed = {
            (json.loads(raw)["session"], task): t
            for t, task, raw in tl.log_lines
            if '"idle_timeout"' in raw
        }
        for loss in tl.losses:
            assert (loss.fp, loss.serving_task, loss.at) in not_found
            if loss.cause is Cause.UNKNOWN:
                continue
            origin = tl.tasks[loss.origin_task]
            if loss.cause is Cause.EXPIRED:
                # The origin closed it for idleness before the return, while it still ran.
                assert (loss.fp, loss.origin_task) in idle_closed, (tl.seed, loss)
                assert idle_closed[(loss.fp, loss.origin_task)] < loss.at
                gone = origin.stopping if origin.stopping is not None else origin.stopped
                assert gone is None or idle_closed[(loss.fp, loss.origin_task)] < gone
                continue
            assert loss.serving_task != loss.origin_task
            if loss.cause is Cause.DEPLOYMENT:
                dep = tl.deployments[loss.deployment or ""]
                assert dep.service == origin.service
                if origin.started_by == dep.id:
                    # Only a partial traffic shift moves a session off the deployment's own task.
                    assert loss.shape.endswith("-from-new-revision"), loss.shape
                else:  # otherwise a later deployment of the service than the origin's
                    assert tl.deployments[origin.started_by].start < dep.start
            elif loss.cause is Cause.STICKINESS:
                assert origin.receiving(loss.at)
            else:
                assert origin.cause is loss.cause and not origin.receiving(loss.at)
        reports = tl.expected_reports()
        assert sum(r.lost for r in reports.values()) == sum(
            1 for x in tl.losses if x.cause is Cause.DEPLOYMENT
        )
        for r in reports.values():
            assert r.outcome in (COMPLETED, "FAILED", SUPERSEDED)


def test_ecs_facts_are_physically_possible() -> None:
    """What real ECS never sends, the generator must not either (a stand-in invents no
    failures): a task stops once, and a deployment's tasks are created after it began."""
    for tl in timelines():
        stop_codes: dict[str, set[str]] = {}
        for _, ev in tl.ecs_events:
            d = ev["detail"]
            if ev["detail-type"] != "ECS Task State Change":
                continue
            if d.get("desiredStatus") == "STOPPED":
                task_id = d["taskArn"].rsplit("/", 1)[-1]
                stop_codes.setdefault(task_id, set()).add(d.get("stopCode", ""))
            dep = tl.deployments.get(d.get("startedBy", ""))
            if dep is not None and dep.start > T_BASE:
                created = datetime.fromisoformat(d["createdAt"]).timestamp()
                assert created >= dep.start, (tl.seed, d["taskArn"])
        assert all(len(codes) == 1 for codes in stop_codes.values()), tl.seed


def test_every_claimed_shape_is_generated() -> None:
    shapes: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    strategies: Counter[str] = Counter()
    for tl in timelines():
        shapes.update(s.split("(")[0].split("+")[0] for s in tl.shapes)
        shapes.update("hooks" for s in tl.shapes if s.endswith("+hooks"))
        shapes.update("multi-wave" for s in tl.shapes if "min=50" in s)
        causes.update(x.cause.value for x in tl.losses)
        strategies.update(tl.strategy_of(n) for n in tl.services)
    assert set(strategies) == {"ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"}
    for shape in (
        "rolling",
        "blue_green",
        "linear",
        "canary",
        "hooks",
        "multi-wave",
        "rollback",
        "back-to-back",
        "scale-in-15s-after",
        "spot",
        "crash",
        "health",
    ):
        assert shapes[shape], shape
    assert set(causes) == {c.value for c in Cause if c is not Cause.PENDING}


def test_ecs_reads_answer_in_aws_shapes() -> None:
    tl = next(t for t in timelines() if any(s.startswith("linear") for s in t.shapes))
    dep = max(tl.deployments.values(), key=lambda d: d.start)
    svc = tl.describe_services(dep.start + 1, [dep.service])["services"][0]
    cfg = svc["deploymentConfiguration"]
    assert cfg["strategy"] == "LINEAR" and cfg["linearConfiguration"]["stepPercent"]
    assert svc["deployments"][0]["id"] == dep.id
    assert svc["deployments"][0]["taskDefinition"].endswith(f":{dep.revision}")
    arn = service_deployment_arn(dep)
    sd = tl.describe_service_deployments(dep.start + 1, [arn])["serviceDeployments"][0]
    assert sd["status"] == "IN_PROGRESS" and sd["targetServiceRevision"]["arn"]
    assert sd["deploymentConfiguration"]["strategy"] == "LINEAR"
    done = tl.describe_service_deployments((dep.end or 0) + 1, [arn])["serviceDeployments"][0]
    assert done["status"] == "SUCCESSFUL" and done["lifecycleStage"] == "CLEAN_UP"


def test_describe_services_lists_only_primary_and_active_deployments() -> None:
    """As ECS answers: a completed deployment that a newer one replaced is INACTIVE and gone
    from ``deployments[]`` (the detectors then read the service's history)."""
    checked = 0
    for tl in timelines():
        for svc in tl.services:
            ordered = sorted(
                (d for d in tl.deployments.values() if d.service == svc), key=lambda d: d.start
            )
            for old, new in itertools.pairwise(ordered):
                if old.end is None or old.end >= new.start:
                    continue
                answer = tl.describe_services(new.start + 1, [svc])["services"][0]
                listed = [d["id"] for d in answer["deployments"]]
                assert new.id == listed[0] and old.id not in listed
                checked += 1
    assert checked


def _lines(payload: dict[str, Any]) -> list[str]:
    doc = json.loads(gzip.decompress(base64.b64decode(payload["awslogs"]["data"])))
    return [e["message"] for e in doc["logEvents"]]


def test_delivery_is_late_reordered_duplicated_and_complete() -> None:
    late = dup = reordered = 0
    for tl in timelines()[:30]:
        out = deliver(tl, tl.seed, 120.0)
        ecs_ids = Counter(d.payload["id"] for d in out if d.kind == "ecs")
        assert set(ecs_ids) == {e["id"] for _, e in tl.ecs_events}
        dup += sum(1 for n in ecs_ids.values() if n > 1)
        sent = {e["id"]: t for t, e in tl.ecs_events}
        late += sum(1 for d in out if d.kind == "ecs" and d.at - sent[d.payload["id"]] > 120)
        lines = Counter(m for d in out if d.kind == "logs" for m in _lines(d.payload))
        assert set(lines) == {raw for _, _, raw in tl.log_lines}
        order = [sent[d.payload["id"]] for d in out if d.kind == "ecs"]
        reordered += sum(1 for a, b in itertools.pairwise(order) if b < a)
        assert all(d.at >= T_BASE - 4000 for d in out)
    assert late and dup and reordered
