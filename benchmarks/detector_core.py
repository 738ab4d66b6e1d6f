"""Detector core benchmark: session events/s through the pure core, DynamoDB calls per event.

Part 1 classifies 100,000 server session events (60% created, 30% closed, 10% not-found)
against an in-memory ledger shaped like a busy service (200 tasks, 20 deployments, stops by
every cause): parsing alone, deciding alone, and both. Part 2 pushes 10,000 of the same
events through the real ingest path (boto3 -> moto's DynamoDB, in process) in subscription
batches of 500 and counts API calls with a botocore event hook, and the ledger's read round
trips (one wave of concurrent BatchGetItem calls each) per batch; then delivers the same batches
again (at-least-once delivery) to show what a re-delivery costs and that nothing counts twice.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import time
from collections import Counter
from typing import Any

from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import DeploymentWindow, NotFound, SessionOrigin, TaskFacts, decide
from sessionwatch.detectors.facts import SessionCreated
from sessionwatch.detectors.ingest import ingest_log_payload
from sessionwatch.detectors.parsing import parse_line

SERVICE = "mcp-service"
N_CORE = 100_000
N_MOTO = 10_000
BATCH = 500
GRACE = 120.0
T0 = 1_777_000_000.0
NOW = T0 + 80_000  # after every event's grace period: each not-found is decided
STOPS = ["ServiceSchedulerInitiated"] * 6 + ["EssentialContainerExited", "SpotInterruption"]


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def build_world(rng: random.Random) -> tuple[list[DeploymentWindow], dict[str, TaskFacts]]:
    windows = [
        DeploymentWindow(SERVICE, f"ecs-svc/{i}", T0 + i * 3600, T0 + i * 3600 + 300, "COMPLETED")
        for i in range(20)
    ]
    tasks = {}
    for i in range(200):
        stop = T0 + rng.uniform(0, 20 * 3600) if i % 2 else None
        tasks[f"task{i:04d}"] = TaskFacts(
            f"task{i:04d}",
            SERVICE,
            "ecs-svc/0",
            T0 - 600,
            stop,
            stop and stop + 30,
            rng.choice(STOPS) if stop else None,
            "reason",
        )
    return windows, tasks


def build_events(rng: random.Random, n: int, task_ids: list[str]) -> list[str]:
    lines: list[str] = []
    created: list[str] = []
    for i in range(n):
        t = T0 + i * (72_000 / n)
        kind = rng.random()
        task = rng.choice(task_ids)
        if kind < 0.6 or not created:
            fp = f"{rng.getrandbits(64):016x}"
            created.append(fp)
            doc: dict[str, Any] = {
                "event": "session_created",
                "session": fp,
                "protocol_version": "2025-11-25",
            }
        elif kind < 0.9:
            doc = {
                "event": "session_closed",
                "session": rng.choice(created),
                "reason": "idle_timeout",
                "age_s": 5,
            }
        else:
            fp = rng.choice(created) if rng.random() < 0.9 else f"{rng.getrandbits(64):016x}"
            doc = {
                "event": "session_not_found",
                "session": fp,
                "http_method": "POST",
                "jsonrpc_code": -32600,
                "http_status": 404,
            }
        doc |= {
            "timestamp": _iso(t),
            "level": "INFO",
            "service": "mcp-server",
            "message": "m",
            "task_id": task,
        }
        lines.append(json.dumps(doc))
    return lines


def core(lines: list[str], windows: list[DeploymentWindow], tasks: dict[str, TaskFacts]) -> None:
    ctx = {"log_group": "g", "log_stream": "s", "log_event_id": "0"}
    t = time.perf_counter()
    facts = [parse_line(m, ctx) for m in lines]
    parse_s = time.perf_counter() - t
    origins: dict[str, SessionOrigin] = {}
    t = time.perf_counter()
    causes: Counter[str] = Counter()
    for f in facts:
        if isinstance(f, SessionCreated):
            origins[f.fingerprint] = SessionOrigin(f.task_id, f.at)
        elif isinstance(f, NotFound):
            o = origins.get(f.fingerprint)
            v = decide(
                f,
                o,
                tasks.get(o.task_id) if o else None,
                tasks.get(f.task_id),
                windows,
                GRACE,
                f.at + GRACE,
            )
            causes[v.cause.value] += 1
    decide_s = time.perf_counter() - t
    n = len(lines)
    print(f"pure core, {n:,} session events ({sum(causes.values()):,} not-found):")
    print(f"  parse only      {n / parse_s:>12,.0f} events/s")
    print(f"  correlate only  {n / decide_s:>12,.0f} events/s")
    print(f"  parse+correlate {n / (parse_s + decide_s):>12,.0f} events/s")
    print("  verdicts: " + ", ".join(f"{k}={v}" for k, v in sorted(causes.items())))


def through_moto(lines: list[str], tasks: dict[str, TaskFacts]) -> None:
    import boto3
    from moto import mock_aws

    from sessionwatch.detectors.facts import DeploymentObserved
    from sessionwatch.detectors.ledger import TABLE_SCHEMA, DynamoDBLedger

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(TableName="bench", **TABLE_SCHEMA)
        ledger = DynamoDBLedger(db, "bench", 14)
        for i in range(20):
            ledger.record_deployment(
                DeploymentObserved(SERVICE, f"ecs-svc/{i}", T0 + i * 3600, False)
            )
            ledger.record_deployment(
                DeploymentObserved(SERVICE, f"ecs-svc/{i}", T0 + i * 3600 + 300, True, "COMPLETED")
            )
        for f in tasks.values():
            ledger.record_task(f)
        calls: Counter[str] = Counter()
        db.meta.events.register(
            "before-call.dynamodb.*", lambda model, **_: calls.update([model.name])
        )
        cfg = Config(table_name="bench", cluster_name="c", grace_period_s=GRACE)
        n_nf = sum('"session_not_found"' in m for m in lines)
        payloads = [_payload(lines[i : i + BATCH]) for i in range(0, len(lines), BATCH)]
        n_batches = len(payloads)
        trips_before = ledger.read_round_trips
        t = time.perf_counter()
        counted = sum(
            d.counted for p in payloads for d in ingest_log_payload(p, cfg, ledger, NOW).decisions
        )
        elapsed = time.perf_counter() - t
        trips = ledger.read_round_trips - trips_before
        first_calls = Counter(calls)
        calls.clear()
        again = sum(
            d.counted for p in payloads for d in ingest_log_payload(p, cfg, ledger, NOW).decisions
        )
        redelivery_calls = Counter(calls)
        calls = first_calls
    total = sum(calls.values())
    print(
        f"\nboto3 -> moto DynamoDB, {len(lines):,} events, batches of {BATCH} ({n_nf:,} not-found):"
    )
    print(
        f"  {len(lines) / elapsed:,.0f} events/s (moto in process; real DynamoDB latency differs)"
    )
    print(f"  {total / len(lines):.3f} DynamoDB calls per event ({total:,} calls)")
    for name, count in sorted(calls.items()):
        print(f"    {name:<16} {count:>6}  ({count / len(lines):.4f}/event)")
    reads = calls["BatchGetItem"] + calls["GetItem"] + calls["Query"]
    print(f"  read calls per not-found: {reads / max(n_nf, 1):.3f} (per-event GetItems: 3+)")
    print(f"  read round trips: {trips} for {n_batches} batches ({trips / n_batches:.2f}/batch)")
    print(f"  SessionsLost counted: {counted:,} (distinct session, cause pairs)")
    print(
        f"  re-delivery of all {n_batches} batches: counted {again}, "
        + ", ".join(f"{k} {v}" for k, v in sorted(redelivery_calls.items()))
    )


def _payload(messages: list[str]) -> dict[str, Any]:
    """A CloudWatch Logs subscription event carrying ``messages``."""
    doc = {
        "messageType": "DATA_MESSAGE",
        "logGroup": "g",
        "logStream": "s",
        "logEvents": [{"id": str(j), "timestamp": 0, "message": m} for j, m in enumerate(messages)],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()}}


def main() -> None:
    rng = random.Random(7)  # noqa: S311 -- reproducible synthetic load, not security
    windows, tasks = build_world(rng)
    lines = build_events(rng, N_CORE, sorted(tasks))
    core(lines, windows, tasks)
    through_moto(lines[:N_MOTO], tasks)


if __name__ == "__main__":
    main()
