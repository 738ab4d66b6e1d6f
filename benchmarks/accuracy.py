"""Accuracy benchmark: generated ECS timelines with physical ground truth through the real handlers.

``python -m benchmarks.accuracy --timelines 1000 --seed 1 [--jobs 2] [--ledger memory|moto]
[--moto-sample N] [--png F]`` generates timelines (``benchmarks.timelines``), delivers each one
late, reordered and duplicated, into the three real Lambda handlers (``world.harness``: a
simulated clock, ECS reads answered from the timeline, SNS publishes recorded) on the in-memory
ledger (or the DynamoDB ledger over moto), runs the reporter every simulated minute and once
more after every grace period and follow-up interval, then compares:

- the cause decided for every lost session (the last ``session loss decided`` line the handlers
  logged for its fingerprint; a later "revised" line replaces it) with the story's truth, as a
  confusion matrix per deployment strategy (rows: true cause, columns: decided cause,
  ``none`` = never decided), and per hard case;
- each deployment's report (``sessions_lost`` of the last one published: the report, or its
  latest follow-up, which may count more or, when a loss moved to a later deployment, fewer)
  with the sessions the truth loses to that deployment.

``--moto-sample N`` runs the first N timelines again on the DynamoDB ledger over moto and says
whether each one decided and reported exactly the same (the two ledgers' semantics agree).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import timelines
from benchmarks.timelines import (
    CLUSTER,
    DEREGISTRATION_DELAY_S,
    Timeline,
    deliver,
    generate,
    service_deployment_arn,
)
from sessionwatch.contract import VERDICT_LOG_MESSAGE, Cause
from sessionwatch.detectors.chat import REPORT_ATTRIBUTE
from world.aws import answer_calls, record_publishes
from world.ecs import iso
from world.harness import Harness, detector_harness

GRACE_S = 120.0
FOLLOW_UP_S = 600.0
CAUSES = [c.value for c in Cause if c is not Cause.PENDING]
COLUMNS = [*CAUSES, "pending", "none"]


@dataclass
class Failure:
    """One wrong verdict or report count, with enough of the timeline to reproduce it."""

    seed: int
    strategy: str
    kind: str  # "cause" | "report"
    detail: str
    shapes: list[str]
    cases: tuple[str, ...] = ()  # the hard cases of the wrong verdict


@dataclass
class Results:
    """Accumulated over timelines."""

    matrices: dict[str, Counter[tuple[str, str]]] = field(
        default_factory=lambda: defaultdict(Counter)
    )
    reports_checked: int = 0
    report_errors: int = 0
    outcome_errors: int = 0
    # Of those: wrong causes no detector could tell (``KNOWN_GAPS``), and the report errors of
    # timelines whose every wrong cause is one of them (the sessions they move in or out).
    wrong_indistinguishable: int = 0
    report_errors_indistinguishable: int = 0
    failures: list[Failure] = field(default_factory=list)
    timelines: int = 0
    handler_errors: int = 0
    hard: Counter[tuple[str, bool]] = field(default_factory=Counter)  # (hard case, right?)
    outcomes: dict[int, str] = field(default_factory=dict)  # seed -> outcome_digest

    def merge(self, part: Results) -> None:
        for strategy, m in part.matrices.items():
            self.matrices[strategy].update(m)
        self.reports_checked += part.reports_checked
        self.report_errors += part.report_errors
        self.outcome_errors += part.outcome_errors
        self.wrong_indistinguishable += part.wrong_indistinguishable
        self.report_errors_indistinguishable += part.report_errors_indistinguishable
        self.failures += part.failures
        self.timelines += part.timelines
        self.handler_errors += part.handler_errors
        self.hard.update(part.hard)
        self.outcomes.update(part.outcomes)

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


LEDGERS = ("moto", "memory")
DEFAULT_LEDGER = "memory"
REGION_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def ecs_client_for(tl: Timeline, clock: Callable[[], float]) -> Any:
    """A real boto3 ECS client whose reads are answered from the timeline at ``clock()``."""
    import boto3

    def services(body: dict[str, Any]) -> dict[str, Any]:
        return tl.describe_services(clock(), list(body.get("services", [])))

    def deployments(body: dict[str, Any]) -> dict[str, Any]:
        return tl.describe_service_deployments(clock(), list(body.get("serviceDeploymentArns", [])))

    def history(body: dict[str, Any]) -> dict[str, Any]:
        now = clock()
        svc = str(body.get("service", "")).rsplit("/", 1)[-1]
        created = body.get("createdAt") or {}
        lo, hi = float(created.get("after", 0)), float(created.get("before", now))
        arns = [service_deployment_arn(d) for d in tl.deployments.values() if d.service == svc]
        described = tl.describe_service_deployments(now, arns)["serviceDeployments"]
        brief = ("serviceDeploymentArn", "serviceArn", "clusterArn", "createdAt", "status")
        return {
            "serviceDeployments": [
                {k: a[k] for k in (*brief, "startedAt", "finishedAt") if k in a}
                | {"targetServiceRevisionArn": a["targetServiceRevision"]["arn"]}
                for a in described
                if lo <= a["createdAt"] <= hi
            ]
        }

    return answer_calls(
        boto3.client("ecs", region_name="us-east-1"),
        "ecs",
        {
            "DescribeServices": services,
            "DescribeServiceDeployments": deployments,
            "ListServiceDeployments": history,
        },
    )


def make_ledger(kind: str, table: str) -> Any:
    """The one place the benchmark chooses the detectors' ledger for a timeline.

    ``memory``: the in-memory ledger (same semantics as DynamoDB's, one contract suite checks
    both). ``moto``: None, so the handlers build the DynamoDB ledger on ``table``, created here
    on the in-process moto (``aws_env`` must be open).
    """
    if kind == "memory":
        from sessionwatch.detectors.ledger import InMemoryLedger

        return InMemoryLedger()
    import boto3

    from sessionwatch.detectors.ledger import TABLE_SCHEMA

    boto3.client("dynamodb", region_name="us-east-1").create_table(TableName=table, **TABLE_SCHEMA)
    return None


class Driver:
    """Drives one timeline at a time through the three handlers (``world.harness``)."""

    def __init__(self, ledger: str = DEFAULT_LEDGER) -> None:
        self.ledger = ledger
        self.n = 0
        self.ended: dict[str, str] = {}  # deployment -> how its report says it ended

    def run(self, tl: Timeline) -> tuple[dict[str, str], dict[str, int], int]:
        """Drive one timeline; return (fp -> decided cause, deployment -> reported lost, errors)."""
        self.n += 1
        table = f"ledger-{self.n}"
        env = REGION_ENV | {
            "LEDGER_TABLE_NAME": table,
            "CLUSTER_NAME": CLUSTER,
            "SERVICE_NAMES": "",
            "REPORT_TOPIC_ARN": f"arn:aws:sns:us-east-1:111122223333:reports-{self.n}",
            "GRACE_PERIOD_SECONDS": str(int(GRACE_S)),
            "DEREGISTRATION_DELAY_SECONDS": str(int(DEREGISTRATION_DELAY_S)),
            # The bound the detectors' drain allowance trusts (``CLOCK_ERROR_SECONDS``): by
            # default the error this run simulates, as a deployment sets it from its tasks'
            # ClockErrorBound; ``--told`` gives another (the shipped default, 1 s).
            "CLOCK_ERROR_SECONDS": repr(timelines.CLOCK_ERROR_S if TOLD_S is None else TOLD_S),
            "POWERTOOLS_SERVICE_NAME": "sessionwatch",
        }
        with detector_harness(env, ledger=make_ledger(self.ledger, table)) as h:
            h.ecs_client = ecs_client_for(tl, lambda: h.now)
            published = record_publishes(h.runtime.sns())
            answer_calls(
                h.runtime.cloudwatch(),
                "cloudwatch",
                {"GetMetricData": lambda _: {"MetricDataResults": []}},
            )
            errors = self._drive(h, tl)
            return self.verdicts(h.drain()), self.reports(published), errors

    def _drive(self, h: Harness, tl: Timeline) -> int:
        deliveries = deliver(tl, tl.seed, GRACE_S)
        errors = 0
        start = min(d.at for d in deliveries)
        next_report = start + 60
        final = tl.end + GRACE_S + FOLLOW_UP_S + 180 + (tl.ecs_late_s or 0)
        i = 0
        while i < len(deliveries) or next_report <= final:
            if i < len(deliveries) and deliveries[i].at < next_report:
                d = deliveries[i]
                i += 1
                h.now = d.at
                try:
                    h.call(d.kind, d.payload)
                except Exception:  # an AWS error: Lambda would retry the same input
                    errors += 1
                    with contextlib.suppress(Exception):
                        h.call(d.kind, d.payload)
            else:
                h.now = next_report
                try:
                    h.call("reporter", scheduled_event(next_report))
                except Exception:
                    errors += 1
                # Quiet stretches: nothing new to deliver for a while, skip minutes ahead.
                gap = (deliveries[i].at if i < len(deliveries) else final) - next_report
                next_report += 60 if gap < 600 else 300
        return errors

    @staticmethod
    def verdicts(out: str) -> dict[str, str]:
        """Each fingerprint's decided cause in the handlers' lines: the last one counted (a
        revision replaces; a session is counted once, to its earliest 404), else the first."""
        decided: dict[str, str] = {}
        for raw in out.splitlines():
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
                if not isinstance(cause, str):
                    continue
                # The session is counted once, to its earliest 404: a later 404's verdict
                # (not counted, a repeat) does not change what the session was lost to.
                if (
                    doc.get("counted") is True
                    or "revised" in msg
                    or decided.get(doc["session"], "pending") == "pending"
                ):
                    decided[doc["session"]] = cause
            elif msg == "session loss pending" and doc["session"] not in decided:
                decided.setdefault(doc["session"], "pending")
        return decided

    def reports(self, published: list[dict[str, Any]]) -> dict[str, int]:
        """Each deployment's count in its last published report (published in order)."""
        out: dict[str, int] = {}
        self.ended = {}
        for params in published:
            attr = params.get("MessageAttributes", {}).get(REPORT_ATTRIBUTE, {})
            try:
                report = json.loads(attr.get("StringValue", "{}"))
            except ValueError:
                continue
            dep = report.get("deployment_id")
            lost = report.get("sessions_lost")
            if isinstance(dep, str) and isinstance(lost, int):
                out[dep] = lost
                ended = report.get("ended") or report.get("outcome")
                if isinstance(ended, str):
                    self.ended[dep] = ended
        return out


def scheduled_event(at: float) -> dict[str, Any]:
    """The EventBridge scheduled event that invokes the reporter every minute."""
    return {
        "version": "0",
        "id": f"sched-{int(at)}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": iso(at),
        "detail": {},
    }


def outcome_matches(expected: str, rollback_follows: bool, ended: str) -> bool:
    """Does the report's "how it ended" say what the truth says?"""
    text = ended.upper()
    if rollback_follows:
        return text.startswith("FAILED") and "ROLLED BACK" in text
    return text.startswith(expected)


HARD_CASES = {
    "404 within 6 s of its task's drain": lambda tl, loss: "-within-6s" in loss.shape,
    "cookie-less client during a deployment": lambda tl, loss: loss.shape.startswith(
        "cookie-less-during-deployment"
    ),
    "cookie-less 404 within 6 s before its task's drain": lambda tl, loss: loss.shape.endswith(
        "-6s-before-drain"
    ),
    "cookie-less 404 before its task's drain, logged within the clocks' error of it": (
        lambda tl, loss: loss.shape.endswith("-6s-before-drain") and logged_near_drain(tl, loss)
    ),
    "idle-expired session, back on another task": lambda tl, loss: loss.shape.startswith(
        "idle-expired-elsewhere"
    ),
    "idle-expired session, its task replaced since": lambda tl, loss: (
        "task-replaced-since" in loss.shape
    ),
    "idle-expired session, its close logged within the clocks' error of its task's drain": (
        lambda tl, loss: closed_near_drain(tl, loss)
    ),
    "session idle-expired while its task drained (the drain's loss)": lambda tl, loss: (
        loss.shape.endswith("-idle-closed-while-draining")
    ),
    "session on the new revision drawn back during a partial shift": lambda tl, loss: (
        loss.shape.endswith("-from-new-revision")
    ),
    "ECS events later than the grace period": lambda tl, loss: any(
        s.startswith("ecs-late-") for s in tl.shapes
    ),
}


# Hard cases no detector can decide from the facts (a server's stamp and ECS's within the
# clocks' error of each other, in the order opposite to what happened), where the detectors
# may decide otherwise than the story (README, "What the accuracy benchmark can and cannot
# prove"): the CI sample checks every OTHER verdict is right.
KNOWN_GAPS = (
    "cookie-less 404 before its task's drain, logged within the clocks' error of it",
    "idle-expired session, its close logged within the clocks' error of its task's drain",
)


def _drain(tl: Timeline, task_id: str) -> float | None:
    task = tl.tasks.get(task_id)
    if task is None:
        return None
    return task.stopping if task.stopping is not None else task.stopped


def logged_near_drain(tl: Timeline, loss: Any) -> bool:
    """The 404 happened before its origin's drain but its server's clock stamped it no earlier
    than the clocks' error (``CLOCK_ERROR_S``) before ECS's drain time: the stamps cannot
    tell it from a 404 of the drain itself."""
    drain, serving = _drain(tl, loss.origin_task), tl.tasks.get(loss.serving_task)
    if drain is None or serving is None:
        return False
    return loss.at < drain and loss.at + serving.clock_offset >= drain - timelines.CLOCK_ERROR_S


def closed_near_drain(tl: Timeline, loss: Any) -> bool:
    """The session expired on its task before the task's drain, but the task's clock stamped
    the close no earlier than the clocks' error before ECS's drain time: the stamps cannot
    tell it from a session the drain ended (and which then expired while draining); or the
    mirror: it expired while its task drained, stamped less than the clocks' error after ECS's
    drain time, so the stamps cannot tell it from a session that expired first."""
    drain, origin = _drain(tl, loss.origin_task), tl.tasks.get(loss.origin_task)
    if loss.closed_at is None or drain is None or origin is None:
        return False
    stamp, e = loss.closed_at + origin.clock_offset, timelines.CLOCK_ERROR_S
    if loss.closed_at < drain:
        return stamp >= drain - e
    return stamp < drain + e


def indistinguishable(tl: Timeline, loss: Any) -> bool:
    """The loss is one of ``KNOWN_GAPS``: its stamps cannot tell what happened first."""
    return any(HARD_CASES[case](tl, loss) for case in KNOWN_GAPS)


def hard_cases(tl: Timeline, loss: Any) -> list[str]:
    """The hard cases (of the story, never of the detectors' rules) a loss belongs to."""
    return [name for name, test in HARD_CASES.items() if test(tl, loss)]


def check(
    tl: Timeline,
    decided: dict[str, str],
    reported: dict[str, int],
    res: Results,
    ended: dict[str, str] | None = None,
) -> None:
    wrong, wrong_gap = 0, 0
    for loss in tl.losses:
        strategy = tl.strategy_of(loss.service) if loss.service in tl.services else "?"
        got = decided.get(loss.fp, "none")
        res.matrices[strategy][(loss.cause.value, got)] += 1
        for case in hard_cases(tl, loss):
            res.hard[(case, got == loss.cause.value)] += 1
        if got != loss.cause.value:
            wrong += 1
            if indistinguishable(tl, loss):
                wrong_gap += 1
                res.wrong_indistinguishable += 1
            dep = tl.deployments.get(loss.deployment or "")
            res.failures.append(
                Failure(
                    tl.seed,
                    strategy,
                    "cause",
                    f"true {loss.cause.value} decided {got}: {loss.shape}"
                    + (f" (deployment {dep.strategy} outcome {dep.outcome})" if dep else ""),
                    tl.shapes,
                    tuple(hard_cases(tl, loss)),
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
            if wrong and wrong == wrong_gap:
                res.report_errors_indistinguishable += 1
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
    ledger: str = DEFAULT_LEDGER,
) -> Results:
    """Generate and drive ``n`` timelines (seeds derived from ``seed``), accumulate results.

    ``jobs`` > 1 splits the timelines over processes (each with its own backend).
    """
    if jobs <= 1:
        return _run_indices(list(range(n)), n, seed, load, progress_every, out, ledger)
    import multiprocessing

    parts = [list(range(j, n, jobs)) for j in range(jobs)]
    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        done = pool.starmap(
            _run_indices, [(p, n, seed, load, progress_every, None, ledger) for p in parts]
        )
    res = Results()
    for part in done:
        res.merge(part)
    return res


def _run_indices(
    indices: list[int],
    n: int,
    seed: int,
    load: float,
    progress_every: int,
    out: Any,
    ledger: str = DEFAULT_LEDGER,
) -> Results:
    res = Results()
    out = out or sys.stdout
    t0 = time.perf_counter()
    with aws_env() if ledger == "moto" else contextlib.nullcontext():
        driver = Driver(ledger)
        for i, k in enumerate(indices):
            tl = generate(seed * 100_003 + k, load)
            decided, reported, errors = driver.run(tl)
            res.handler_errors += errors
            res.timelines += 1
            res.outcomes[tl.seed] = outcome_digest(decided, reported, driver.ended)
            check(tl, decided, reported, res, driver.ended)
            if progress_every and (i + 1) % progress_every == 0:
                _progress(res, i + 1, len(indices), n, time.perf_counter() - t0, out)
                partial = os.environ.get("ACCURACY_PARTIAL")
                if partial:  # a long run leaves its latest matrices behind, per worker
                    with open(f"{partial}.{indices[0]}", "w") as f:
                        print_results(res, f)
    return res


def outcome_digest(decided: dict[str, str], reported: dict[str, int], ended: dict[str, str]) -> str:
    """What one timeline's run decided and reported, for run-for-run comparison of ledgers."""
    doc = json.dumps([decided, reported, ended], sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def agreement(a: Results, b: Results) -> tuple[int, list[int]]:
    """How many timelines both ran, and the seeds whose verdicts or reports differ."""
    both = sorted(set(a.outcomes) & set(b.outcomes))
    return len(both), [s for s in both if a.outcomes[s] != b.outcomes[s]]


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
    p(
        f"within the clocks' error of a drain ({timelines.CLOCK_ERROR_S:g} s; the known gaps, "
        f"which no stamp can order): {res.wrong_indistinguishable} of the wrong causes, "
        f"{res.report_errors_indistinguishable} of the report count errors"
    )
    for strategy, m in sorted(res.matrices.items()):
        rows = [c for c in CAUSES if any(m[(c, d)] for d in COLUMNS)]
        cols = [c for c in COLUMNS if any(m[(r, c)] for r in CAUSES)]
        p(f"\n{strategy}: true cause (rows) x decided cause (columns)")
        p("| true \\ decided | " + " | ".join(cols) + " |")
        p("|---|" + "---|" * len(cols))
        for r in rows:
            p(f"| {r} | " + " | ".join(str(m[(r, c)]) for c in cols) + " |")
    if res.hard:
        p("\nhard cases: sessions right / all")
        for case in HARD_CASES:
            right, wrong = res.hard[(case, True)], res.hard[(case, False)]
            p(f"  {case}: {right} / {right + wrong}")
    if res.failures:
        p(f"\nfailures (first {max_failures} of {len(res.failures)}):")
        summary: Counter[str] = Counter(f"{f.kind}: {f.strategy}: {f.detail}" for f in res.failures)
        for line, count in summary.most_common(max_failures):
            seeds = sorted(
                {f.seed for f in res.failures if f"{f.kind}: {f.strategy}: {f.detail}" == line}
            )
            p(f"  {count:>5} x {line}  [seeds {', '.join(map(str, seeds[:5]))}]")


def _cpu() -> float:
    """CPU seconds of this process and its finished workers: on a shared machine the wall
    time says how busy it was, this what the run cost."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# The clock bound the detectors are told, when not the simulated one (``--told``).
TOLD_S: float | None = None


def main(argv: list[str] | None = None) -> None:
    global TOLD_S
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--timelines", type=int, default=int(os.environ.get("ACCURACY_TIMELINES", 12)))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--progress", type=int, default=10, help="a line every N timelines")
    ap.add_argument("--load", type=float, default=1.0, help="client arrival rate factor")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--png", type=Path, help="also draw the confusion matrices to this PNG")
    ap.add_argument(
        "--clock-error",
        type=float,
        default=timelines.CLOCK_ERROR_S,
        help="how far each task's log clock may be off ECS's (s; default 0.01, ten times what "
        "AWS documents for Time Sync; 1: the stress run; 0: perfect clocks)",
    )
    ap.add_argument(
        "--told",
        type=float,
        help="the clock bound the detectors are told (CLOCK_ERROR_SECONDS; default: the "
        "simulated error, as a deployment that sets it from ClockErrorBound)",
    )
    ap.add_argument("--ledger", choices=LEDGERS, default=DEFAULT_LEDGER, help="the ledger")
    ap.add_argument(
        "--moto-sample",
        type=int,
        default=0,
        help="also run the first N timelines on the moto ledger and compare run for run",
    )
    args = ap.parse_args([] if argv is None else argv)
    timelines.CLOCK_ERROR_S = args.clock_error  # before the workers fork
    TOLD_S = args.told
    print(
        f"accuracy: {args.timelines} timelines, seed {args.seed}, load {args.load}, "
        f"grace {GRACE_S:.0f} s, log clocks off ECS's by up to {args.clock_error:g} s "
        f"(detectors told {args.clock_error if args.told is None else args.told:g} s), "
        f"{args.ledger} ledger",
        flush=True,
    )
    t, cpu = time.perf_counter(), _cpu()
    res = run(
        args.timelines, args.seed, args.progress, load=args.load, jobs=args.jobs, ledger=args.ledger
    )
    print(f"({time.perf_counter() - t:.0f} s wall, {_cpu() - cpu:.0f} s CPU over all workers)")
    print_results(res)
    if args.moto_sample and args.ledger != "moto":
        t = time.perf_counter()
        sample = run(args.moto_sample, args.seed, 0, load=args.load, jobs=args.jobs, ledger="moto")
        both, differ = agreement(res, sample)
        print(
            f"moto sample: {both - len(differ)} of {both} timelines decided and reported the "
            f"same as on the {args.ledger} ledger ({time.perf_counter() - t:.0f} s)"
            + (f"; differ: seeds {differ[:10]}" if differ else "")
        )
    if args.png:
        from benchmarks.accuracy_chart import draw_matrices

        draw_matrices(res, args.png)
        print(f"confusion matrices: {args.png}")


if __name__ == "__main__":
    main(sys.argv[1:])
