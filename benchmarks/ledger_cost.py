"""Ledger cost benchmark: DynamoDB units per event at 1,000, 10,000 and 100,000 tasks, and a
monthly cost model.

How the ledgers are filled, whatever the detectors' layout: one *unit* of history (a service of
10 tasks: 5 started by an older deployment and replaced by a completed rolling deployment, 5
started by it; 2 sessions per task, a quarter closed; 3 sessions lost to the deployment, its
report sent) is played through the real handlers over moto. Every item it left in the table is
then cloned N/10 times with fresh ids of the same length (task ids, fingerprints, deployment
ids, service names are swapped, byte for byte the same sizes) and written straight into moto's
backend, which is far faster than the handlers. An item whose key names no id of the unit is a
shared item that cloning cannot reproduce (its real size would grow with the cluster); the
benchmark counts them and says so.

Then, at each size, the real handlers run the measured events against the filled table with
``benchmarks.dynamodb_model.UnitMeter`` on the ledger's client (units from item sizes by AWS's
rules, eventually consistent reads): one ``session_created``, a batch of 10 ``session_not_found``
(sessions of 10 different replaced tasks), one ECS task event (a stop of a live task and a start
of a new one, averaged), one deployment event (IN_PROGRESS of a new deployment, its COMPLETED,
averaged), an ordinary reporter run, and one follow-up report (30 late losses reopen 30 old
deployments; the next run sends them). It prints units per event, the ratio 100,000 / 1,000,
and a monthly cost model for three cluster sizes (prices stated in the table's notes).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from benchmarks.accuracy import RuntimeOverride, _Context, aws_env
from benchmarks.dynamodb_model import UnitMeter, install_item_limit
from benchmarks.timelines import (
    CLUSTER,
    SCHED,
    T_BASE,
    Deployment,
    Task,
    deployment_event,
    log_line,
    subscription_payload,
    task_event,
)
from sessionwatch import contract

UNIT_TASKS = 10
_CTX: Any = _Context()
SIZES = (1_000, 10_000, 100_000)
GRACE_S = 120.0
# Every id of the template unit starts with this many zeros; a clone writes its number there.
PREFIX = 6
ZEROS = "0" * PREFIX


def _tid(rng: random.Random) -> str:
    return "0" * PREFIX + f"{rng.getrandbits(104):026x}"


def _fp(rng: random.Random) -> str:
    return "0" * PREFIX + f"{rng.getrandbits(40):010x}"


def _dep(rng: random.Random) -> str:
    return "ecs-svc/" + "0" * PREFIX + f"{rng.randrange(10**12, 10**13)}"


@dataclass
class Unit:
    """The ids and events of one unit of history."""

    service: str
    old: list[Task]
    new: list[Task]
    d0: Deployment
    d1: Deployment
    sessions: list[tuple[str, Task]]
    ecs: list[dict[str, Any]]
    logs: list[tuple[str, list[tuple[float, str]]]]  # per task stream

    def ids(self) -> list[str]:
        out = [self.service, self.d0.id, self.d1.id]
        out += [k.id for k in self.old + self.new]
        out += [fp for fp, _ in self.sessions]
        return out


def build_unit(seed: int, t0: float) -> Unit:
    rng = random.Random(seed)  # noqa: S311 -- reproducible synthetic load
    service = "0" * PREFIX + "svc-x"
    d0 = Deployment(_dep(rng), service, "ROLLING", t0 - 86_400, 7, 6)
    d1 = Deployment(_dep(rng), service, "ROLLING", t0, 8, 7)
    n = 0
    ecs: list[dict[str, Any]] = []
    logs: dict[str, list[tuple[float, str]]] = {}
    old = [Task(_tid(rng), service, d0.id, 7, t0 - 3600) for _ in range(UNIT_TASKS // 2)]
    new = [Task(_tid(rng), service, d1.id, 8, t0 + 30) for _ in range(UNIT_TASKS // 2)]
    for k in old:
        n += 1
        ecs.append(task_event(k, k.start, "RUNNING", "RUNNING", 1, n))
    sessions: list[tuple[str, Task]] = []
    for k in old:
        for j in range(2):
            fp = _fp(rng)
            sessions.append((fp, k))
            t = t0 - 1000 + j
            logs.setdefault(k.id, []).append(
                (
                    t,
                    log_line(
                        contract.EVENT_SESSION_CREATED,
                        k,
                        t,
                        session=fp,
                        protocol_version="2025-11-25",
                    ),
                )
            )
    n += 1
    ecs.append(deployment_event(d1, "IN_PROGRESS", t0, f"ECS deployment {d1.id} in progress.", n))
    for k in new:
        n += 1
        ecs.append(task_event(k, k.start, "RUNNING", "RUNNING", 1, n))
        for j in range(2):
            fp = _fp(rng)
            sessions.append((fp, k))
            t = t0 + 60 + j
            logs.setdefault(k.id, []).append(
                (
                    t,
                    log_line(
                        contract.EVENT_SESSION_CREATED,
                        k,
                        t,
                        session=fp,
                        protocol_version="2025-11-25",
                    ),
                )
            )
    for k in old:
        k.stopping, k.stopped, k.stop_code = t0 + 90, t0 + 125, SCHED
        k.reason = f"Scaling activity initiated by (deployment {d0.id})"
        n += 1
        ecs.append(task_event(k, t0 + 90, "RUNNING", "STOPPED", 2, n))
        n += 1
        ecs.append(task_event(k, t0 + 125, "STOPPED", "STOPPED", 3, n))
    n += 1
    ecs.append(deployment_event(d1, "COMPLETED", t0 + 200, f"ECS deployment {d1.id} completed.", n))
    # A quarter of the sessions closed; three lost to the deployment (404 on a new task).
    for fp, k in sessions[::4]:
        t = t0 + 80
        logs.setdefault(k.id, []).append(
            (
                t,
                log_line(
                    contract.EVENT_SESSION_CLOSED,
                    k,
                    t,
                    session=fp,
                    reason="client_delete",
                    age_s=60,
                ),
            )
        )
    for i, (fp, _) in enumerate(sessions[1:7:2]):
        serving = new[i % len(new)]
        t = t0 + 130 + i
        logs.setdefault(serving.id, []).append(
            (
                t,
                log_line(
                    contract.EVENT_SESSION_NOT_FOUND,
                    serving,
                    t,
                    session=fp,
                    http_method="POST",
                    jsonrpc_code=-32600,
                    http_status=404,
                ),
            )
        )
    return Unit(service, old, new, d0, d1, sessions, ecs, sorted(logs.items()))


class Driver:
    """The handlers over moto with a settable clock and a meter on the ledger's client."""

    def __init__(self, table: str, topic: str | None) -> None:
        from sessionwatch.detectors.handlers import ecs_events, reporter, runtime, session_events

        self.runtime = runtime
        self.ecs_h, self.logs_h, self.rep_h = (
            ecs_events.handler,
            session_events.handler,
            reporter.handler,
        )
        self.now = T_BASE
        os.environ.update(
            LEDGER_TABLE_NAME=table,
            CLUSTER_NAME=CLUSTER,
            SERVICE_NAMES="",
            GRACE_PERIOD_SECONDS=str(int(GRACE_S)),
            POWERTOOLS_SERVICE_NAME="sessionwatch",
        )
        if topic:
            os.environ["REPORT_TOPIC_ARN"] = topic
        else:
            os.environ.pop("REPORT_TOPIC_ARN", None)
        runtime.reset()
        import boto3

        client = boto3.client("ecs", region_name="us-east-1")

        def no_service(**_: Any) -> tuple[Any, dict[str, Any]]:
            meta = {"HTTPStatusCode": 200}
            return _ok(), {"services": [], "failures": [], "ResponseMetadata": meta}

        client.meta.events.register("before-call.ecs.*", cast(Any, no_service))
        self.sink = open(os.devnull, "w")  # noqa: SIM115
        self.override = RuntimeOverride(lambda: self.now, lambda: client, self.sink)
        self.db = _dynamodb_client_of(runtime.ledger())
        install_item_limit(self.db)
        self.meter = UnitMeter(self.db)

    def quiet(self, fn: Callable[[], Any]) -> Any:
        import contextlib

        with contextlib.redirect_stdout(self.sink):
            return fn()

    def ecs(self, event: dict[str, Any], at: float) -> None:
        self.now = at
        self.quiet(lambda: self.ecs_h(event, _CTX))

    def logs(self, stream: str, lines: list[tuple[float, str]], at: float) -> None:
        self.now = at
        self.quiet(lambda: self.logs_h(subscription_payload(stream, lines, 1), _CTX))

    def reporter(self, at: float) -> None:
        self.now = at
        self.quiet(lambda: self.rep_h({"id": f"sched-{at}"}, _CTX))

    def measure(self, fn: Callable[[], None]) -> tuple[float, float, int]:
        with self.meter.measure() as calls:
            fn()
        return sum(c.read_units for c in calls), sum(c.write_units for c in calls), len(calls)

    def close(self) -> None:
        """Stop metering and give the detectors' runtime its real clock and clients back."""
        self.meter.close()
        self.override.restore()
        self.sink.close()


def _ok() -> Any:
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    return AWSResponse("https://ecs", 200, HTTPHeaders(), None)


def _dynamodb_client_of(ledger: Any) -> Any:
    for value in vars(ledger).values():
        meta = getattr(value, "meta", None)
        if meta is not None and meta.service_model.service_name == "dynamodb":
            return value
    raise LookupError("the ledger holds no DynamoDB client")


def play_unit(drv: Driver, unit: Unit, t0: float) -> None:
    for ev in unit.ecs:
        drv.ecs(ev, t0 + 250)
    for task, lines in unit.logs:
        drv.logs(f"ecs/mcp-server/{task}", lines, t0 + 250)
    # Reporter runs until the deployment is settled (report sent, follow-up window over), so
    # the clones hold the steady state of an old deployment, not an active one.
    for at in (t0 + 400 + GRACE_S, t0 + 1200, t0 + 2400, t0 + 3000):
        drv.reporter(at)


def clone_items(
    items: list[dict[str, Any]], ids: list[str], clones: range
) -> tuple[Callable[[int], list[dict[str, Any]]], int]:
    """A function making clone k of the unit's items, and how many items are shared."""
    pattern = re.compile("|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True)))
    texts = []
    shared = 0
    for item in items:
        key_text = item["pk"]["S"] + item["sk"]["S"]
        if not pattern.search(key_text):
            shared += 1
            continue
        texts.append(json.dumps(item, default=_b64))

    def make(k: int) -> list[dict[str, Any]]:
        tag = f"{k:0{PREFIX}x}"
        return [
            json.loads(pattern.sub(lambda m: m.group(0).replace(ZEROS, tag, 1), t)) for t in texts
        ]

    return make, shared


def _b64(value: Any) -> Any:
    import base64

    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(type(value))


def fill(table: str, make: Callable[[int], list[dict[str, Any]]], n_clones: int) -> float:
    """Write clones 1..n straight into moto's DynamoDB backend; seconds taken."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    t = time.perf_counter()
    for k in range(1, n_clones + 1):
        for item in make(k):
            backend.put_item(table, item)
    return time.perf_counter() - t


@dataclass
class Row:
    size: int
    units: dict[str, tuple[float, float]]  # event -> (read units, write units)
    fill_s: float


EVENTS = (
    "session_created",
    "not_found_batch_10",
    "ecs_task_event",
    "deployment_event",
    "reporter_run",
    "follow_up_report",
)


def measure_size(size: int, template: list[dict[str, Any]], unit: Unit, t0: float) -> Row:
    import boto3

    db = boto3.client("dynamodb", region_name="us-east-1")
    table = f"cost-{size}"
    from sessionwatch.detectors.ledger import TABLE_SCHEMA

    db.create_table(TableName=table, **TABLE_SCHEMA)
    make, _shared = clone_items(template, unit.ids(), range(0))
    n_clones = size // UNIT_TASKS
    fill_s = fill(table, make, n_clones)
    drv = Driver(table, None)
    rng = random.Random(size)  # noqa: S311 -- reproducible synthetic load
    now = t0 + 3600
    out: dict[str, tuple[float, float]] = {}

    def clone_id(i: str, k: int) -> str:
        return i.replace(ZEROS, f"{k:0{PREFIX}x}", 1)

    def task_in(k: int, template_task: Task) -> Task:
        return Task(
            clone_id(template_task.id, k),
            clone_id(unit.service, k),
            clone_id(template_task.started_by, k),
            template_task.revision,
            template_task.start,
        )

    # session_created: a new session on a live task of a random service.
    samples = []
    for _ in range(5):
        k = rng.randint(1, n_clones)
        task = task_in(k, unit.new[rng.randrange(len(unit.new))])
        fp = f"{rng.getrandbits(64):016x}"
        line = log_line(
            contract.EVENT_SESSION_CREATED, task, now, session=fp, protocol_version="2025-11-25"
        )
        samples.append(drv.measure(partial(drv.logs, f"s/{task.id}", [(now, line)], now + 2)))
    out["session_created"] = _avg(samples)

    # A batch of 10 not-founds: sessions of 10 replaced tasks (of 10 services), served elsewhere.
    # Each is a late loss to its service's old deployment, which reopens that deployment for a
    # follow-up report: 30 distinct services at every size, so the reporter runs below have the
    # same work to do whatever the size.
    samples = []
    distinct = iter(rng.sample(range(1, n_clones + 1), 30))
    for _ in range(3):
        lines = []
        serving = task_in(rng.randint(1, n_clones), unit.new[0])
        for _ in range(10):
            k = next(distinct)
            fp, _origin = unit.sessions[rng.randrange(len(unit.old) * 2)]
            lines.append(
                (
                    now,
                    log_line(
                        contract.EVENT_SESSION_NOT_FOUND,
                        serving,
                        now,
                        session=clone_id(fp, k),
                        http_method="POST",
                        jsonrpc_code=-32600,
                        http_status=404,
                    ),
                )
            )
        samples.append(drv.measure(partial(drv.logs, f"s/{serving.id}", lines, now + 3)))
    out["not_found_batch_10"] = _avg(samples)

    # ECS task events: a live task stops (scale-in), a new task starts.
    samples = []
    for i in range(4):
        k = rng.randint(1, n_clones)
        if i % 2 == 0:
            task = task_in(k, unit.new[rng.randrange(len(unit.new))])
            task.stopping, task.stop_code = now, SCHED
            task.reason = f"Scaling activity initiated by (deployment {task.started_by})"
            ev = task_event(task, now, "RUNNING", "STOPPED", 5, 900 + i)
        else:
            task = Task(
                f"{rng.getrandbits(128):032x}",
                clone_id(unit.service, k),
                clone_id(unit.d1.id, k),
                8,
                now,
            )
            ev = task_event(task, now, "RUNNING", "RUNNING", 1, 900 + i)
        samples.append(drv.measure(partial(drv.ecs, ev, now + 2)))
    out["ecs_task_event"] = _avg(samples)

    # Deployment events: IN_PROGRESS of a new deployment of a service, then its COMPLETED.
    samples = []
    for i in range(2):
        k = rng.randint(1, n_clones)
        d = Deployment(
            f"ecs-svc/{rng.randrange(10**18, 10**19)}",
            clone_id(unit.service, k),
            "ROLLING",
            now,
            9,
            8,
        )
        a = deployment_event(d, "IN_PROGRESS", now, f"ECS deployment {d.id} in progress.", 950 + i)
        b = deployment_event(d, "COMPLETED", now + 60, f"ECS deployment {d.id} completed.", 960 + i)
        samples.append(drv.measure(partial(drv.ecs, a, now + 2)))
        samples.append(drv.measure(partial(drv.ecs, b, now + 62)))
    out["deployment_event"] = _avg(samples)

    # Reporter runs. The first one sends the 30 follow-up reports the late losses above asked
    # for (its units per follow-up are one row); the next two are ordinary runs (the two new
    # deployments' reports, then nothing to send): the per-minute cost.
    busy = drv.measure(lambda: drv.reporter(now + 70))
    out["follow_up_report"] = (busy[0] / 30, busy[1] / 30)
    samples = [
        drv.measure(lambda: drv.reporter(now + 62 + GRACE_S + 5)),
        drv.measure(lambda: drv.reporter(now + 62 + GRACE_S + 65)),
    ]
    out["reporter_run"] = _avg(samples)
    drv.close()
    db.delete_table(TableName=table)
    return Row(size, out, fill_s)


def _avg(samples: list[tuple[float, float, int]]) -> tuple[float, float]:
    return (
        sum(s[0] for s in samples) / len(samples),
        sum(s[1] for s in samples) / len(samples),
    )


def build_template() -> tuple[list[dict[str, Any]], Unit, int]:
    import boto3

    from sessionwatch.detectors.ledger import TABLE_SCHEMA

    db = boto3.client("dynamodb", region_name="us-east-1")
    db.create_table(TableName="template", **TABLE_SCHEMA)
    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name="cost-reports")["TopicArn"]
    t0 = T_BASE
    unit = build_unit(1, t0)
    drv = Driver("template", topic)
    play_unit(drv, unit, t0)
    drv.close()
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": "template"}
    while True:
        page = db.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    _, shared = clone_items(items, unit.ids(), range(0))
    return items, unit, shared


# ---- The monthly cost model ----

PRICES = {
    "dynamodb_rru_per_million": 0.125,
    "dynamodb_wru_per_million": 0.625,
    "lambda_requests_per_million": 0.20,
    "lambda_gb_s_arm64": 0.0000133334,
    "cw_metric_month": 0.30,
    "cw_alarm_standard_month": 0.10,
    "sns_publish_per_million": 0.50,
}
MONTH_S = 30 * 86_400
LAMBDA_GB = 0.256  # the functions' memory (256 MB)
LAMBDA_S = {"ecs": 0.08, "logs": 0.12, "reporter": 0.5}  # assumed mean durations (arm64)


@dataclass(frozen=True)
class Cluster:
    name: str
    services: int
    tasks_per_service: int
    deployments_per_day_per_service: float
    sessions_per_day: float


CLUSTERS = (
    Cluster("small", 1, 2, 1, 1_000),
    Cluster("medium", 20, 4, 5, 100_000),
    Cluster("large", 200, 10, 10, 5_000_000),
)


def monthly(c: Cluster, units: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Dollars per 30 days, by item, from per-event units measured at the nearest size.

    Assumptions: every deployment replaces every task of its service (each task: RUNNING, a
    stopping and a STOPPED event for the old one, PENDING and RUNNING for the new one: 5 task
    events per replaced task) and sends 2 deployment state changes plus 1 service action; 5%
    of sessions end in a 404 (batched 10 a payload) and the server's session lines arrive in
    payloads of 10 lines (CloudWatch Logs batches them); created + closed = 2 lines a session;
    the reporter runs every minute. Metrics: SessionsLost x 7 causes + 3 gauges per service +
    DetectorBadInput; alarms: 3 per service (standard resolution). SNS: one report per
    deployment. CloudWatch Logs ingestion of the server's lines is the user's cost already
    (the subscription adds no charge); the detectors' own log lines are not counted.
    """
    days = 30
    deployments = c.services * c.deployments_per_day_per_service * days
    task_events = deployments * c.tasks_per_service * 5
    dep_events = deployments * 3
    sessions = c.sessions_per_day * days
    nf_batches = sessions * 0.05 / 10
    created = sessions
    log_payloads = sessions * 2 / 10 + nf_batches
    reporter_runs = MONTH_S / 60
    r = w = 0.0
    for count, event in (
        (task_events, "ecs_task_event"),
        (dep_events, "deployment_event"),
        (created, "session_created"),
        (nf_batches, "not_found_batch_10"),
        (reporter_runs, "reporter_run"),
        (deployments, "follow_up_report"),  # about what one report costs, once a deployment
    ):
        r += count * units[event][0]
        w += count * units[event][1]
    invocations = {"ecs": task_events + dep_events, "logs": log_payloads, "reporter": reporter_runs}
    lam_req = sum(invocations.values()) / 1e6 * PRICES["lambda_requests_per_million"]
    lam_dur = sum(n * LAMBDA_S[k] * LAMBDA_GB for k, n in invocations.items())
    metrics = c.services * (7 + 3) + 1
    return {
        "dynamodb_read": r / 1e6 * PRICES["dynamodb_rru_per_million"],
        "dynamodb_write": w / 1e6 * PRICES["dynamodb_wru_per_million"],
        "lambda": lam_req + lam_dur * PRICES["lambda_gb_s_arm64"],
        "metrics": metrics * PRICES["cw_metric_month"],
        "alarms": c.services * 3 * PRICES["cw_alarm_standard_month"],
        "sns": deployments / 1e6 * PRICES["sns_publish_per_million"],
    }


def cost_table(rows: list[Row]) -> str:
    by_size = {r.size: r for r in rows}
    lines = [
        "| cluster | DynamoDB read | DynamoDB write | Lambda | metrics | alarms | SNS "
        "| total / 30 days |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in CLUSTERS:
        tasks = c.services * c.tasks_per_service
        # The tasks seen within the ledger's 14-day TTL: the running ones and the replaced ones.
        seen = tasks * (1 + c.deployments_per_day_per_service * 14)
        size = min(by_size, key=lambda s: abs(s - seen))
        m = monthly(c, by_size[size].units)
        total = sum(m.values())
        lines.append(
            f"| {c.name} ({c.services} x {c.tasks_per_service} tasks, "
            f"{c.deployments_per_day_per_service:g} dep/day/svc, "
            f"{c.sessions_per_day:,.0f} sessions/day; "
            f"units at {size:,}) | "
            + " | ".join(
                f"${m[k]:,.2f}"
                for k in ("dynamodb_read", "dynamodb_write", "lambda", "metrics", "alarms", "sns")
            )
            + f" | **${total:,.2f}** |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description="DynamoDB units per event vs ledger size; monthly cost"
    )
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    args = ap.parse_args([] if argv is None else argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[Row] = []
    with aws_env():
        template, unit, shared = build_template()
        print(
            f"template unit: {UNIT_TASKS} tasks, {len(unit.sessions)} sessions, 2 deployments -> "
            f"{len(template)} items ({shared} shared items not cloned"
            + (": they would grow with the cluster" if shared else "")
            + ")",
            flush=True,
        )
        for size in sizes:
            t = time.perf_counter()
            row = measure_size(size, template, unit, T_BASE)
            rows.append(row)
            print(
                f"  {size:>7,} tasks: filled in {row.fill_s:.0f} s, measured in "
                f"{time.perf_counter() - t - row.fill_s:.0f} s",
                flush=True,
            )
    print("\nDynamoDB units per event (read units eventually consistent / write units):")
    print("| event | " + " | ".join(f"{r.size:,} tasks" for r in rows) + " | ratio last/first |")
    print("|---|" + "---|" * (len(rows) + 1))
    for ev in EVENTS:
        cells = [f"{r.units[ev][0]:.1f} / {r.units[ev][1]:.1f}" for r in rows]
        first, last = rows[0].units[ev], rows[-1].units[ev]
        ratio = " / ".join(
            f"{b / a:.2f}" if a else ("1.00" if not b else "inf")
            for a, b in zip(first, last, strict=True)
        )
        print(f"| {ev} | " + " | ".join(cells) + f" | {ratio} |")
    print("\nMonthly cost model (us-east-1 on-demand prices):")
    print(cost_table(rows))
    print(
        "\nPrices: DynamoDB on-demand $0.125/M read units, $0.625/M write units; Lambda $0.20/M "
        "requests + $0.0000133334/GB-s (arm64), 256 MB, assumed mean durations "
        f"{LAMBDA_S} s; CloudWatch $0.30/metric-month (first 10k), $0.10/standard alarm-month; "
        "SNS $0.50/M publishes; the Logs subscription adds no charge beyond the ingestion the "
        "server's logs already pay. Workload assumptions: `monthly()` docstring."
    )


if __name__ == "__main__":
    main(sys.argv[1:])
