"""Accuracy benchmark: generated ECS timelines with ground truth through the real handlers.

``python -m benchmarks.accuracy --timelines 1000 --seed 1`` generates timelines
(``benchmarks.timelines``), delivers each one late, reordered and duplicated, into the three
real Lambda handlers over moto (DynamoDB, SNS -> SQS for the reports) with a simulated clock
(``runtime.clock``), runs the reporter every simulated minute and once more after every grace
period and follow-up interval, then compares:

- the cause decided for every lost session (the last ``session loss decided`` line the handlers
  logged for its fingerprint; a later "revised" line replaces it) with the ground truth, as a
  confusion matrix per deployment strategy (rows: true cause, columns: decided cause,
  ``none`` = never decided);
- each deployment's report (``sessions_lost`` of the last one published: the report, or its latest
  follow-up, which may count more or, when a loss moved to a later deployment, fewer)
  with the sessions the truth loses to that deployment.

The detectors' ECS reads (DescribeServices, DescribeServiceDeployments) are answered from the
timeline, as ECS would answer at the simulated time, by a botocore ``before-call`` hook on a
real ECS client: no request leaves the process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

from benchmarks.timelines import CLUSTER, DEREGISTRATION_DELAY_S, Timeline, deliver, generate, iso
from sessionwatch.contract import VERDICT_LOG_MESSAGE, Cause

GRACE_S = 120.0
FOLLOW_UP_S = 600.0
CAUSES = [c.value for c in Cause if c is not Cause.PENDING]
COLUMNS = [*CAUSES, "pending", "none"]


class _Context:
    """The attributes Powertools' Logger reads from a LambdaContext."""

    function_name = "sessionwatch-accuracy"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:111122223333:function:{function_name}"
    aws_request_id = "bench"


@dataclass
class Failure:
    """One wrong verdict or report count, with enough of the timeline to reproduce it."""

    seed: int
    strategy: str
    kind: str  # "cause" | "report"
    detail: str
    shapes: list[str]


@dataclass
class Results:
    """Accumulated over timelines."""

    matrices: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    reports_checked: int = 0
    report_errors: int = 0
    outcome_errors: int = 0
    failures: list[Failure] = field(default_factory=list)
    timelines: int = 0
    handler_errors: int = 0

    def wrong_causes(self) -> int:
        return sum(n for m in self.matrices.values() for (t, d), n in m.items() if t != d)

    def sessions(self) -> int:
        return sum(sum(m.values()) for m in self.matrices.values())


_partition = threading.local()


@contextlib.contextmanager
def partition_queries() -> Iterator[None]:
    """Make moto's base-table Query read one partition instead of sorting the whole table.

    moto 5 answers every Query by sorting all the table's items and filtering them by hash key,
    so a Query's time grows with the table (the 100,000-task ledger makes each one take seconds)
    although DynamoDB reads one partition. For a Query on the table itself (no index) the
    candidate items are exactly the partition's, so the results are unchanged; only the time.
    """
    from moto.dynamodb.models.table import Table

    original_all, original_query = Table.all_items, Table.query

    def all_items(self: Any) -> Any:
        part = getattr(_partition, "key", None)
        if part is None or part[0] is not self:
            return original_all(self)
        found = self.items.get(part[1])
        if found is None:
            return []
        items = list(found.values()) if self.range_key_attr else [found]
        return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        _partition.key = (self, hash_key)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _partition.key = None

    Table.all_items, Table.query = all_items, query  # type: ignore[method-assign]
    try:
        yield
    finally:
        Table.all_items, Table.query = original_all, original_query  # type: ignore[method-assign]


@contextlib.contextmanager
def aws_env() -> Iterator[None]:
    """moto in process, with fake credentials (restored afterwards), partition-only Query."""
    from moto import mock_aws

    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 -- moto's fake credentials
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws(), partition_queries():
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ecs_client_for(tl: Timeline, clock: Any) -> Any:
    """A real boto3 ECS client whose reads are answered from the timeline at ``clock()``."""
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    client = boto3.client("ecs", region_name="us-east-1")

    def answer(model: Any, params: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        body = json.loads(params.get("body") or b"{}")
        now = clock()
        if model.name == "DescribeServices":
            parsed = tl.describe_services(now, list(body.get("services", [])))
        elif model.name == "DescribeServiceDeployments":
            parsed = tl.describe_service_deployments(
                now, list(body.get("serviceDeploymentArns", []))
            )
        elif model.name == "ListServiceDeployments":
            svc = str(body.get("service", "")).rsplit("/", 1)[-1]
            created = body.get("createdAt") or {}
            lo, hi = float(created.get("after", 0)), float(created.get("before", now))
            arns = [_arn_of(tl, d) for d in tl.deployments.values() if d.service == svc]
            described = tl.describe_service_deployments(now, arns)["serviceDeployments"]
            brief = ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt", "status")
            parsed = {
                "serviceDeployments": [
                    {k: a[k] for k in (*brief, "startedAt", "finishedAt") if k in a}
                    | {"targetServiceRevisionArn": a["targetServiceRevision"]["arn"]}
                    for a in described
                    if lo <= a["createdAt"] <= hi
                ]
            }
        else:
            parsed = {"Error": {"Code": "AccessDeniedException", "Message": "not modelled"}}
            return AWSResponse("https://ecs", 400, HTTPHeaders(), None), {
                **parsed,
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
        parsed["ResponseMetadata"] = {"HTTPStatusCode": 200}
        return AWSResponse("https://ecs", 200, HTTPHeaders(), None), parsed

    client.meta.events.register("before-call.ecs.*", cast(Any, answer))
    return client


def _arn_of(tl: Timeline, d: Any) -> str:
    from benchmarks.timelines import service_deployment_arn

    return service_deployment_arn(d)


class RuntimeOverride:
    """Point the detectors' runtime at a simulated clock, a stubbed ECS client and a log sink.

    The handlers read ``runtime.clock`` and ``runtime.ecs``, and Powertools' logger writes to
    its handlers' streams; ``restore`` puts the real ones back, so code that runs later in the
    same process (a test of the lab's in-process detectors, say) is on wall time again.
    """

    def __init__(self, clock: Callable[[], float], ecs: Callable[[], Any], sink: IO[str]) -> None:
        from sessionwatch.detectors.handlers import runtime

        self.runtime = runtime
        self._saved = (runtime.clock, runtime.ecs)
        self._streams = [
            (h, h.stream)
            for h in runtime.logger._logger.handlers
            if isinstance(h, logging.StreamHandler)
        ]
        runtime.clock, runtime.ecs = clock, ecs
        for h, _ in self._streams:
            h.setStream(sink)

    def restore(self) -> None:
        self.runtime.clock, self.runtime.ecs = self._saved
        for h, stream in self._streams:
            h.setStream(stream)
        self.runtime.reset()


class Harness:
    """The three handlers over one moto backend; one fresh table and topic per timeline."""

    def __init__(self) -> None:
        import boto3

        from sessionwatch.detectors.handlers import ecs_events, reporter, runtime, session_events

        self.runtime = runtime
        self.handlers = {"ecs": ecs_events.handler, "logs": session_events.handler}
        self.reporter = reporter.handler
        self.db = boto3.client("dynamodb", region_name="us-east-1")
        self.sns = boto3.client("sns", region_name="us-east-1")
        self.sqs = boto3.client("sqs", region_name="us-east-1")
        self.now = 0.0
        self.ecs_client: Any = None  # the timeline's, set by setup()
        self.buffer = io.StringIO()
        self.override = RuntimeOverride(lambda: self.now, lambda: self.ecs_client, self.buffer)
        self.n = 0
        self.ended: dict[str, str] = {}  # deployment -> how its report says it ended

    def setup(self, tl: Timeline) -> str:
        from sessionwatch.detectors.ledger import TABLE_SCHEMA

        self.n += 1
        table = f"ledger-{self.n}"
        self.db.create_table(TableName=table, **TABLE_SCHEMA)
        topic = self.sns.create_topic(Name=f"reports-{self.n}")["TopicArn"]
        queue = self.sqs.create_queue(QueueName=f"reports-{self.n}")["QueueUrl"]
        qarn = self.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
        os.environ.update(
            LEDGER_TABLE_NAME=table,
            CLUSTER_NAME=CLUSTER,
            SERVICE_NAMES="",
            REPORT_TOPIC_ARN=topic,
            GRACE_PERIOD_SECONDS=str(int(GRACE_S)),
            DEREGISTRATION_DELAY_SECONDS=str(int(DEREGISTRATION_DELAY_S)),
            POWERTOOLS_SERVICE_NAME="sessionwatch",
        )
        self.runtime.reset()
        self.ecs_client = ecs_client_for(tl, lambda: self.now)
        return queue

    def close(self) -> None:
        self.override.restore()

    def call(self, kind: str, payload: Any) -> None:
        ctx: Any = _Context()
        with contextlib.redirect_stdout(self.buffer):
            if kind == "reporter":
                self.reporter(payload, ctx)
            else:
                self.handlers[kind](payload, ctx)

    def run(self, tl: Timeline) -> tuple[dict[str, str], dict[str, int], int]:
        """Drive one timeline; return (fp -> decided cause, deployment -> reported lost)."""
        queue = self.setup(tl)
        self.buffer.seek(0)
        self.buffer.truncate()
        deliveries = deliver(tl, tl.seed, GRACE_S)
        errors = 0
        start = min(d.at for d in deliveries)
        next_report = start + 60
        final = tl.end + GRACE_S + FOLLOW_UP_S + 180
        i = 0
        while i < len(deliveries) or next_report <= final:
            if i < len(deliveries) and deliveries[i].at < next_report:
                d = deliveries[i]
                i += 1
                self.now = d.at
                try:
                    self.call(d.kind, d.payload)
                except Exception:  # an AWS error: Lambda would retry the same input
                    errors += 1
                    with contextlib.suppress(Exception):
                        self.call(d.kind, d.payload)
            else:
                self.now = next_report
                event = {
                    "version": "0",
                    "id": f"sched-{int(next_report)}",
                    "detail-type": "Scheduled Event",
                    "source": "aws.events",
                    "time": iso(next_report),
                    "detail": {},
                }
                try:
                    self.call("reporter", event)
                except Exception:
                    errors += 1
                # Quiet stretches: nothing new to deliver for a while, skip minutes ahead.
                gap = (deliveries[i].at if i < len(deliveries) else final) - next_report
                next_report += 60 if gap < 600 else 300
        return self.verdicts(), self.reports(queue), errors

    def verdicts(self) -> dict[str, str]:
        decided: dict[str, str] = {}
        for raw in self.buffer.getvalue().splitlines():
            if not raw.startswith("{") or '"session"' not in raw:
                continue
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            msg = str(doc.get("message", ""))
            if (msg == VERDICT_LOG_MESSAGE or "revised" in msg) and isinstance(
                doc.get("session"), str
            ):
                cause = doc.get("cause") or doc.get("new_cause") or doc.get("revised_cause")
                if isinstance(cause, str):
                    decided[doc["session"]] = cause
            elif msg == "session loss pending" and doc["session"] not in decided:
                decided.setdefault(doc["session"], "pending")
        return decided

    def reports(self, queue: str) -> dict[str, int]:
        out: dict[str, int] = {}
        self.ended = {}
        while True:
            msgs = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not msgs:
                return out
            for m in msgs:
                body = json.loads(m["Body"])
                attr = body.get("MessageAttributes", {}).get("sessionwatch_report", {})
                try:
                    report = json.loads(attr.get("Value", "{}"))
                except ValueError:
                    continue
                dep = report.get("deployment_id")
                lost = report.get("sessions_lost")
                if isinstance(dep, str) and isinstance(lost, int):
                    out[dep] = lost  # published in order: the latest one stands
                    ended = report.get("ended") or report.get("outcome")
                    if isinstance(ended, str):
                        self.ended[dep] = ended
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def outcome_matches(expected: str, rollback_follows: bool, ended: str) -> bool:
    """Does the report's "how it ended" say what the truth says?"""
    text = ended.upper()
    if rollback_follows:
        return text.startswith("FAILED") and "ROLLED BACK" in text
    return text.startswith(expected)


def check(
    tl: Timeline,
    decided: dict[str, str],
    reported: dict[str, int],
    res: Results,
    ended: dict[str, str] | None = None,
) -> None:
    for loss in tl.losses:
        strategy = tl.strategy_of(loss.service) if loss.service in tl.services else "?"
        got = decided.get(loss.fp, "none")
        res.matrices[strategy][(loss.cause.value, got)] += 1
        if got != loss.cause.value:
            dep = tl.deployments.get(loss.deployment or "")
            res.failures.append(
                Failure(
                    tl.seed,
                    strategy,
                    "cause",
                    f"true {loss.cause.value} decided {got}: {loss.shape}"
                    + (f" (deployment {dep.strategy} outcome {dep.outcome})" if dep else ""),
                    tl.shapes,
                )
            )
    for dep_id, exp in tl.expected_reports().items():
        res.reports_checked += 1
        got_n = reported.get(dep_id)
        rolled = any(d.rollback_of == dep_id for d in tl.deployments.values())
        said = (ended or {}).get(dep_id)
        if said is not None and not outcome_matches(exp.outcome, rolled, said):
            res.outcome_errors += 1
            res.failures.append(
                Failure(
                    tl.seed,
                    exp.strategy,
                    "outcome",
                    f"deployment {exp.outcome}{' (rolled back)' if rolled else ''}: report says "
                    f"{said.split(' (')[0].split(' by ecs-svc')[0]}",
                    tl.shapes,
                )
            )
        if got_n != exp.lost:
            res.report_errors += 1
            res.failures.append(
                Failure(
                    tl.seed,
                    exp.strategy,
                    "report",
                    f"deployment {'rollback ' if exp.rollback else ''}{exp.outcome}: "
                    f"expected {exp.lost} lost, report says "
                    f"{'no report' if got_n is None else got_n}",
                    tl.shapes,
                )
            )


def run(
    n: int,
    seed: int,
    progress_every: int = 0,
    out: Any = sys.stdout,
    load: float = 1.0,
    jobs: int = 1,
) -> Results:
    """Generate and drive ``n`` timelines (seeds derived from ``seed``), accumulate results.

    ``jobs`` > 1 splits the timelines over processes (each with its own moto backend).
    """
    if jobs <= 1:
        return _run_indices(list(range(n)), n, seed, load, progress_every, out)
    import multiprocessing

    parts = [list(range(j, n, jobs)) for j in range(jobs)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        done = pool.starmap(_run_indices, [(p, n, seed, load, progress_every, None) for p in parts])
    res = Results()
    for part in done:
        for strategy, m in part.matrices.items():
            res.matrices[strategy].update(m)
        res.reports_checked += part.reports_checked
        res.report_errors += part.report_errors
        res.outcome_errors += part.outcome_errors
        res.failures += part.failures
        res.timelines += part.timelines
        res.handler_errors += part.handler_errors
    return res


def _run_indices(
    indices: list[int], n: int, seed: int, load: float, progress_every: int, out: Any
) -> Results:
    res = Results()
    out = out or sys.stdout
    t0 = time.perf_counter()
    with aws_env():
        harness = Harness()
        try:
            for i, k in enumerate(indices):
                tl = generate(seed * 100_003 + k, load)
                decided, reported, errors = harness.run(tl)
                res.handler_errors += errors
                res.timelines += 1
                check(tl, decided, reported, res, harness.ended)
                if progress_every and (i + 1) % progress_every == 0:
                    _progress(res, i + 1, len(indices), n, time.perf_counter() - t0, out)
                    partial = os.environ.get("ACCURACY_PARTIAL")
                    if partial:  # a long run leaves its latest matrices behind, per worker
                        with open(f"{partial}.{indices[0]}", "w") as f:
                            print_results(res, f)
        finally:
            harness.close()
    return res


def _progress(res: Results, done: int, mine: int, n: int, elapsed: float, out: Any) -> None:
    print(
        f"  {done}/{mine} timelines (of {n}), {elapsed:.0f} s, "
        f"{res.wrong_causes()} wrong causes of {res.sessions()}, "
        f"{res.report_errors} report errors of {res.reports_checked}",
        file=out,
        flush=True,
    )


def print_results(res: Results, out: Any = sys.stdout, max_failures: int = 40) -> None:
    p = lambda s="": print(s, file=out)  # noqa: E731
    p(
        f"{res.timelines} timelines, {res.sessions()} lost sessions, "
        f"{res.wrong_causes()} wrong causes, {res.report_errors} report count errors "
        f"of {res.reports_checked} deployments, {res.outcome_errors} report outcome errors, "
        f"{res.handler_errors} handler errors (retried)"
    )
    for strategy, m in sorted(res.matrices.items()):
        rows = [c for c in CAUSES if any(m[(c, d)] for d in COLUMNS)]
        cols = [c for c in COLUMNS if any(m[(r, c)] for r in CAUSES)]
        p(f"\n{strategy}: true cause (rows) x decided cause (columns)")
        p("| true \\ decided | " + " | ".join(cols) + " |")
        p("|---|" + "---|" * len(cols))
        for r in rows:
            p(f"| {r} | " + " | ".join(str(m[(r, c)]) for c in cols) + " |")
    if res.failures:
        p(f"\nfailures (first {max_failures} of {len(res.failures)}):")
        summary: Counter[str] = Counter(f"{f.kind}: {f.strategy}: {f.detail}" for f in res.failures)
        for line, count in summary.most_common(max_failures):
            seeds = sorted(
                {f.seed for f in res.failures if f"{f.kind}: {f.strategy}: {f.detail}" == line}
            )
            p(f"  {count:>5} x {line}  [seeds {', '.join(map(str, seeds[:5]))}]")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--timelines", type=int, default=int(os.environ.get("ACCURACY_TIMELINES", 12)))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--progress", type=int, default=10, help="a line every N timelines")
    ap.add_argument("--load", type=float, default=1.0, help="client arrival rate factor")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--png", type=Path, help="also draw the confusion matrices to this PNG")
    args = ap.parse_args([] if argv is None else argv)
    print(
        f"accuracy: {args.timelines} timelines, seed {args.seed}, load {args.load}, "
        f"grace {GRACE_S:.0f} s",
        flush=True,
    )
    t = time.perf_counter()
    res = run(args.timelines, args.seed, args.progress, load=args.load, jobs=args.jobs)
    print(f"({time.perf_counter() - t:.0f} s)")
    print_results(res)
    if args.png:
        from benchmarks.accuracy_chart import draw_matrices

        draw_matrices(res, args.png)
        print(f"confusion matrices: {args.png}")


if __name__ == "__main__":
    main(sys.argv[1:])
